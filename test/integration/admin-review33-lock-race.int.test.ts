/**
 * An admin's lock or unlock decided on the acting admin's row as it is when the target's row is
 * locked, not as it was when the request was authenticated (up to a second earlier, or before it
 * queued behind another admin's lock of the same row). Before: an admin locked by another could undo
 * the lock with an unlock of their own account already in flight (queued behind the lock, it ran
 * right after it), and two admins locking each other at once both succeeded (no admin left).
 * On the real auth service over Postgres; `setLocked(target, …, by)` is what the route calls after
 * the request was authenticated, so calling it after `by` was locked is that request arriving late.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UserId } from '../../protocol/src/ids.js';
import { createDb, type DbHandle } from '../../src/db/create-db.js';
import { createPasswordHasher } from '../../src/domain/auth/passwords.js';
import { createAuthService } from '../../src/domain/auth/service.js';
import { createTokenService } from '../../src/domain/auth/tokens.js';
import { systemClock } from '../../src/platform/clock.js';
import { closeRedisClient, createRedisClient, type Redis } from '../../src/platform/redis.js';
import { createRedisWindowCounter } from '../../src/platform/window-counter.js';
import {
  captureLogs,
  createMigratedDatabase,
  sharedRedisUrl,
  type TestDatabase,
  uniqueRedisPrefix,
} from '../support/context.js';
import { testTokenSettings } from '../support/tokens.js';

describe('admin lock and unlock by an admin locked meanwhile', () => {
  let db: TestDatabase;
  let handle: DbHandle;
  let redis: Redis;
  const logs = captureLogs();
  let auth: ReturnType<typeof createAuthService>;
  let counter = 0;

  beforeAll(async () => {
    db = await createMigratedDatabase();
    handle = await createDb({ kind: 'postgres', url: db.url, poolMax: 4 }, logs.log);
    redis = createRedisClient({ endpoint: sharedRedisUrl(), name: 'main', log: logs.log });
    auth = createAuthService({
      db: handle.db,
      clock: systemClock,
      log: logs.log,
      tokens: createTokenService(handle.db, testTokenSettings, systemClock),
      passwords: createPasswordHasher(),
      counters: createRedisWindowCounter(redis, uniqueRedisPrefix()),
      settings: {
        refresh: { idleTtlS: 3600, absoluteTtlS: 86_400, reuseGraceS: 0 },
        login: { maxFailures: 10, ipMaxFailures: 100, windowS: 900 },
      },
      sessionCheck: { maxAgeMs: 0 },
    });
  });
  afterAll(async () => {
    await closeRedisClient(redis);
    await handle.close();
    await db.drop();
  });

  const sql = async (query: string, values: unknown[]) => {
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      return (await client.query(query, values)).rows;
    } finally {
      await client.end();
    }
  };

  const newAdmin = async (): Promise<UserId> => {
    counter += 1;
    const username = `lockrace${process.pid}x${counter}`;
    const password = 'Vermilion-Otter-42!';
    await auth.register({ username, email: `${username}@example.test`, password });
    const [row] = await sql(
      `update users set roles = array_append(roles, 'admin') where username = $1 returning id`,
      [username],
    );
    return row.id as UserId;
  };
  const isLocked = async (id: UserId) =>
    (await sql('select locked_at from users where id = $1', [id]))[0].locked_at !== null;

  it('refuses an unlock of their own account by an admin another one just locked', async () => {
    const [a, b] = [await newAdmin(), await newAdmin()];
    await auth.setLocked(b, true, a);
    await expect(auth.setLocked(b, false, b)).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
    expect(await isLocked(b)).toBe(true);
  });

  it('of two admins locking each other at once, locks only one', async () => {
    const [a, b] = [await newAdmin(), await newAdmin()];
    await auth.setLocked(b, true, a);
    await expect(auth.setLocked(a, true, b)).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
    expect(await isLocked(a)).toBe(false);
  });

  it('refuses a lock by an account that lost the admin role meanwhile', async () => {
    const [a, b] = [await newAdmin(), await newAdmin()];
    await sql(`update users set roles = array_remove(roles, 'admin') where id = $1`, [a]);
    await expect(auth.setLocked(b, true, a)).rejects.toMatchObject({ code: 'FORBIDDEN' });
    expect(await isLocked(b)).toBe(false);
  });
});
