/**
 * Issuing tokens never waits for the database once the key set is loaded. `issue` runs inside the
 * login and refresh transactions; when the set is due for its periodic reload (older than a
 * minute), that reload needs a connection of its own. With every pool connection held by such
 * transactions, an `issue` that awaited the reload in flight would wait for a connection its own
 * transaction holds: each transaction ends only after the pool's timeout, and on PGlite (one
 * connection) never. Time is moved with a fake Date.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createDb, type DbHandle } from '../../src/db/create-db.js';
import { createTokenService } from '../../src/domain/auth/tokens.js';
import { systemClock } from '../../src/platform/clock.js';
import { createLogger } from '../../src/platform/logger.js';
import { createMigratedDatabase, type TestDatabase } from '../support/context.js';
import { testTokenClaims as claims, testTokenSettings as settings } from '../support/tokens.js';

describe('a stale key set', () => {
  let db: TestDatabase;
  let handle: DbHandle;

  beforeAll(async () => {
    db = await createMigratedDatabase();
    // One connection, as PGlite has: a transaction holding it leaves none for a reload.
    handle = await createDb(
      { kind: 'postgres', url: db.url, poolMax: 1 },
      createLogger({ level: 'silent', pretty: false }),
    );
  });
  afterEach(() => {
    vi.useRealTimers();
  });
  afterAll(async () => {
    await handle.close();
    await db.drop();
  });

  it('is used at once by issue inside a transaction while its reload waits for a connection', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const tokens = createTokenService(handle.db, settings, systemClock);
    const first = await tokens.issue(claims); // the key set is loaded
    vi.setSystemTime(Date.now() + 61_000); // due for its periodic reload
    const issued = await handle.db.transaction().execute(async (trx) => {
      await trx.selectFrom('users').select('id').limit(1).execute();
      // Something on this node asks for the keys: the periodic reload starts (and must wait for
      // the connection this transaction holds) ...
      const jwks = tokens.jwks();
      await new Promise((resolve) => setImmediate(resolve)); // the reload is in flight now
      // ... and the transaction's own issue must not wait for that reload.
      const token = await Promise.race([
        tokens.issue(claims),
        new Promise<'waited'>((resolve) => setTimeout(() => resolve('waited'), 3_000)),
      ]);
      return { token, jwks };
    });
    expect(issued.token).not.toBe('waited');
    // The reload ran once the transaction let go of the connection; the same key signs.
    expect((await issued.jwks).keys.length).toBeGreaterThan(0);
    if (issued.token === 'waited') return;
    expect(await tokens.verify(issued.token.token)).toMatchObject({ sub: claims.sub });
    expect(await tokens.verify(first.token)).toMatchObject({ sub: claims.sub });
  });
});
