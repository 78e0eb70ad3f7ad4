/**
 * The session check (src/domain/auth/: the revocation feed, and the session-row cache with its
 * per-tick batching behind it), on two real nodes sharing Postgres and Redis:
 * - a session revoked on node A (logout, password change, lock by an admin, refresh-token reuse)
 *   is refused at once on A and on node B once 1 s has passed, although B never hears
 *   the revocation (B's bus is the real Redis bus with SESSIONS_REVOKED_TOPIC filtered out, so the
 *   message is lost there and only the feed's poll, or the cache's staleness bound when the feed is
 *   stale, can end the session): REST 401, and a new WebSocket upgrade is refused;
 * - 50 upgrades and 50 GET /v1/me arriving at once (their users changed 1 s before, so the feed
 *   sends every check to the database, in shared batches) each get their own user.
 * test/integration/revocation-feed.int.test.ts covers the feed itself.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
import { openSocket, type TestSocket, upgradeStatus } from '../support/ws-client.js';

const ADMIN = { email: 'session-cache-admin@example.test', password: 'Saffron-Lynx-2024!' };

describe('session checks: node-local cache and per-tick batching', () => {
  let db: TestDatabase;
  let nodeA: RunningNode;
  let nodeB: RunningNode;
  const sockets: TestSocket[] = [];
  const logs = captureLogs();

  /** Node B's real Redis bus drops every SESSIONS_REVOKED_TOPIC message (a lost message). */
  const lossy = droppingRevocations();

  beforeAll(async () => {
    db = await createMigratedDatabase();
    const prefix = uniqueRedisPrefix();
    const env = (nodeId: string) =>
      testConfig({
        DATABASE_URL: db.url,
        REDIS_URL: sharedRedisUrl(),
        REDIS_PREFIX: prefix,
        NODE_ID: nodeId,
        RATE_LIMIT_PER_MINUTE: '100000',
        // A spent refresh token presented again is reuse at once (no racing-tabs grace).
        REFRESH_REUSE_GRACE_S: '0',
        ADMIN_EMAIL: ADMIN.email,
        ADMIN_PASSWORD: ADMIN.password,
      });
    nodeA = await startNode(env('node-a'), logs.log, { pid: process.pid });
    nodeB = await startNode(env('node-b'), logs.log, { pid: process.pid, wrapBus: lossy.wrap });
  });
  afterAll(async () => {
    for (const socket of sockets) socket.close();
    for (const node of [nodeA, nodeB])
      await runShutdown(node.shutdownSteps, { log: logs.log, timeoutMs: 10_000 });
    await db.drop();
  });

  const bearer = (token: string) => [Subprotocol.JSON, `bearer.${token}`];

  type Api = ReturnType<typeof httpClient>;
  const adminToken = async (api: Api) =>
    (
      await api.post<{ accessToken: string }>('/v1/auth/login', {
        login: ADMIN.email,
        password: ADMIN.password,
      })
    ).body.accessToken;

  /** Each ends the user's session through node A, checking A's answer to the revoking request. */
  const revocations: [string, (api: Api, user: Registered) => Promise<void>][] = [
    [
      'logout (one session)',
      async (api, user) => {
        const logout = await api.post('/v1/auth/logout', { refreshToken: user.refreshToken });
        expect(logout.status).toBe(204);
      },
    ],
    [
      'password change (every session of the user)',
      async (api, user) => {
        const changed = await api.call('PUT', '/v1/auth/password', {
          token: user.accessToken,
          body: { currentPassword: user.password, newPassword: 'Cobalt-Heron-77?' },
        });
        expect(changed.status).toBe(204);
      },
    ],
    [
      'account locked by an admin',
      async (api, user) => {
        const locked = await api.post(`/v1/admin/users/${user.id}/lock`, undefined, await adminToken(api));
        expect(locked.status).toBe(204);
      },
    ],
    [
      'refresh token reused (the session is revoked as likely stolen)',
      async (api, user) => {
        expect((await api.post('/v1/auth/refresh', { refreshToken: user.refreshToken })).status).toBe(200);
        const reuse = await api.post('/v1/auth/refresh', { refreshToken: user.refreshToken });
        expect(reuse.status).toBe(401);
      },
    ],
  ];

  for (const [label, revoke] of revocations) {
    it(`refuses a session revoked on another node within 1 s though the bus message is lost: ${label}`, async () => {
      const apiA = httpClient(nodeA.baseUrl);
      const apiB = httpClient(nodeB.baseUrl);
      const user = await registerUser(apiA);
      // Node B has checked the session and cached the answer; a socket opens there too.
      expect((await apiB.get('/v1/me', user.accessToken)).status).toBe(200);
      const socket = await openSocket(nodeB.uwsUrl ?? '', user.accessToken, 'json');
      sockets.push(socket);
      await socket.next((f) => f.t === 'hello');
      socket.close();
      const droppedBefore = lossy.dropped();

      await revoke(apiA, user);
      const revokedAt = Date.now();
      // The revoking node forgets its own cached check at once.
      expect((await apiA.get('/v1/me', user.accessToken)).status).toBe(401);
      await expectRefusedAfterBound(nodeB.baseUrl, user.accessToken, revokedAt);
      expect(await upgradeStatus(nodeB.uwsUrl ?? '', bearer(user.accessToken))).toBe(401);
      // B did receive the announcement and dropped it: the bound, not the bus, refused the token.
      for (let i = 0; i < 100 && lossy.dropped() === droppedBefore; i++) await sleep(50);
      expect(lossy.dropped()).toBeGreaterThan(droppedBefore);
    });
  }

  it('gives each of 50 simultaneous upgrades and 50 simultaneous GET /v1/me its own user', async () => {
    const apiA = httpClient(nodeA.baseUrl);
    const users: Registered[] = [];
    // Ten registrations at a time: each hashes a password (argon2id).
    while (users.length < 50) {
      users.push(...(await Promise.all(Array.from({ length: 10 }, () => registerUser(apiA)))));
    }

    // A change of each user (locked and unlocked again, as an operator's SQL would) puts them in the
    // revocation feed; once 1 s has passed every node reads their session rows again (batched).
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    const ids = users.map((user) => user.id);
    await client.query('update users set locked_at = now() where id = any($1)', [ids]);
    await client.query('update users set locked_at = null where id = any($1)', [ids]);
    await client.end();
    await sleep(REVOCATION_BOUND_MS);

    // Node A has checked none of these sessions: every upgrade needs a lookup, all in one tick.
    const opened = await Promise.all(users.map((user) => openSocket(nodeA.uwsUrl ?? '', user.accessToken)));
    sockets.push(...opened);
    const hellos = await Promise.all(opened.map((socket) => socket.next((f) => f.t === 'hello')));
    expect(hellos.map((hello) => (hello.d as { userId: string }).userId)).toEqual(users.map((u) => u.id));

    // Node B has not seen them either: the REST lookups are batched too.
    const apiB = httpClient(nodeB.baseUrl);
    const mes = await Promise.all(users.map((user) => apiB.get<{ id: string }>('/v1/me', user.accessToken)));
    expect(mes.map((me) => me.status)).toEqual(users.map(() => 200));
    expect(mes.map((me) => me.body.id)).toEqual(users.map((u) => u.id));
    for (const socket of opened) socket.close();
  });
});
