/**
 * The WebSocket edge over real sockets on both transports (uWebSockets.js on WS_PORT, and
 * @fastify/websocket at /ws on PORT) and both encodings: authentication at the upgrade, hello,
 * ping, presence between contacts, revocation closing sockets with 4001, token expiry, and a slow
 * consumer closed with 1013. The test holds the signing key (JWT_PRIVATE_KEY) so it can mint
 * tokens with short lifetimes on real sessions.
 */

import { request as httpRequest } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { type CryptoKey, exportJWK, generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { UserId } from '../../protocol/src/ids.js';
import { type RunningNode, startNode } from '../../src/bin/start-node.js';
import { NOTIFICATIONS_TOPIC } from '../../src/gateway/index.js';
import { createRedisBus } from '../../src/platform/bus/redis-bus.js';
import { createRedisClient } from '../../src/platform/redis.js';
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
import { tokenWithLifetime as mintToken } from '../support/tokens.js';
import { openSocket, type TestSocket, upgradeStatus } from '../support/ws-client.js';

const KID = 'gateway-test-key';

describe('WebSocket gateway', () => {
  let db: TestDatabase;
  let node: RunningNode;
  let api: ReturnType<typeof httpClient>;
  let signingKey: CryptoKey;
  const prefix = uniqueRedisPrefix();
  const logs = captureLogs();
  const sockets: TestSocket[] = [];

  beforeAll(async () => {
    const pair = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
    signingKey = pair.privateKey as CryptoKey;
    const jwk = { ...(await exportJWK(pair.privateKey)), kid: KID };
    db = await createMigratedDatabase();
    node = await startNode(
      testConfig({
        DATABASE_URL: db.url,
        REDIS_URL: sharedRedisUrl(),
        REDIS_PREFIX: prefix,
        JWT_PRIVATE_KEY: JSON.stringify(jwk),
        WS_MAX_BUFFERED_BYTES: String(256 * 1024),
      }),
      logs.log,
      { pid: process.pid },
    );
    api = httpClient(node.baseUrl);
  });
  afterAll(async () => {
    for (const socket of sockets) socket.close();
    await runShutdown(node.shutdownSteps, { log: logs.log, timeoutMs: 10_000 });
    await db.drop();
  });

  const endpoints = () => ({
    uws: node.uwsUrl ?? '',
    'fastify-ws': `${node.baseUrl.replace(/^http/, 'ws')}/ws`,
  });
  const open = async (...args: Parameters<typeof openSocket>) => {
    const socket = await openSocket(...args);
    sockets.push(socket);
    return socket;
  };
  /** A token for a real session of `user`, signed by the test's key, with the given lifetime. */
  const tokenWithLifetime = (user: Registered, seconds: number) =>
    mintToken(user.accessToken, signingKey, KID, seconds);

  it('runs on native uWebSockets.js, and says so in /health/live and /metrics', async () => {
    expect(node.uwsUrl).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/ws$/);
    const live = await api.get<{ websocket: { engine: string } }>('/health/live');
    expect(live.body.websocket.engine).toBe('uws');
    const metrics = await (await fetch(`${node.baseUrl}/metrics`)).text();
    expect(metrics).toMatch(/^gigwire_ws_engine_info\{engine="uws"[^}]*\} 1$/m);
  });

  describe.each(['uws', 'fastify-ws'] as const)('on %s', (transport) => {
    describe.each(['msgpack', 'json'] as const)('with %s', (encoding) => {
      it('greets with hello and answers ping with and without an id', async () => {
        const user = await registerUser(api);
        const socket = await open(endpoints()[transport], user.accessToken, encoding);
        const hello = await socket.next((f) => f.t === 'hello');
        expect(hello.d).toMatchObject({
          userId: user.id,
          protocolVersion: 1,
          encoding,
          heartbeatMs: 30_000,
          limits: { maxFrameBytes: 65536, maxMessagesPerSecond: 50, maxBurst: 100, maxBufferedBytes: 262144 },
        });
        const reply = await socket.request('ping');
        expect(reply).toMatchObject({ t: 'ok', d: { serverTime: expect.any(Number) } });
        socket.send({ t: 'ping' });
        await socket.next((f) => f.t === 'pong');
        const invalid = await socket.request('presence.subscribe', { userIds: ['not-a-uuid'] });
        expect(invalid).toMatchObject({ t: 'error', d: { code: 'VALIDATION_FAILED' } });
        const unknown = await socket.request('nope.nothing');
        expect(unknown).toMatchObject({ t: 'error', d: { code: 'UNKNOWN_TYPE' } });
        // Still serving after the errors.
        expect((await socket.request('ping')).t).toBe('ok');
      });

      it('tells a contact online once for many sockets, offline once with lastSeenAt', async () => {
        const [a, b] = [await registerUser(api), await registerUser(api)];
        expect((await api.post(`/v1/me/contacts/${b.id}`, undefined, a.accessToken)).status).toBe(204);
        // Presence is for mutual contacts: b adds a back.
        expect((await api.post(`/v1/me/contacts/${a.id}`, undefined, b.accessToken)).status).toBe(204);
        const watcher = await open(endpoints()[transport], a.accessToken, encoding);
        const subscribed = await watcher.request('presence.subscribe', { userIds: [b.id] });
        expect(subscribed).toMatchObject({ t: 'ok', d: { presence: [{ userId: b.id, status: 'offline' }] } });

        const presenceOf = () => watcher.frames.filter((f) => f.t === 'presence');
        const b1 = await open(endpoints().uws, b.accessToken, 'json');
        const b2 = await open(endpoints()['fastify-ws'], b.accessToken, 'msgpack');
        await watcher.next((f) => f.t === 'presence');
        const online = await api.get<{ presence: unknown }>(`/v1/users/${b.id}`, a.accessToken);
        expect(online.body.presence).toEqual({ status: 'online', lastSeenAt: null });
        await sleep(300);
        expect(presenceOf()).toEqual([
          { t: 'presence', d: { userId: b.id, status: 'online', lastSeenAt: null } },
        ]);

        b1.close();
        await b1.closed;
        await sleep(300);
        expect(presenceOf()).toHaveLength(1);

        const before = Date.now();
        b2.close();
        const offline = await watcher.next(
          (f) => f.t === 'presence' && (f.d as { status: string }).status === 'offline',
        );
        const lastSeenAt = Date.parse((offline.d as { lastSeenAt: string }).lastSeenAt);
        expect(lastSeenAt).toBeGreaterThanOrEqual(before - 1000);
        expect(presenceOf()).toHaveLength(2);

        const profile = await api.get<{ presence: unknown }>(`/v1/users/${b.id}`, a.accessToken);
        expect(profile.body.presence).toEqual({
          status: 'offline',
          lastSeenAt: (offline.d as { lastSeenAt: string }).lastSeenAt,
        });

        const stranger = await registerUser(api);
        const forbidden = await watcher.request('presence.subscribe', { userIds: [stranger.id] });
        expect(forbidden).toMatchObject({ t: 'error', d: { code: 'FORBIDDEN' } });
      });
    });
  });

  it("picks the client's first offered encoding on both transports and answers with that subprotocol", async () => {
    const user = await registerUser(api);
    for (const url of Object.values(endpoints())) {
      for (const offered of [
        ['gigwire.v1.json', 'gigwire.v1.msgpack'],
        ['gigwire.v1.msgpack', 'gigwire.v1.json'],
      ]) {
        const ws = new WebSocket(url, [...offered, `bearer.${user.accessToken}`]);
        const first = await new Promise<{ isBinary: boolean }>((resolve, reject) => {
          ws.once('message', (_data, isBinary) => resolve({ isBinary }));
          ws.once('error', reject);
        });
        expect(ws.protocol).toBe(offered[0]);
        expect(first.isBinary).toBe(offered[0] === 'gigwire.v1.msgpack');
        ws.close();
      }
    }
  });

  it('refuses upgrades without a valid token with 401 and no socket', async () => {
    const user = await registerUser(api);
    for (const url of Object.values(endpoints())) {
      expect(await upgradeStatus(url, ['gigwire.v1.json'])).toBe(401);
      const [header, payload] = user.accessToken.split('.');
      expect(await upgradeStatus(url, ['gigwire.v1.json', `bearer.${header}.${payload}.AAAA`])).toBe(401);
      expect(
        await upgradeStatus(url, ['gigwire.v1.json', `bearer.${await tokenWithLifetime(user, -120)}`]),
      ).toBe(401);
      // The three ways to send the token all open a socket.
      expect(await upgradeStatus(url, ['gigwire.v1.json', `bearer.${user.accessToken}`])).toBe(101);
      expect(
        await upgradeStatus(url, ['gigwire.v1.json'], { authorization: `Bearer ${user.accessToken}` }),
      ).toBe(101);
      expect(await upgradeStatus(`${url}?access_token=${user.accessToken}`, ['gigwire.v1.json'])).toBe(101);
    }
    expect((await api.post('/v1/auth/logout-all', undefined, user.accessToken)).status).toBe(204);
    for (const url of Object.values(endpoints())) {
      expect(await upgradeStatus(url, ['gigwire.v1.json', `bearer.${user.accessToken}`])).toBe(401);
    }
    expect(logs.text()).not.toContain(user.accessToken);
    // The refusal is problem+json like every REST error: code, instance and a request id.
    for (const url of Object.values(endpoints())) {
      const refused = await new Promise<{ status: number; type: string; body: string }>((resolve, reject) => {
        const request = httpRequest(url.replace(/^ws/, 'http'), {
          headers: {
            connection: 'Upgrade',
            upgrade: 'websocket',
            'sec-websocket-version': '13',
            'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
            'sec-websocket-protocol': 'gigwire.v1.json',
          },
        });
        request.on('response', (response) => {
          let body = '';
          response.setEncoding('utf8');
          response.on('data', (chunk: string) => {
            body += chunk;
          });
          response.on('end', () =>
            resolve({
              status: response.statusCode ?? 0,
              type: String(response.headers['content-type']),
              body,
            }),
          );
        });
        request.on('error', reject);
        request.end();
      });
      expect(refused.status).toBe(401);
      expect(refused.type).toContain('application/problem+json');
      expect(JSON.parse(refused.body)).toMatchObject({
        code: 'UNAUTHORIZED',
        status: 401,
        instance: '/ws',
        requestId: expect.any(String),
      });
    }
  });

  // The 1 s bound itself, with the bus message lost: session-cache.int.test.ts. Not timed here (the
  // password change hashes twice with argon2: on a loaded box that alone took over a second).
  it('closes every socket of a user with 4001 on a password change', async () => {
    const user = await registerUser(api);
    const s1 = await open(endpoints().uws, user.accessToken, 'msgpack');
    const s2 = await open(endpoints()['fastify-ws'], user.accessToken, 'json');
    await Promise.all([s1.next((f) => f.t === 'hello'), s2.next((f) => f.t === 'hello')]);
    const change = await api.call('PUT', '/v1/auth/password', {
      token: user.accessToken,
      body: { currentPassword: user.password, newPassword: 'Tangerine-Bison-31*' },
    });
    expect(change.status).toBe(204);
    const [c1, c2] = await Promise.all([s1.closed, s2.closed]);
    expect([c1.code, c2.code]).toEqual([4001, 4001]);
    expect(await upgradeStatus(endpoints().uws, ['gigwire.v1.json', `bearer.${user.accessToken}`])).toBe(401);
  });

  it('closes a connection whose token expires without auth.refresh with 4001, and keeps one that refreshed', async () => {
    const user = await registerUser(api);
    const expiring = await open(endpoints().uws, await tokenWithLifetime(user, 2), 'json');
    const refreshed = await open(endpoints()['fastify-ws'], await tokenWithLifetime(user, 2), 'json');
    const refresh = await refreshed.request('auth.refresh', {
      accessToken: await tokenWithLifetime(user, 60),
    });
    expect(refresh).toMatchObject({ t: 'ok', d: { expiresAt: expect.any(Number) } });
    const closed = await expiring.closed;
    expect(closed.code).toBe(4001);
    await sleep(1_500);
    expect((await refreshed.request('ping')).t).toBe('ok');
    const other = await registerUser(api);
    const foreign = await refreshed.request('auth.refresh', { accessToken: other.accessToken });
    expect(foreign).toMatchObject({ t: 'error', d: { code: 'FORBIDDEN' } });
  }, 15_000);

  describe.each(['uws', 'fastify-ws'] as const)('slow consumer on %s', (transport) => {
    it('is closed with 1013 before its buffer grows without bound', async () => {
      const user = await registerUser(api);
      const socket = await open(endpoints()[transport], user.accessToken, 'msgpack');
      await socket.next((f) => f.t === 'hello');
      // Stop reading: the kernel buffers fill, then the server's own buffer grows.
      (socket.ws as unknown as { _socket: { pause: () => void } })._socket.pause();

      const publisher = createRedisClient({ endpoint: sharedRedisUrl(), name: 'test-pub', log: logs.log });
      const subscriber = createRedisClient({ endpoint: sharedRedisUrl(), name: 'test-sub', log: logs.log });
      const bus = createRedisBus({ publisher, subscriber, prefix, log: logs.log });
      const rssBefore = process.memoryUsage().rss;
      const body = 'x'.repeat(30_000);
      for (let i = 0; i < 400; i++) {
        await bus.publish(NOTIFICATIONS_TOPIC, {
          userId: UserId.parse(user.id),
          notification: {
            id: `n${i}`,
            kind: 'test.flood',
            title: 'flood',
            body,
            createdAt: new Date().toISOString(),
          },
        });
      }
      (socket.ws as unknown as { _socket: { resume: () => void } })._socket.resume();
      const closed = await socket.closed;
      expect(closed.code).toBe(1013);
      // 400 × 30 KB = 12 MB pushed; the server kept at most its 256 KiB bound per socket.
      expect(process.memoryUsage().rss - rssBefore).toBeLessThan(150 * 1024 * 1024);
      await bus.close();
      publisher.disconnect();
      subscriber.disconnect();
    }, 30_000);
  });
});
