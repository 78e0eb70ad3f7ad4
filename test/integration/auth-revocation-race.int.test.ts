/**
 * A revocation heard while a session check's row is being read (src/domain/auth/service.ts,
 * principalOf): the row may have been read before the revocation committed, and the caller (a
 * WebSocket upgrade) has no socket yet for the revocation to close. The check must not answer from
 * that row: refused when the session itself was revoked, read again when something about its user
 * changed. On the real auth service over Postgres; the session-row query is held after it ran (a
 * Kysely plugin awaiting a deferred before handing its result back), so its row predates the
 * revocation.
 */
import { type KyselyPlugin, type QueryId, type RootOperationNode, TableNode } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
