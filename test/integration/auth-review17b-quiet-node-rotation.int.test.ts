/**
 * Key rotation on a quiet node (review 17b). A node loads its signing keys, then issues and verifies
 * nothing new for longer than an access token lives while `npm run keys:rotate` retires its key.
 * Its next login must be signed with the new key: the retired one has left the JWKS by then, so a
 * token signed with it is refused by every verifier (this node's own after its reload included) —
 * the user's first request after signing in answered 401. The revocation feed, which every serving
 * process runs, keeps the key set reloaded once a minute (tokens.keepFresh).
 *
 * On the real auth service over PostgreSQL and Redis, with a clock the test moves.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, type DbHandle } from '../../src/db/create-db.js';
import { createPasswordHasher } from '../../src/domain/auth/passwords.js';
import { createAuthService } from '../../src/domain/auth/service.js';
import { createTokenService } from '../../src/domain/auth/tokens.js';
import type { Clock } from '../../src/platform/clock.js';
import { closeRedisClient, createRedisClient, type Redis } from '../../src/platform/redis.js';
import { createRedisWindowCounter } from '../../src/platform/window-counter.js';
import {
  captureLogs,
  createMigratedDatabase,
  sharedRedisUrl,
  type TestDatabase,
  uniqueRedisPrefix,
} from '../support/context.js';
import { untilDefined } from '../support/poll.js';
import { testTokenClaims, testTokenSettings } from '../support/tokens.js';

const kidOf = (jwt: string) =>
  (JSON.parse(Buffer.from(jwt.split('.')[0] ?? '', 'base64url').toString()) as { kid: string }).kid;

describe('a node that stayed quiet across a key rotation', () => {
  let db: TestDatabase;
  let handle: DbHandle;
  let redis: Redis;
  const logs = captureLogs();
  let nowMs = Date.now();
  const clock: Clock = { now: () => new Date(nowMs) };

  beforeAll(async () => {
    db = await createMigratedDatabase();
    handle = await createDb({ kind: 'postgres', url: db.url, poolMax: 4 }, logs.log);
    redis = createRedisClient({ endpoint: sharedRedisUrl(), name: 'main', log: logs.log });
  });
  afterAll(async () => {
    await closeRedisClient(redis);
    await handle.close();
    await db.drop();
  });

  it('signs its next login with the new key, which every verifier accepts', async () => {
    const tokens = createTokenService(handle.db, testTokenSettings, clock);
    const auth = createAuthService({
      db: handle.db,
      clock,
      log: logs.log,
      tokens,
      passwords: createPasswordHasher(),
      counters: createRedisWindowCounter(redis, uniqueRedisPrefix()),
      settings: {
        refresh: { idleTtlS: 3600, absoluteTtlS: 86_400, reuseGraceS: 10 },
        login: { maxFailures: 10, ipMaxFailures: 100, windowS: 900 },
      },
    });
    const username = `quiet${process.pid}`;
    const password = 'Turquoise-Marmot-58!';
    await auth.register({ username, email: `${username}@example.test`, password });
    const meta = { ip: '127.0.0.1', userAgent: 'review17b' };
    const before = await auth.login(username, password, meta);
    const oldKid = kidOf(before.accessToken);

    // `npm run keys:rotate` (another process), then more than an access token's life of quiet.
    const rotator = createTokenService(handle.db, testTokenSettings, clock);
    const newKid = await rotator.rotate();
    expect(newKid).not.toBe(oldKid);
    nowMs += (testTokenSettings.accessTtlS + 60 + 120) * 1000;

    // The node serves (its revocation feed polls); still nothing is issued or verified.
    await auth.revocations.start();
    try {
      // Watched without asking for the keys: a connect token of the new key is checked from memory
      // only (verifyConnectTokenNow never loads), so it passes once the node reloaded on its own.
      // Without that reload it never does: the login below then shows what a user got.
      const probe = (await rotator.issue(testTokenClaims)).connectToken;
      await untilDefined(
        async () => tokens.verifyConnectTokenNow(probe),
        'the quiet node to load the rotated key set',
        5_000,
      ).catch(() => undefined);

      const after = await auth.login(username, password, meta);
      expect(kidOf(after.accessToken)).toBe(newKid);
      // Verified by a process that loads the key set now (what every other node publishes).
      const elsewhere = createTokenService(handle.db, testTokenSettings, clock);
      expect((await elsewhere.jwks()).keys.map((key) => key.kid)).toEqual([newKid]);
      await expect(elsewhere.verify(after.accessToken)).resolves.toMatchObject({ sid: expect.any(String) });
      await expect(auth.authenticate(after.accessToken)).resolves.toMatchObject({
        userId: after.user.id,
      });
    } finally {
      auth.revocations.stop();
    }
  });
});
