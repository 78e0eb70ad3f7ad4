/**
 * The node-local revocation feed behind `authenticate` (src/domain/auth/revocation-feed.ts,
 * migration 0012's triggers), on real nodes sharing Postgres and Redis. Node B's bus drops every
 * SESSIONS_REVOKED_TOPIC message and B reads its database through a TCP proxy, so:
 * - a session revoked on node A (logout, logout-all, password change, an operator's SQL update,
 *   a deleted session row) is refused on B by the feed's poll alone, and B closes (4001) the
 *   socket the session had open there before: every request sent 1 s after
 *   the revocation committed gets 401 (B has the session's row in memory and, while its feed is
 *   fresh, uses it however old it is, so nothing but the feed could refuse it), and a new
 *   WebSocket upgrade is refused;
 *   after logout-all and a password change, a new login of the same user works on B;
 * - a node started after revocations refuses those sessions from its first request;
 * - with B's database unreachable (the proxy holds every byte) B's feed goes stale and B lets no
 *   upgrade of the revoked token in (nor any other: it cannot read); once the database is back the
 *   token is refused and others work.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { Subprotocol } from '../../protocol/src/version.js';
import { type RunningNode, startNode } from '../../src/bin/start-node.js';
import { runShutdown } from '../../src/platform/shutdown.js';
import {
  captureLogs,
  createMigratedDatabase,
  sharedRedisUrl,
  type TestDatabase,
  testConfig,
  uniqueRedisPrefix,
} from '../support/context.js';
import { httpClient, type Registered, registerUser } from '../support/http.js';
import {
  droppingRevocations,
  expectRefusedAfterBound,
  REVOCATION_BOUND_MS,
} from '../support/lost-revocations.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';
import { openSocket, upgradeStatus } from '../support/ws-client.js';

type Api = ReturnType<typeof httpClient>;

describe('revocation feed: sessions revoked anywhere are refused without a per-request session read', () => {
  let db: TestDatabase;
  let proxy: TcpProxy;
  let nodeA: RunningNode;
  let nodeB: RunningNode;
  let apiA: Api;
  let apiB: Api;
  const extraNodes: RunningNode[] = [];
  const logs = captureLogs();
  let env: (nodeId: string, overrides?: Record<string, string>) => ReturnType<typeof testConfig>;

  /** Node B's real Redis bus drops every SESSIONS_REVOKED_TOPIC message (a lost message). */
  const lossy = droppingRevocations();

  async function sql(query: string, values: unknown[] = []): Promise<void> {
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      await client.query(query, values);
    } finally {
      await client.end();
    }
  }

  beforeAll(async () => {
    db = await createMigratedDatabase();
    const url = new URL(db.url);
    proxy = await startTcpProxy({ host: url.hostname, port: Number(url.port) });
    const viaProxy = new URL(db.url);
    viaProxy.hostname = '127.0.0.1';
    viaProxy.port = String(proxy.port);
    const prefix = uniqueRedisPrefix();
    env = (nodeId, overrides = {}) =>
      testConfig({
        DATABASE_URL: db.url,
        REDIS_URL: sharedRedisUrl(),
        REDIS_PREFIX: prefix,
        NODE_ID: nodeId,
        RATE_LIMIT_PER_MINUTE: '100000',
        ...overrides,
      });
    nodeA = await startNode(env('feed-a'), logs.log, { pid: process.pid });
    nodeB = await startNode(env('feed-b', { DATABASE_URL: viaProxy.toString() }), logs.log, {
      pid: process.pid,
      wrapBus: lossy.wrap,
    });
    apiA = httpClient(nodeA.baseUrl);
    apiB = httpClient(nodeB.baseUrl);
  });
  afterAll(async () => {
    proxy.resume();
    for (const node of [nodeA, nodeB, ...extraNodes])
      await runShutdown(node.shutdownSteps, { log: logs.log, timeoutMs: 10_000 });
    await proxy.close();
    await db.drop();
  });

  /** Every request to B sent 1 s after the revocation is refused, and so is a new upgrade. */
  async function expectRefusedOnB(token: string, revokedAt: number): Promise<void> {
    await expectRefusedAfterBound(nodeB.baseUrl, token, revokedAt);
    expect(await upgradeStatus(nodeB.uwsUrl ?? '', [Subprotocol.JSON, `bearer.${token}`])).toBe(401);
  }

  const login = async (user: Registered, password = user.password) => {
    const response = await apiA.post<{ accessToken: string }>('/v1/auth/login', {
      login: user.username,
      password,
    });
    expect(response.status).toBe(200);
    return response.body.accessToken;
  };

  /** Each ends the user's session on node A (or in the database); returns the password to log in with next. */
  const revocations: [string, (user: Registered) => Promise<string | undefined>][] = [
    [
      'logout',
      async (user) => {
        expect((await apiA.post('/v1/auth/logout', { refreshToken: user.refreshToken })).status).toBe(204);
        return user.password;
      },
    ],
    [
      'logout-all',
      async (user) => {
        expect((await apiA.post('/v1/auth/logout-all', undefined, user.accessToken)).status).toBe(204);
        return user.password;
      },
    ],
    [
      'password change',
      async (user) => {
        const newPassword = 'Umber-Falcon-58#';
        const changed = await apiA.call('PUT', '/v1/auth/password', {
          token: user.accessToken,
          body: { currentPassword: user.password, newPassword },
        });
        expect(changed.status).toBe(204);
        return newPassword;
      },
    ],
    [
      "an operator's SQL update of revoked_at (no announcement at all)",
      async (user) => {
        await sql("update sessions set revoked_at = now(), revoked_reason = 'operator' where user_id = $1", [
          user.id,
        ]);
        return undefined;
      },
    ],
    [
      'the session row deleted',
      async (user) => {
        await sql('delete from sessions where user_id = $1', [user.id]);
        return undefined;
      },
    ],
  ];

  for (const [label, revoke] of revocations) {
    it(`refuses on node B by the poll alone (bus message lost): ${label}`, async () => {
      const user = await registerUser(apiA);
      expect((await apiB.get('/v1/me', user.accessToken)).status).toBe(200);
      const socket = await openSocket(nodeB.uwsUrl ?? '', user.accessToken);
      await socket.next((frame) => frame.t === 'hello');
      const droppedBefore = lossy.dropped();

      const password = await revoke(user);
      const revokedAt = Date.now();
      await expectRefusedOnB(user.accessToken, revokedAt);
      // The socket opened before: closed by what the poll reported (B never got the bus message).
      expect((await socket.closed).code).toBe(4001);
      if (password !== undefined) {
        // Announced revocations reached B's bus and were dropped there: the poll refused the token.
        for (let i = 0; i < 100 && lossy.dropped() === droppedBefore; i++) await sleep(50);
        expect(lossy.dropped()).toBeGreaterThan(droppedBefore);
        // A user whose every session ended logs in again: the new session works on B.
        const fresh = await login(user, password);
        const me = await apiB.get<{ id: string }>('/v1/me', fresh);
        expect(me.status).toBe(200);
        expect(me.body.id).toBe(user.id);
      }
    });
  }

  it('refuses sessions revoked before the node started, from its first request', async () => {
    const loggedOut = await registerUser(apiA);
    expect((await apiA.post('/v1/auth/logout', { refreshToken: loggedOut.refreshToken })).status).toBe(204);
    const changed = await registerUser(apiA);
    const newPassword = 'Sepia-Marten-31$';
    expect(
      (
        await apiA.call('PUT', '/v1/auth/password', {
          token: changed.accessToken,
          body: { currentPassword: changed.password, newPassword },
        })
      ).status,
    ).toBe(204);

    const nodeC = await startNode(env('feed-c', { ROLE: 'api' }), logs.log, { pid: process.pid });
    extraNodes.push(nodeC);
    const apiC = httpClient(nodeC.baseUrl);
    expect((await apiC.get('/v1/me', loggedOut.accessToken)).status).toBe(401);
    expect((await apiC.get('/v1/me', changed.accessToken)).status).toBe(401);
    expect((await apiC.get('/v1/me', await login(changed, newPassword))).status).toBe(200);
  });

  it('does not serve a revoked session on stale data when its database is unreachable', async () => {
    const victim = await registerUser(apiA);
    const bystander = await registerUser(apiA);
    expect((await apiB.get('/v1/me', victim.accessToken)).status).toBe(200);
    expect((await apiB.get('/v1/me', bystander.accessToken)).status).toBe(200);

    // B's database goes silent (no error, no answer), then the session ends on A; B never hears.
    proxy.blackhole();
    expect((await apiA.post('/v1/auth/logout', { refreshToken: victim.refreshToken })).status).toBe(204);
    const revokedAt = Date.now();
    // Until the bound has passed B may still let it in; no upgrade sent after the bound may open.
    // (An upgrade needs no database once the session check is done; B answers nothing while it
    // cannot read the session: an attempt is given 2 s.)
    const attempt = (token: string) =>
      new Promise<number | 'no answer'>((resolve) => {
        const ws = new WebSocket(nodeB.uwsUrl ?? '', [Subprotocol.JSON, `bearer.${token}`]);
        const timer = setTimeout(() => {
          ws.terminate();
          resolve('no answer');
        }, 2_000);
        const done = (outcome: number | 'no answer') => {
          clearTimeout(timer);
          resolve(outcome);
        };
        ws.once('open', () => {
          ws.close();
          done(101);
        });
        ws.once('unexpected-response', (_req, res) => done(res.statusCode ?? 0));
        ws.once('error', () => done(0));
      });
    for (;;) {
      const sentAt = Date.now();
      const outcome = await attempt(victim.accessToken);
      if (outcome !== 101) break;
      expect(sentAt - revokedAt, 'let in on stale data after the bound').toBeLessThan(REVOCATION_BOUND_MS);
      await sleep(50);
    }
    // The feed is stale now: nobody is let in without a read, the bystander neither.
    expect(await attempt(victim.accessToken)).not.toBe(101);
    expect(await attempt(bystander.accessToken)).not.toBe(101);

    proxy.resume();
    // Back: the revoked session is refused, the other one served.
    expect((await apiB.get('/v1/me', victim.accessToken)).status).toBe(401);
    for (let i = 0; i < 100; i++) {
      if ((await apiB.get('/v1/me', bystander.accessToken)).status === 200) break;
      await sleep(50);
    }
    expect((await apiB.get('/v1/me', bystander.accessToken)).status).toBe(200);
    expect((await apiB.get('/v1/me', victim.accessToken)).status).toBe(401);
  });
});
