/**
 * A revocation heard while a session check's row is being read (src/domain/auth/service.ts,
 * principalOf): the row may have been read before the revocation committed, and the caller (a
 * WebSocket upgrade) has no socket yet for the revocation to close. The check must not answer from
 * that row: refused when the session itself was revoked, read again when something about its user
 * changed. On the real auth service over Postgres; the session-row query is held after it ran (a
 * Kysely plugin awaiting a deferred before handing its result back), so its row predates the
 * revocation.
 *
 * And a login in flight when every session of its user ends (password changed or reset,
 * logout-all, account locked): held after its password check (a hasher whose verify waits), or
 * inside its transaction once it holds the user's row, the login must not leave a session behind
 * (refused like a wrong password, or its session revoked with the others); and its rehash of the
 * password must never put the old password back over the new one.
 */
import { type KyselyPlugin, type QueryId, type RootOperationNode, TableNode } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UserId } from '../../protocol/src/ids.js';
import { createDb, type DbHandle } from '../../src/db/create-db.js';
import { createPasswordHasher, type PasswordHasher } from '../../src/domain/auth/passwords.js';
import { createAuthService, type Principal } from '../../src/domain/auth/service.js';
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
import { untilDefined } from '../support/poll.js';
import { testTokenSettings } from '../support/tokens.js';

/** Holds the results of session-row reads (sessions joined with users) while `hold` is set. */
function sessionReadHolder() {
  let hold: Promise<void> | undefined;
  let reached: (() => void) | undefined;
  const sessionReads = new WeakSet<QueryId>();
  const isSessionRead = (node: RootOperationNode) =>
    node.kind === 'SelectQueryNode' &&
    node.from?.froms.some((from) => TableNode.is(from) && from.table.identifier.name === 'sessions') ===
      true &&
    (node.joins?.length ?? 0) > 0;
  const plugin: KyselyPlugin = {
    transformQuery: ({ node, queryId }) => {
      if (isSessionRead(node)) sessionReads.add(queryId);
      return node;
    },
    transformResult: async ({ result, queryId }) => {
      if (hold !== undefined && sessionReads.has(queryId)) {
        reached?.();
        await hold;
      }
      return result;
    },
  };
  return {
    plugin,
    /** Holds the next session reads; resolves `reached` once one has run; call the result to let go. */
    hold: () => {
      let release = () => {};
      hold = new Promise<void>((resolve) => {
        release = () => {
          hold = undefined;
          resolve();
        };
      });
      const reachedOnce = new Promise<void>((resolve) => {
        reached = resolve;
      });
      return { reached: reachedOnce, release };
    },
  };
}

describe('a revocation heard while the session row is read', () => {
  let db: TestDatabase;
  let handle: DbHandle;
  let redis: Redis;
  const logs = captureLogs();
  const holder = sessionReadHolder();
  let auth: ReturnType<typeof createAuthService>;
  let counter = 0;

  beforeAll(async () => {
    db = await createMigratedDatabase();
    handle = await createDb({ kind: 'postgres', url: db.url, poolMax: 4 }, logs.log);
    redis = createRedisClient({ endpoint: sharedRedisUrl(), name: 'main', log: logs.log });
    const wrapped = handle.db.withPlugin(holder.plugin);
    auth = createAuthService({
      db: wrapped,
      clock: systemClock,
      log: logs.log,
      tokens: createTokenService(wrapped, testTokenSettings, systemClock),
      passwords: createPasswordHasher(),
      counters: createRedisWindowCounter(redis, uniqueRedisPrefix()),
      settings: {
        refresh: { idleTtlS: 3600, absoluteTtlS: 86_400, reuseGraceS: 0 },
        login: { maxFailures: 10, ipMaxFailures: 100, windowS: 900 },
      },
      // Every check reads its row (the feed is not started either: it vouches for nothing).
      sessionCheck: { maxAgeMs: 0 },
    });
  });
  afterAll(async () => {
    await closeRedisClient(redis);
    await handle.close();
    await db.drop();
  });

  const newSession = async () => {
    counter += 1;
    const username = `race${process.pid}x${counter}`;
    const password = 'Vermilion-Otter-42!';
    await auth.register({ username, email: `${username}@example.test`, password });
    const session = await auth.login(username, password, { ip: '127.0.0.1', userAgent: 'test' });
    return { ...session, principal: await auth.authenticate(session.accessToken) };
  };

  /** `authenticate` with its session read held until `during` has run; how it settled. */
  const authenticateAround = async (accessToken: string, during: () => Promise<void>) => {
    const { reached, release } = holder.hold();
    const check = auth.authenticate(accessToken).then(
      (principal) => ({ principal }),
      (error: unknown) => ({ error }),
    );
    await reached;
    try {
      await during();
    } finally {
      release();
    }
    return check;
  };

  const sql = async (query: string, values: unknown[]) => {
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      await client.query(query, values);
    } finally {
      await client.end();
    }
  };

  it('refuses a session revoked on another node (the bus message arrives during the read)', async () => {
    const session = await newSession();
    const outcome = await authenticateAround(session.accessToken, async () => {
      await sql('update sessions set revoked_at = now() where id = $1', [session.principal.sessionId]);
      auth.forgetRevokedSessions({
        userId: session.principal.userId,
        sessionId: session.principal.sessionId,
      });
    });
    expect(outcome).toMatchObject({ error: { code: 'UNAUTHORIZED' } });
  });

  it('refuses a session logged out on this node during the read', async () => {
    const session = await newSession();
    const outcome = await authenticateAround(session.accessToken, () => auth.logout(session.refreshToken));
    expect(outcome).toMatchObject({ error: { code: 'UNAUTHORIZED' } });
  });

  it('reads the row again when every session of the user ends during the read (logout-all)', async () => {
    const session = await newSession();
    const outcome = await authenticateAround(session.accessToken, () => auth.logoutAll(session.principal));
    expect(outcome).toMatchObject({ error: { code: 'UNAUTHORIZED' } });
  });

  it('answers from the row when the revocation heard meanwhile is of someone else (control)', async () => {
    const session = await newSession();
    const other = await newSession();
    const outcome = await authenticateAround(session.accessToken, async () => {
      auth.forgetRevokedSessions({ userId: other.principal.userId });
      auth.forgetRevokedSessions({ userId: other.principal.userId, sessionId: other.principal.sessionId });
    });
    expect(outcome).toEqual({ principal: session.principal });
  });

  it('answers again when a change of the user that ends nothing is heard during the read', async () => {
    const session = await newSession();
    const outcome = await authenticateAround(session.accessToken, async () => {
      auth.forgetRevokedSessions({ userId: session.principal.userId });
    });
    expect(outcome).toEqual({ principal: session.principal });
  });
});

/** A gate: `wait` until released; `reached` once the gated step got there. */
function gate() {
  let release = () => {};
  let arrive = () => {};
  const wait = new Promise<void>((resolve) => {
    release = resolve;
  });
  const reached = new Promise<void>((resolve) => {
    arrive = resolve;
  });
  return { wait, reached, arrive, release };
}

/** The real hasher, whose next verify is held after it ran; needsRehash forced while `rehashAll`. */
function gatedHasher() {
  const real = createPasswordHasher();
  let next: ReturnType<typeof gate> | undefined;
  const state = { rehashAll: false };
  const hasher: PasswordHasher = {
    hash: real.hash,
    verify: async (storedHash, password) => {
      const held = next;
      next = undefined;
      const valid = await real.verify(storedHash, password);
      if (held !== undefined) {
        held.arrive();
        await held.wait;
      }
      return valid;
    },
    needsRehash: (storedHash) => state.rehashAll || real.needsRehash(storedHash),
  };
  return {
    hasher,
    state,
    /** Holds the next verify (a login's password check) once it has answered. */
    holdNextVerify: () => {
      next = gate();
      return next;
    },
  };
}

/** Holds the result of the next `select … from users … for update` (the login's row lock). */
function userLockHolder() {
  let next: ReturnType<typeof gate> | undefined;
  const held = new Map<QueryId, ReturnType<typeof gate>>();
  const isUserLock = (node: RootOperationNode) =>
    node.kind === 'SelectQueryNode' &&
    node.from?.froms.some((from) => TableNode.is(from) && from.table.identifier.name === 'users') === true &&
    (node.endModifiers ?? []).some((modifier) => modifier.modifier === 'ForUpdate');
  const plugin: KyselyPlugin = {
    transformQuery: ({ node, queryId }) => {
      if (next !== undefined && isUserLock(node)) {
        held.set(queryId, next);
        next = undefined;
      }
      return node;
    },
    transformResult: async ({ result, queryId }) => {
      const mine = held.get(queryId);
      if (mine !== undefined) {
        held.delete(queryId);
        mine.arrive();
        await mine.wait;
      }
      return result;
    },
  };
  return {
    plugin,
    holdNext: () => {
      next = gate();
      return next;
    },
  };
}

describe('a login in flight when every session of its user ends', () => {
  let db: TestDatabase;
  let handle: DbHandle;
  let redis: Redis;
  const logs = captureLogs();
  const hashing = gatedHasher();
  const locks = userLockHolder();
  let auth: ReturnType<typeof createAuthService>;
  let counter = 0;
  const meta = { ip: '127.0.0.1', userAgent: 'test' };
  const NEW_PASSWORD = 'Saffron-Lynx-19#';
  const INVALID_LOGIN = { error: { code: 'UNAUTHORIZED', message: 'invalid login or password' } };

  beforeAll(async () => {
    db = await createMigratedDatabase();
    handle = await createDb({ kind: 'postgres', url: db.url, poolMax: 4 }, logs.log);
    redis = createRedisClient({ endpoint: sharedRedisUrl(), name: 'main', log: logs.log });
    const wrapped = handle.db.withPlugin(locks.plugin);
    auth = createAuthService({
      db: wrapped,
      clock: systemClock,
      log: logs.log,
      tokens: createTokenService(wrapped, testTokenSettings, systemClock),
      passwords: hashing.hasher,
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

  const settle = <T>(promise: Promise<T>) =>
    promise.then(
      (value) => ({ value }),
      (error: unknown) => ({ error }),
    );

  /** A registered account with one session (its principal acts for the owner). */
  const newAccount = async () => {
    counter += 1;
    const username = `late${process.pid}x${counter}`;
    const password = 'Vermilion-Otter-42!';
    await auth.register({ username, email: `${username}@example.test`, password });
    const session = await auth.login(username, password, meta);
    const principal: Principal = await auth.authenticate(session.accessToken);
    return { username, password, principal };
  };

  const query = async <R>(text: string, values: unknown[]): Promise<R[]> => {
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      return (await client.query(text, values)).rows as R[];
    } finally {
      await client.end();
    }
  };

  const liveSessions = async (userId: UserId) => {
    const [row] = await query<{ live: number }>(
      'select count(*)::int as live from sessions where user_id = $1 and revoked_at is null',
      [userId],
    );
    return row?.live;
  };

  /** A login held after its password check while `during` runs. */
  const loginAround = async (username: string, password: string, during: () => Promise<void>) => {
    const held = hashing.holdNextVerify();
    const login = settle(auth.login(username, password, meta));
    await held.reached;
    try {
      await during();
    } finally {
      held.release();
    }
    return login;
  };

  /** A login held inside its transaction, holding the user's row, while `during` starts and blocks. */
  const loginHoldingRowAround = async (username: string, password: string, during: () => Promise<void>) => {
    const held = locks.holdNext();
    const login = settle(auth.login(username, password, meta));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      held.reached,
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error('the login never locked its user row')), 5_000);
      }),
    ]).finally(() => clearTimeout(timer));
    const blocked = settle(during());
    try {
      // `during` waits for the row the login holds (it MUST, or it misses the login's session).
      await untilDefined(async () => {
        const [row] = await query<{ waiting: number }>(
          "select count(*)::int as waiting from pg_stat_activity where datname = $1 and wait_event_type = 'Lock'",
          [db.name],
        );
        return (row?.waiting ?? 0) > 0 ? true : undefined;
      }, 'the revocation to wait for the login');
    } finally {
      held.release();
    }
    const done = await blocked;
    if ('error' in done) throw done.error;
    return login;
  };

  /** The late login's session, if it got one, is dead: its refresh and its access token refused. */
  const expectNoLiveSession = async (outcome: Awaited<ReturnType<typeof settle<unknown>>>) => {
    if ('error' in outcome) {
      expect(outcome).toMatchObject(INVALID_LOGIN);
      return;
    }
    const pair = outcome.value as { accessToken: string; refreshToken: string };
    expect(await settle(auth.refresh(pair.refreshToken))).toMatchObject({ error: { code: 'UNAUTHORIZED' } });
    expect(await settle(auth.authenticate(pair.accessToken))).toMatchObject({
      error: { code: 'UNAUTHORIZED' },
    });
  };

  it('refuses a login checked before a password change (as a wrong password), and leaves no session', async () => {
    const account = await newAccount();
    const late = await loginAround(account.username, account.password, () =>
      auth.changePassword(account.principal, account.password, NEW_PASSWORD),
    );
    expect(late).toMatchObject(INVALID_LOGIN);
    expect(await liveSessions(account.principal.userId)).toBe(0);
  });

  it('refuses a login checked before a password reset', async () => {
    const account = await newAccount();
    const token = await auth.issueEmailToken(account.principal.userId, 'reset_password');
    const late = await loginAround(account.username, account.password, () =>
      auth.resetPassword(token, NEW_PASSWORD),
    );
    expect(late).toMatchObject(INVALID_LOGIN);
    expect(await liveSessions(account.principal.userId)).toBe(0);
  });

  it('refuses a login checked before logout-all', async () => {
    const account = await newAccount();
    const late = await loginAround(account.username, account.password, () =>
      auth.logoutAll(account.principal),
    );
    expect(late).toMatchObject(INVALID_LOGIN);
    expect(await liveSessions(account.principal.userId)).toBe(0);
  });

  it('refuses a login checked before the account was locked, even once unlocked', async () => {
    const account = await newAccount();
    const late = await loginAround(account.username, account.password, async () => {
      await auth.setLocked(account.principal.userId, true);
      await auth.setLocked(account.principal.userId, false);
    });
    expect(late).toMatchObject(INVALID_LOGIN);
    expect(await liveSessions(account.principal.userId)).toBe(0);
    // Unlocked: the owner logs in again.
    await expect(auth.login(account.username, account.password, meta)).resolves.toMatchObject({
      user: { id: account.principal.userId },
    });
  });

  it('revokes the session of a login holding the user row when logout-all runs meanwhile', async () => {
    const account = await newAccount();
    const late = await loginHoldingRowAround(account.username, account.password, () =>
      auth.logoutAll(account.principal),
    );
    await expectNoLiveSession(late);
    expect(await liveSessions(account.principal.userId)).toBe(0);
  });

  it('revokes the session of a login holding the user row when the account is locked meanwhile', async () => {
    const account = await newAccount();
    const late = await loginHoldingRowAround(account.username, account.password, () =>
      auth.setLocked(account.principal.userId, true),
    );
    await auth.setLocked(account.principal.userId, false);
    await expectNoLiveSession(late);
    expect(await liveSessions(account.principal.userId)).toBe(0);
  });

  it('refuses a password change checked before a reset: the reset password stands (review 30)', async () => {
    // Whoever holds a session and the old password (a thief) changes it while the owner resets it by
    // mail: the change's check of the old password passed before the reset committed. Written after
    // it, that change put the thief's password over the owner's and ended the owner's new sessions.
    const account = await newAccount();
    const token = await auth.issueEmailToken(account.principal.userId, 'reset_password');
    const held = hashing.holdNextVerify();
    const change = settle(auth.changePassword(account.principal, account.password, 'Thief-Chosen-Pass-77'));
    await held.reached;
    try {
      await auth.resetPassword(token, NEW_PASSWORD);
    } finally {
      held.release();
    }
    expect(await change).toMatchObject({ error: { code: 'UNAUTHORIZED' } });
    await expect(auth.login(account.username, NEW_PASSWORD, meta)).resolves.toMatchObject({
      user: { id: account.principal.userId },
    });
  });

  it('a rehash on login never puts the old password back over a change made meanwhile', async () => {
    const account = await newAccount();
    hashing.state.rehashAll = true;
    try {
      await loginAround(account.username, account.password, () =>
        auth.changePassword(account.principal, account.password, NEW_PASSWORD),
      );
    } finally {
      hashing.state.rehashAll = false;
    }
    await expect(auth.login(account.username, NEW_PASSWORD, meta)).resolves.toMatchObject({
      user: { id: account.principal.userId },
    });
    expect(await settle(auth.login(account.username, account.password, meta))).toMatchObject(INVALID_LOGIN);
  });

  it('two logins due a rehash at once both succeed (the second checks the password against the new hash)', async () => {
    const account = await newAccount();
    const [before] = await query<{ password_hash: string }>('select password_hash from users where id = $1', [
      account.principal.userId,
    ]);
    hashing.state.rehashAll = true;
    let other: unknown;
    let late: Awaited<ReturnType<typeof loginAround>>;
    try {
      late = await loginAround(account.username, account.password, async () => {
        other = await auth.login(account.username, account.password, meta);
      });
    } finally {
      hashing.state.rehashAll = false;
    }
    expect(other).toMatchObject({ user: { id: account.principal.userId } });
    expect(late).toMatchObject({ value: { user: { id: account.principal.userId } } });
    const [after] = await query<{ password_hash: string }>('select password_hash from users where id = $1', [
      account.principal.userId,
    ]);
    expect(after?.password_hash).not.toBe(before?.password_hash);
    await expect(auth.login(account.username, account.password, meta)).resolves.toMatchObject({
      user: { id: account.principal.userId },
    });
  });
});
