/**
 * A token's kid is read before its MAC (connect tokens) or signature (access tokens) is checked,
 * so tokens with made-up kids cost their sender nothing. An unknown kid reloads the key set (a
 * query of signing_keys and key imports) so that a key another process just rotated in is found;
 * however many such tokens arrive, they share the reload in flight, and a new one starts at most
 * every UNKNOWN_KID_RELOAD_MIN_MS (5 s) after the last one started. Time is moved with a fake
 * Date, so nothing here depends on how fast the machine is.
 */
import type { Kysely } from 'kysely';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createDb, type DbHandle } from '../../src/db/create-db.js';
import type { Database } from '../../src/db/database.js';
import { createTokenService, type TokenService } from '../../src/domain/auth/tokens.js';
import { systemClock } from '../../src/platform/clock.js';
import { createLogger } from '../../src/platform/logger.js';
import { createMigratedDatabase, type TestDatabase } from '../support/context.js';
import { testTokenClaims as claims, testTokenSettings as settings } from '../support/tokens.js';

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
/** A connect token naming a kid nobody has, with a MAC of the right length (never checked). */
const unknownKidConnectToken = (i: number) =>
  `${b64({ v: 1, kid: `nope-${i}`, sub: claims.sub, sid: claims.sid, roles: [], sv: 0, exp: 9e9 })}.${Buffer.alloc(32).toString('base64url')}`;
/** An access token naming a kid nobody has (its signature is never checked). */
const unknownKidAccessToken = (i: number) =>
  `${b64({ alg: 'EdDSA', typ: 'at+jwt', kid: `nope-${i}` })}.${b64({ sub: 'x' })}.${Buffer.alloc(64).toString('base64url')}`;

const kinds = [
  [
    'connect tokens',
    (tokens: TokenService, i: number) => tokens.verifyConnectToken(unknownKidConnectToken(i)),
  ],
  ['access tokens', (tokens: TokenService, i: number) => tokens.verify(unknownKidAccessToken(i))],
] as const;

describe('key set reloads on unknown kids', () => {
  let db: TestDatabase;
  let handle: DbHandle;
  let keyQueries = 0;
  /** The database, counting the queries of signing_keys. */
  let counted: Kysely<Database>;

  beforeAll(async () => {
    db = await createMigratedDatabase();
    handle = await createDb(
      { kind: 'postgres', url: db.url, poolMax: 4 },
      createLogger({ level: 'silent', pretty: false }),
    );
    counted = new Proxy(handle.db, {
      get(target, prop, receiver) {
        if (prop === 'selectFrom')
          return (table: never) => {
            if (table === 'signing_keys') keyQueries += 1;
            return target.selectFrom(table);
          };
        const value = Reflect.get(target, prop, receiver);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
  });
  afterEach(() => {
    vi.useRealTimers();
  });
  afterAll(async () => {
    await handle.close();
    await db.drop();
  });

  /** Sends 50 tokens with unknown kids at once; all must be refused. Returns the key-set queries they caused. */
  const burst = async (tokens: TokenService, verify: (typeof kinds)[number][1]) => {
    keyQueries = 0;
    const outcomes = await Promise.allSettled(Array.from({ length: 50 }, (_, i) => verify(tokens, i)));
    expect(outcomes.every((o) => o.status === 'rejected')).toBe(true);
    return keyQueries;
  };

  it.each(kinds)(
    '%s: 50 at once share one reload; the next reload waits 5 s from its start',
    async (_kind, verify) => {
      vi.useFakeTimers({ toFake: ['Date'] });
      const tokens = createTokenService(counted, settings, systemClock);
      await tokens.issue(claims); // the key set is loaded
      vi.setSystemTime(Date.now() + 6_000); // older than UNKNOWN_KID_RELOAD_MIN_MS, fresher than a minute
      expect(await burst(tokens, verify)).toBe(1);
      // That reload started just now: no other before 5 s have passed, however many kids arrive.
      expect(await burst(tokens, verify)).toBe(0);
      vi.setSystemTime(Date.now() + 4_000);
      expect(await burst(tokens, verify)).toBe(0);
      vi.setSystemTime(Date.now() + 2_000);
      expect(await burst(tokens, verify)).toBe(1);
    },
  );

  it('still finds a key another process rotated in: a token of the new kid reloads and verifies', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const tokens = createTokenService(counted, settings, systemClock);
    await tokens.issue(claims);
    const other = createTokenService(handle.db, settings, systemClock);
    await other.rotate();
    const issued = await other.issue(claims);
    vi.setSystemTime(Date.now() + 6_000);
    keyQueries = 0;
    const [access, connect] = await Promise.all([
      tokens.verify(issued.token),
      tokens.verifyConnectToken(issued.connectToken),
    ]);
    expect(access.sub).toBe(claims.sub);
    expect(connect.sub).toBe(claims.sub);
    expect(keyQueries).toBe(1);
  });
});
