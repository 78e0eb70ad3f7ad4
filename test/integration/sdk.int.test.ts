/**
 * The TypeScript SDK (protocol/src/client) against a real gigwire over real sockets, with the `ws`
 * package's WebSocket injected as Node 20 has none: both transports and both encodings, presence
 * between contacts (and FORBIDDEN for a non-contact), reauthentication after a 401 at the upgrade
 * and after a 4001 close, token refresh (explicit and scheduled ahead of `exp`), and, against a
 * spawned server that is SIGKILLed and restarted on the same ports, reconnecting by itself with the
 * presence subscription restored and a request made meanwhile delivered.
 */
import { type CryptoKey, exportJWK, generateKeyPair } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import {
  type ClientEvents,
  type ClientOptions,
  createClient,
  type GigwireClient,
  GigwireError,
  type TokenReason,
} from '../../protocol/src/client/index.js';
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
import { freePort } from '../support/servers.js';
import { type GigwireProcess, spawnGigwire } from '../support/spawn.js';
import { tokenWithLifetime as mintToken } from '../support/tokens.js';

const KID = 'sdk-test-key';
const EVENTS = ['hello', 'connected', 'disconnected', 'closed', 'presence', 'notification', 'error'] as const;

type Seen = {
  [E in keyof ClientEvents]: { readonly event: E; readonly payload: ClientEvents[E] };
}[keyof ClientEvents];

/** Every event of a client, in order, and a way to wait for one (searching from a mark). */
function record(client: GigwireClient) {
  const seen: Seen[] = [];
  for (const event of EVENTS) {
    client.on(event, (payload) => seen.push({ event, payload } as Seen));
  }
  const next = async <E extends keyof ClientEvents>(
    event: E,
    match: (payload: ClientEvents[E]) => boolean = () => true,
    { from = 0, timeoutMs = 10_000 }: { from?: number; timeoutMs?: number } = {},
  ): Promise<ClientEvents[E]> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = seen
        .slice(from)
        .find((entry) => entry.event === event && match(entry.payload as ClientEvents[E]));
      if (found !== undefined) return found.payload as ClientEvents[E];
      if (Date.now() > deadline) {
        throw new Error(
          `no "${event}" event within ${timeoutMs} ms; saw ${JSON.stringify(seen.slice(from).map((e) => e.event))}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  };
  return {
    seen,
    next,
    mark: () => seen.length,
    /** Payloads of every event of one kind so far. */
    of: <E extends keyof ClientEvents>(event: E) =>
      seen.filter((e) => e.event === event).map((e) => e.payload as ClientEvents[E]),
  };
}

describe('TypeScript SDK', () => {
  let db: TestDatabase;
  let node: RunningNode;
  let api: ReturnType<typeof httpClient>;
  let signingKey: CryptoKey;
  const logs = captureLogs();
  const clients: GigwireClient[] = [];

  const connect = (options: Omit<ClientOptions, 'WebSocket'>) => {
    const client = createClient({ WebSocket, ...options });
    clients.push(client);
    return client;
  };
  const endpoints = () => ({
    uws: node.uwsUrl ?? '',
    'fastify-ws': `${node.baseUrl.replace(/^http/, 'ws')}/ws`,
  });
  /** Presence is for mutual contacts: both add each other. */
  const addContact = async (owner: Registered, contact: Registered) => {
    const added = await api.post(`/v1/me/contacts/${contact.id}`, undefined, owner.accessToken);
    expect(added.status).toBe(204);
    const back = await api.post(`/v1/me/contacts/${owner.id}`, undefined, contact.accessToken);
    expect(back.status).toBe(204);
  };
  /** A token for a real session of `user`, signed by the test's key, with the given lifetime. */
  const tokenWithLifetime = (user: Registered, seconds: number) =>
    mintToken(user.accessToken, signingKey, KID, seconds);

  beforeAll(async () => {
    const pair = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
    signingKey = pair.privateKey as CryptoKey;
    db = await createMigratedDatabase();
    node = await startNode(
      testConfig({
        DATABASE_URL: db.url,
        REDIS_URL: sharedRedisUrl(),
        REDIS_PREFIX: uniqueRedisPrefix(),
        JWT_PRIVATE_KEY: JSON.stringify({ ...(await exportJWK(pair.privateKey)), kid: KID }),
      }),
      logs.log,
      { pid: process.pid },
    );
    api = httpClient(node.baseUrl);
  });
  afterEach(() => {
    for (const client of clients.splice(0)) client.close();
  });
  afterAll(async () => {
    await runShutdown(node.shutdownSteps, { log: logs.log, timeoutMs: 10_000 });
    await db.drop();
  });

  it('has the uWebSockets.js endpoint to test against', () => {
    expect(node.uwsUrl).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/ws$/);
  });

  describe.each(['uws', 'fastify-ws'] as const)('on %s', (transport) => {
    it.each(['msgpack', 'json'] as const)(
      'connects with %s, gets hello and a ping reply',
      async (encoding) => {
        const user = await registerUser(api);
        const client = connect({
          url: endpoints()[transport],
          encoding,
          getAccessToken: () => user.accessToken,
        });
        const events = record(client);
        expect(client.state).toBe('connecting');

        const hello = await client.whenConnected();
        expect(hello).toMatchObject({ userId: user.id, encoding, protocolVersion: 1 });
        expect(client.state).toBe('open');
        expect(client.hello).toEqual(hello);
        expect(await events.next('hello')).toEqual(hello);
        expect(await events.next('connected')).toEqual({ hello, reconnected: false });

        const pong = await client.request('ping');
        expect(pong.serverTime).toBeGreaterThan(Date.now() - 60_000);
        // Many at once: ids keep replies apart.
        const replies = await Promise.all(Array.from({ length: 20 }, () => client.request('ping')));
        expect(replies).toHaveLength(20);

        // Checked before sending: no round trip, no strike against the connection.
        const invalid = await client
          .request('presence.subscribe', { userIds: ['not-a-uuid'] })
          .catch((e) => e);
        expect(invalid).toBeInstanceOf(GigwireError);
        expect(invalid).toMatchObject({ code: 'VALIDATION_FAILED', requestType: 'presence.subscribe' });

        client.close();
        expect(await events.next('closed')).toEqual({
          code: 1000,
          reason: 'closed by the client',
          byClient: true,
        });
        expect(client.state).toBe('closed');
        await expect(client.request('ping')).rejects.toMatchObject({ code: 'CLOSED' });
        expect(events.of('disconnected')).toHaveLength(0);
        expect(events.of('error')).toHaveLength(0);
      },
    );
  });

  it('presence: sees a contact come online and go offline with lastSeenAt; FORBIDDEN for a non-contact', async () => {
    const [a, b, stranger] = [await registerUser(api), await registerUser(api), await registerUser(api)];
    await addContact(a, b);
    const clientA = connect({ url: endpoints().uws, getAccessToken: () => a.accessToken });
    const eventsA = record(clientA);

    expect(await clientA.subscribePresence([b.id])).toEqual([
      { userId: b.id, status: 'offline', lastSeenAt: null },
    ]);
    expect([...clientA.presenceSubscriptions]).toEqual([b.id]);
    // The reply's state is an event too, so an app can keep its view from events alone.
    await eventsA.next('presence', (s) => s.userId === b.id && s.status === 'offline');

    const mark = eventsA.mark();
    const clientB = connect({
      url: endpoints()['fastify-ws'],
      encoding: 'json',
      getAccessToken: () => b.accessToken,
    });
    await clientB.whenConnected();
    expect(await eventsA.next('presence', (s) => s.userId === b.id, { from: mark })).toEqual({
      userId: b.id,
      status: 'online',
      lastSeenAt: null,
    });

    const closedAt = Date.now();
    clientB.close();
    const offline = await eventsA.next('presence', (s) => s.userId === b.id && s.status === 'offline', {
      from: mark,
    });
    expect(offline.lastSeenAt).not.toBeNull();
    expect(Date.parse(offline.lastSeenAt ?? '')).toBeGreaterThanOrEqual(closedAt - 1_000);

    const refused = await clientA.subscribePresence([stranger.id]).catch((e) => e);
    expect(refused).toBeInstanceOf(GigwireError);
    expect(refused).toMatchObject({
      code: 'FORBIDDEN',
      requestType: 'presence.subscribe',
      details: { userIds: [stranger.id] },
    });
    // The same through the raw request API; a refused id is not restored after reconnects.
    await expect(clientA.request('presence.subscribe', { userIds: [stranger.id] })).rejects.toMatchObject({
      code: 'FORBIDDEN',
    });
    expect([...clientA.presenceSubscriptions]).toEqual([b.id]);
    expect(clientA.state).toBe('open');

    await clientA.unsubscribePresence([b.id]);
    expect(clientA.presenceSubscriptions.size).toBe(0);
  });

  it('asks for a fresh token after a 401 at the upgrade, and connects with it', async () => {
    const user = await registerUser(api);
    const reasons: TokenReason[] = [];
    const client = connect({
      url: endpoints().uws,
      getAccessToken: ({ reason }) => {
        reasons.push(reason);
        return reason === 'connect' ? 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.bm9wZQ' : user.accessToken;
      },
    });
    const events = record(client);
    const hello = await client.whenConnected();
    expect(hello.userId).toBe(user.id);
    expect(reasons.slice(0, 2)).toEqual(['connect', 'expired']);
    const failure = await events.next('error');
    expect(failure).toMatchObject({ code: 'CONNECT_FAILED' });
    expect(failure.message).toContain('401');
    // A failed attempt is not a disconnection: nothing had opened.
    expect(events.of('disconnected')).toHaveLength(0);
  });

  it('reauthenticates after a 4001 close (logout-all) and restores its presence subscription', async () => {
    const [user, contact] = [await registerUser(api), await registerUser(api)];
    await addContact(user, contact);
    let current = user.accessToken;
    const reasons: TokenReason[] = [];
    const client = connect({
      url: endpoints()['fastify-ws'],
      encoding: 'json',
      getAccessToken: async ({ reason }) => {
        reasons.push(reason);
        if (reason === 'expired') {
          const login = await api.post<{ accessToken: string }>('/v1/auth/login', {
            login: user.email,
            password: user.password,
          });
          current = login.body.accessToken;
        }
        return current;
      },
    });
    const events = record(client);
    const first = await client.whenConnected();
    await client.subscribePresence([contact.id]);

    const mark = events.mark();
    expect((await api.post('/v1/auth/logout-all', undefined, current)).status).toBe(204);
    expect(await events.next('disconnected', () => true, { from: mark })).toMatchObject({
      code: 4001,
      action: 'reauthenticate',
      retryInMs: expect.any(Number),
    });
    const again = await events.next('connected', (c) => c.reconnected, { from: mark });
    expect(again.hello.connectionId).not.toBe(first.connectionId);
    expect(reasons).toEqual(['connect', 'expired']);
    // Resumed: the snapshot of the contact arrives again on the new connection.
    await events.next('presence', (s) => s.userId === contact.id, { from: mark });
    expect(await client.request('ping')).toMatchObject({ serverTime: expect.any(Number) });
  });

  it('refreshToken() sends auth.refresh with a fresh token from getAccessToken', async () => {
    const user = await registerUser(api);
    let tokens = { accessToken: user.accessToken, refreshToken: user.refreshToken };
    const reasons: TokenReason[] = [];
    const client = connect({
      url: endpoints().uws,
      getAccessToken: async ({ reason }) => {
        reasons.push(reason);
        if (reason === 'refresh') {
          const refreshed = await api.post<typeof tokens>('/v1/auth/refresh', {
            refreshToken: tokens.refreshToken,
          });
          expect(refreshed.status).toBe(200);
          tokens = refreshed.body;
        }
        return tokens.accessToken;
      },
    });
    await client.whenConnected();
    const result = await client.refreshToken();
    expect(result.expiresAt).toBeGreaterThan(Date.now() + 10 * 60_000);
    expect(reasons).toEqual(['connect', 'refresh']);
  });

  it('refreshes a short-lived token ahead of its exp, so the server never closes 4001', async () => {
    const user = await registerUser(api);
    const reasons: TokenReason[] = [];
    const client = connect({
      url: endpoints().uws,
      getAccessToken: async ({ reason }) => {
        reasons.push(reason);
        return tokenWithLifetime(user, 3);
      },
    });
    const events = record(client);
    await client.whenConnected();
    // Three token lifetimes: without refreshes the server would close the socket 4001 after one.
    await new Promise((resolve) => setTimeout(resolve, 7_000));
    expect(events.of('disconnected')).toEqual([]);
    expect(events.of('error')).toEqual([]);
    expect(reasons.filter((r) => r === 'refresh').length).toBeGreaterThanOrEqual(2);
    expect(client.state).toBe('open');
    expect(await client.request('ping')).toMatchObject({ serverTime: expect.any(Number) });
  }, 20_000);
});

describe('TypeScript SDK across a server crash', () => {
  let db: TestDatabase;
  let server: GigwireProcess | undefined;
  const env: Record<string, string> = {};
  const clients: GigwireClient[] = [];

  beforeAll(async () => {
    db = await createMigratedDatabase();
    Object.assign(env, {
      DATABASE_URL: db.url,
      REDIS_URL: sharedRedisUrl(),
      REDIS_PREFIX: uniqueRedisPrefix(),
      PORT: String(await freePort()),
      WS_PORT: String(await freePort()),
      // The restarted process is the same node: it clears what its previous life left in Redis.
      NODE_ID: `sdk-crash-${process.pid}`,
    });
  });
  afterAll(async () => {
    for (const client of clients) client.close();
    await server?.stop('SIGKILL').catch(() => undefined);
    await db.drop();
  });

  it('reconnects by itself after SIGKILL and restart, with a new hello and its presence subscription active', async () => {
    server = spawnGigwire(env);
    const api = httpClient(await server.waitUntilUp(60_000));
    const wsUrl = `ws://127.0.0.1:${env.WS_PORT}/ws`;
    const [a, b] = [await registerUser(api), await registerUser(api)];
    expect((await api.post(`/v1/me/contacts/${b.id}`, undefined, a.accessToken)).status).toBe(204);
    expect((await api.post(`/v1/me/contacts/${a.id}`, undefined, b.accessToken)).status).toBe(204);

    const clientA = createClient({ url: wsUrl, WebSocket, getAccessToken: () => a.accessToken });
    clients.push(clientA);
    const events = record(clientA);
    const first = await clientA.whenConnected();
    await clientA.subscribePresence([b.id]);

    await server.stop('SIGKILL');
    expect(await events.next('disconnected')).toMatchObject({ code: 1006, action: 'reconnect' });
    expect(clientA.state).not.toBe('open');
    // Made while the server is down: waits for the next connection.
    const queuedPing = clientA.request('ping', undefined, { timeoutMs: 90_000 });
    const mark = events.mark();

    server = spawnGigwire(env);
    await server.waitUntilUp(60_000);
    const again = await events.next('connected', (c) => c.reconnected, { from: mark, timeoutMs: 30_000 });
    expect(again.hello.connectionId).not.toBe(first.connectionId);
    expect(again.hello.userId).toBe(a.id);
    expect(await events.next('hello', (h) => h.connectionId === again.hello.connectionId)).toEqual(
      again.hello,
    );
    expect(await queuedPing).toMatchObject({ serverTime: expect.any(Number) });
    // Attempts while the server was down were reported, not fatal.
    expect(events.of('error').every((e) => e.code === 'CONNECT_FAILED')).toBe(true);
    expect(events.of('closed')).toHaveLength(0);

    // The subscription was re-sent: its fresh state arrives, then B's transitions.
    await events.next('presence', (s) => s.userId === b.id && s.status === 'offline', { from: mark });
    const afterResume = events.mark();
    const clientB = createClient({
      url: wsUrl,
      WebSocket,
      encoding: 'json',
      getAccessToken: () => b.accessToken,
    });
    clients.push(clientB);
    await clientB.whenConnected();
    await events.next('presence', (s) => s.userId === b.id && s.status === 'online', { from: afterResume });
    clientB.close();
    const offline = await events.next('presence', (s) => s.userId === b.id && s.status === 'offline', {
      from: afterResume,
    });
    expect(offline.lastSeenAt).not.toBeNull();
  }, 120_000);
});
