/**
 * Connect tokens (issue 15) on a whole node over real loopback sockets, on both WebSocket
 * transports (uWebSockets.js on WS_PORT, @fastify/websocket at /ws on PORT), with the node's
 * signing key in the database (the MAC key is derived from it there):
 * - login and refresh return a connect token next to the access token;
 * - a socket offering only `connect.<token>` and an encoding subprotocol opens as the token's user
 *   (msgpack and JSON), and the 101 response selects the encoding alone, never the connect entry;
 * - the connect entry wins over a bearer entry: a valid one opens despite a bad bearer, a tampered
 *   one is refused (401, no socket) despite a valid bearer;
 * - tampered, truncated or foreign connect tokens get 401 at the upgrade;
 * - after logout the same connect token is refused (401) and a socket it opened is closed 4001;
 * - a connect token is no access token: REST answers 401 problem+json, `auth.refresh` an error frame;
 * - the SDK given the login response object connects with the connect token alone (the pair's
 *   access token is made unusable: its signature is broken) and its requests work;
 * - with keys in the database, another process derives the same MAC key, and after it rotates the
 *   signing key the node accepts connect tokens of both keys and issues them with the new one;
 * - on uWS, an upgrade whose session row is cached is decided in the upgrade handler without
 *   waiting (counted by gigwire_ws_upgrade_decisions_total), each as its own user; after a
 *   logout that session's next upgrade waits and is refused;
 * - no connect token appears in the node's logs.
 */
import type { IncomingMessage } from 'node:http';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createClient, type GigwireClient } from '../../protocol/src/client/index.js';
import { createCodec } from '../../protocol/src/codec.js';
import type { TokenPair } from '../../protocol/src/rest/auth.js';
import { type Encoding, Subprotocol } from '../../protocol/src/version.js';
import { createDb } from '../../src/db/create-db.js';
import { type AccessClaims, createTokenService } from '../../src/domain/auth/tokens.js';
import { systemClock } from '../../src/platform/clock.js';
import { startTestNode, type TestNode } from '../support/context.js';
import { httpClient, type Registered, registerUser } from '../support/http.js';
import { upgradeStatus } from '../support/ws-client.js';

type Api = ReturnType<typeof httpClient>;
type Frame = Record<string, unknown> & { t: string };

interface RawSocket {
  readonly ws: WebSocket;
  /** The 101 response's Sec-WebSocket-Protocol header (undefined when absent). */
  readonly selected: string | string[] | undefined;
  readonly frames: Frame[];
  readonly next: (match: (frame: Frame) => boolean) => Promise<Frame>;
  readonly request: (t: string, d?: Record<string, unknown>) => Promise<Frame>;
  readonly closed: Promise<{ code: number }>;
}

let nextId = 1;

/** A `ws` socket offering exactly these subprotocols, recording frames and the 101's headers. */
async function openWith(url: string, protocols: string[], encoding: Encoding): Promise<RawSocket> {
  const codec = createCodec();
  const ws = new WebSocket(url, protocols);
  const frames: Frame[] = [];
  let selected: string | string[] | undefined;
  ws.on('upgrade', (response: IncomingMessage) => {
    selected = response.headers['sec-websocket-protocol'];
  });
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    const decoded = codec.decodeServer(isBinary ? new Uint8Array(data) : data.toString('utf8'), encoding);
    frames.push(decoded.ok ? (decoded.frame as unknown as Frame) : { t: '__undecodable__' });
  });
  const closed = new Promise<{ code: number }>((resolve) => ws.on('close', (code) => resolve({ code })));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    ws.once('error', reject);
  });
  const next = async (match: (frame: Frame) => boolean) => {
    const deadline = Date.now() + 5_000;
    for (;;) {
      const found = frames.find(match);
      if (found !== undefined) return found;
      if (Date.now() > deadline)
        throw new Error(`no matching frame; got ${JSON.stringify(frames.map((f) => f.t))}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  };
  return {
    ws,
    get selected() {
      return selected;
    },
    frames,
    next,
    request: async (t, d) => {
      const id = nextId++;
      const frame = d === undefined ? { t, id } : { t, id, d };
      ws.send(encoding === 'json' ? JSON.stringify(frame) : codec.encode(frame as never, 'msgpack'));
      return next((f) => (f.t === 'ok' || f.t === 'error') && f.id === id);
    },
    closed,
  };
}

const subprotocolOf = (encoding: Encoding) => (encoding === 'json' ? Subprotocol.JSON : Subprotocol.MSGPACK);

/** The token with one character of its MAC changed (a different MAC, still base64url). */
const tamperedMac = (token: string) => {
  const [payload, mac = ''] = token.split('.');
  const bytes = Buffer.from(mac, 'base64url');
  bytes[0] = (bytes[0] ?? 0) ^ 0x01;
  return `${payload}.${bytes.toString('base64url')}`;
};

/** The token with its `sub` claim replaced (re-encoded, MAC kept). */
const payloadOf = (token: string) =>
  JSON.parse(Buffer.from(token.split('.')[0] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;

const tamperedClaim = (token: string, sub: string) => {
  const [payload = '', mac] = token.split('.');
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>;
  return `${Buffer.from(JSON.stringify({ ...claims, sub })).toString('base64url')}.${mac}`;
};

/** An access JWT whose signature no longer verifies (its payload, and so its exp, still readable). */
const brokenJwt = (jwt: string) => {
  const [head, body, signature = ''] = jwt.split('.');
  const bytes = Buffer.from(signature, 'base64url');
  bytes[0] = (bytes[0] ?? 0) ^ 0x01;
  return `${head}.${body}.${bytes.toString('base64url')}`;
};

describe('connect tokens on a whole node', () => {
  let test: TestNode;
  let api: Api;
  const sockets: RawSocket[] = [];
  const clients: GigwireClient[] = [];
  /** Every connect token the node issued to this file (none may be logged). */
  const issuedConnectTokens: string[] = [];

  beforeAll(async () => {
    test = await startTestNode({ RATE_LIMIT_PER_MINUTE: '100000' });
    api = httpClient(test.node.baseUrl);
  });
  afterEach(() => {
    for (const socket of sockets.splice(0)) socket.ws.close();
    for (const client of clients.splice(0)) client.close();
  });
  afterAll(async () => {
    await test?.stop();
  });

  const endpoints = () => ({
    uws: test.node.uwsUrl ?? '',
    'fastify-ws': `${test.node.baseUrl.replace(/^http/, 'ws')}/ws`,
  });
  const open = async (url: string, protocols: string[], encoding: Encoding) => {
    const socket = await openWith(url, protocols, encoding);
    sockets.push(socket);
    return socket;
  };
  /** A new session of `user`: the whole login response. */
  const login = async (user: Registered): Promise<TokenPair & { user: { id: string } }> => {
    const response = await api.post<TokenPair & { user: { id: string } }>('/v1/auth/login', {
      login: user.username,
      password: user.password,
    });
    expect(response.status).toBe(200);
    issuedConnectTokens.push(response.body.connectToken);
    return response.body;
  };

  it('has the uWebSockets.js endpoint to test against', () => {
    expect(test.node.uwsUrl).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/ws$/);
  });

  it('login and refresh return a connect token next to the access token', async () => {
    const user = await registerUser(api);
    const pair = await login(user);
    expect(pair).toMatchObject({
      accessToken: expect.any(String),
      connectToken: expect.stringMatching(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/),
      refreshToken: expect.any(String),
      tokenType: 'Bearer',
    });
    const claims = payloadOf(pair.connectToken);
    const access = JSON.parse(
      Buffer.from(pair.accessToken.split('.')[1] ?? '', 'base64url').toString('utf8'),
    ) as Record<string, unknown>;
    expect(claims).toMatchObject({ v: 1, sub: user.id, sid: access.sid, sv: access.sv, exp: access.exp });

    const refreshed = await api.post<TokenPair>('/v1/auth/refresh', { refreshToken: pair.refreshToken });
    expect(refreshed.status).toBe(200);
    expect(refreshed.body.connectToken).toEqual(expect.any(String));
    issuedConnectTokens.push(refreshed.body.connectToken);
    const socket = await open(
      endpoints().uws,
      [Subprotocol.JSON, `connect.${refreshed.body.connectToken}`],
      'json',
    );
    expect((await socket.next((f) => f.t === 'hello')).d).toMatchObject({ userId: user.id });
  });

  describe.each(['uws', 'fastify-ws'] as const)('on %s', (transport) => {
    it.each(['json', 'msgpack'] as const)(
      'opens a %s socket with the connect token alone; the 101 selects only the encoding',
      async (encoding) => {
        const user = await registerUser(api);
        const pair = await login(user);
        const socket = await open(
          endpoints()[transport],
          [subprotocolOf(encoding), `connect.${pair.connectToken}`],
          encoding,
        );
        expect(socket.selected).toBe(subprotocolOf(encoding));
        expect(socket.ws.protocol).toBe(subprotocolOf(encoding));
        const hello = await socket.next((f) => f.t === 'hello');
        expect(hello.d).toMatchObject({ userId: user.id, encoding, protocolVersion: 1 });
        expect((await socket.request('ping')).t).toBe('ok');
      },
    );

    it('prefers the connect entry over a bearer entry, both ways', async () => {
      const user = await registerUser(api);
      const pair = await login(user);
      const url = endpoints()[transport];
      // Offered first or last, a valid connect token opens despite a bearer entry that would not.
      const socket = await open(
        url,
        [`bearer.${brokenJwt(pair.accessToken)}`, Subprotocol.JSON, `connect.${pair.connectToken}`],
        'json',
      );
      expect(socket.selected).toBe(Subprotocol.JSON);
      expect((await socket.next((f) => f.t === 'hello')).d).toMatchObject({ userId: user.id });
      // A bad connect token is not rescued by a valid bearer entry or Authorization header.
      expect(
        await upgradeStatus(url, [
          Subprotocol.JSON,
          `connect.${tamperedMac(pair.connectToken)}`,
          `bearer.${pair.accessToken}`,
        ]),
      ).toBe(401);
      expect(
        await upgradeStatus(url, [Subprotocol.JSON, `connect.${tamperedMac(pair.connectToken)}`], {
          authorization: `Bearer ${pair.accessToken}`,
        }),
      ).toBe(401);
      // The control: the same bearer entry alone opens.
      expect(await upgradeStatus(url, [Subprotocol.JSON, `bearer.${pair.accessToken}`])).toBe(101);
    });

    it('refuses tampered, truncated and foreign connect tokens with 401 at the upgrade', async () => {
      const [user, other] = [await registerUser(api), await registerUser(api)];
      const [pair, otherPair] = [await login(user), await login(other)];
      const url = endpoints()[transport];
      const refused = [
        tamperedMac(pair.connectToken),
        tamperedClaim(pair.connectToken, other.id),
        pair.connectToken.slice(0, -1),
        `${pair.connectToken.split('.')[0]}.${otherPair.connectToken.split('.')[1]}`,
        pair.accessToken,
        'x',
      ];
      for (const token of refused) {
        expect(await upgradeStatus(url, [Subprotocol.JSON, `connect.${token}`]), token).toBe(401);
      }
      // An empty connect entry is refused too, not taken as no credential and passed on to a bearer.
      expect(await upgradeStatus(url, [Subprotocol.JSON, 'connect.', `bearer.${pair.accessToken}`])).toBe(
        401,
      );
      // Both genuine tokens still open.
      expect(await upgradeStatus(url, [Subprotocol.JSON, `connect.${pair.connectToken}`])).toBe(101);
      expect(await upgradeStatus(url, [Subprotocol.JSON, `connect.${otherPair.connectToken}`])).toBe(101);
    });
  });

  it('after logout refuses the connect token (401) and closes the sockets it opened with 4001', async () => {
    const user = await registerUser(api);
    const pair = await login(user);
    const onUws = await open(
      endpoints().uws,
      [Subprotocol.MSGPACK, `connect.${pair.connectToken}`],
      'msgpack',
    );
    const onFastify = await open(
      endpoints()['fastify-ws'],
      [Subprotocol.JSON, `connect.${pair.connectToken}`],
      'json',
    );
    await Promise.all([onUws.next((f) => f.t === 'hello'), onFastify.next((f) => f.t === 'hello')]);
    // Another session of the same user is not touched by this logout.
    const otherSession = await login(user);

    expect((await api.post('/v1/auth/logout', { refreshToken: pair.refreshToken })).status).toBe(204);
    const [closedUws, closedFastify] = await Promise.all([onUws.closed, onFastify.closed]);
    expect([closedUws.code, closedFastify.code]).toEqual([4001, 4001]);
    for (const url of Object.values(endpoints())) {
      expect(await upgradeStatus(url, [Subprotocol.JSON, `connect.${pair.connectToken}`])).toBe(401);
      expect(await upgradeStatus(url, [Subprotocol.JSON, `connect.${otherSession.connectToken}`])).toBe(101);
    }
  });

  it('on uWS, upgrades whose session row is in memory are decided without waiting, each as its own user', async () => {
    const metric = async (path: string) =>
      (await (await fetch(`${test.node.baseUrl}/metrics`)).text())
        .split('\n')
        .filter((line) => line.startsWith(`gigwire_ws_upgrade_decisions_total{path="${path}"`))
        .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
    const users = await Promise.all(Array.from({ length: 6 }, () => registerUser(api)));
    const pairs = await Promise.all(users.map((user) => login(user)));
    const openAll = () =>
      Promise.all(
        pairs.map(async (pair) => {
          const socket = await open(
            endpoints().uws,
            [Subprotocol.JSON, `connect.${pair.connectToken}`],
            'json',
          );
          return (await socket.next((f) => f.t === 'hello')).d as { userId: string };
        }),
      );
    // First round: whatever path each took (the row may not be cached yet), the right users.
    expect((await openAll()).map((hello) => hello.userId)).toEqual(users.map((user) => user.id));
    const [memoryBefore, waitedBefore] = [await metric('memory'), await metric('waited')];
    // Second round, all at once: every row is cached now, so each is decided in the upgrade handler.
    expect((await openAll()).map((hello) => hello.userId)).toEqual(users.map((user) => user.id));
    expect(await metric('memory')).toBe(memoryBefore + users.length);
    expect(await metric('waited')).toBe(waitedBefore);

    // A logout: the session's cached row is dropped, so its next upgrade waits for the database
    // and is refused; the other users still open from memory.
    const [first, ...others] = pairs;
    if (first === undefined) throw new Error('no pair');
    expect((await api.post('/v1/auth/logout', { refreshToken: first.refreshToken })).status).toBe(204);
    expect(await upgradeStatus(endpoints().uws, [Subprotocol.JSON, `connect.${first.connectToken}`])).toBe(
      401,
    );
    const memoryBeforeOthers = await metric('memory');
    for (const pair of others) {
      expect(await upgradeStatus(endpoints().uws, [Subprotocol.JSON, `connect.${pair.connectToken}`])).toBe(
        101,
      );
    }
    expect(await metric('memory')).toBe(memoryBeforeOthers + others.length);
  });

  it('is no access token: REST answers 401 problem+json, auth.refresh an error frame', async () => {
    const user = await registerUser(api);
    const pair = await login(user);
    const me = await api.get<{ status: number }>('/v1/me', pair.connectToken);
    expect(me.status).toBe(401);
    expect(me.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(me.body).toMatchObject({ status: 401 });
    // The control: its access token works.
    expect((await api.get('/v1/me', pair.accessToken)).status).toBe(200);

    const socket = await open(endpoints().uws, [Subprotocol.JSON, `connect.${pair.connectToken}`], 'json');
    await socket.next((f) => f.t === 'hello');
    const refresh = await socket.request('auth.refresh', { accessToken: pair.connectToken });
    expect(refresh).toMatchObject({ t: 'error', d: { code: 'UNAUTHORIZED' } });
    // The socket lives on, and an access token of its session refreshes it.
    expect((await socket.request('ping')).t).toBe('ok');
    const fresh = (await api.post<TokenPair>('/v1/auth/refresh', { refreshToken: pair.refreshToken })).body;
    expect(await socket.request('auth.refresh', { accessToken: fresh.accessToken })).toMatchObject({
      t: 'ok',
      d: { expiresAt: expect.any(Number) },
    });
  });

  describe.each(['uws', 'fastify-ws'] as const)('SDK on %s', (transport) => {
    it('connects with the connect token of the login response and serves requests', async () => {
      const user = await registerUser(api);
      const pair = await login(user);
      // The pair as the SDK gets it, but with an access token the server would refuse: the socket
      // can only open if the SDK used the connect token.
      const credential = { ...pair, accessToken: brokenJwt(pair.accessToken) };
      expect(await upgradeStatus(endpoints()[transport], [`bearer.${credential.accessToken}`])).toBe(401);
      const reasons: string[] = [];
      const client = createClient({
        WebSocket,
        url: endpoints()[transport],
        getAccessToken: ({ reason }) => {
          reasons.push(reason);
          return credential;
        },
      });
      clients.push(client);
      const hello = await client.whenConnected();
      expect(hello).toMatchObject({ userId: user.id, encoding: 'msgpack' });
      const pong = await client.request('ping');
      expect(pong.serverTime).toEqual(expect.any(Number));
      expect(reasons).toEqual(['connect']);
    });
  });

  // Last: it rotates the node's signing key.
  it('keys in the database: another process agrees on the MAC key; rotation moves both tokens', async () => {
    const user = await registerUser(api);
    const before = await login(user);
    const oldKid = payloadOf(before.connectToken).kid;
    const handle = await createDb({ kind: 'postgres', url: test.db.url, poolMax: 2 }, test.logs.log);
    try {
      const other = createTokenService(
        handle.db,
        { issuer: 'gigwire', audience: 'gigwire', accessTtlS: 900, privateKey: undefined },
        systemClock,
      );
      const claims = await other.verifyConnectToken(before.connectToken);
      expect(claims).toMatchObject({ sub: user.id, exp: payloadOf(before.connectToken).exp });

      const newKid = await other.rotate();
      expect(newKid).not.toBe(oldKid);
      const { sub, sid, roles, sv } = claims as AccessClaims;
      const minted = (await other.issue({ sub, sid, roles, sv })).connectToken;
      expect(payloadOf(minted).kid).toBe(newKid);
      // The retired key's tokens keep working until they expire.
      expect(await other.verifyConnectToken(before.connectToken)).toEqual(claims);

      // The node learns the new kid on its first token of it (reloading at most every 5 s).
      const url = endpoints().uws;
      const deadline = Date.now() + 15_000;
      let status = await upgradeStatus(url, [Subprotocol.JSON, `connect.${minted}`]);
      while (status !== 101 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 250));
        status = await upgradeStatus(url, [Subprotocol.JSON, `connect.${minted}`]);
      }
      expect(status).toBe(101);
      expect(await upgradeStatus(url, [Subprotocol.JSON, `connect.${before.connectToken}`])).toBe(101);
      // And from then on signs both tokens with the new key.
      const after = await login(user);
      expect(payloadOf(after.connectToken).kid).toBe(newKid);
      expect(
        JSON.parse(Buffer.from(after.accessToken.split('.')[0] ?? '', 'base64url').toString()),
      ).toMatchObject({ kid: newKid });
      const socket = await open(
        endpoints()['fastify-ws'],
        [Subprotocol.JSON, `connect.${after.connectToken}`],
        'json',
      );
      expect((await socket.next((f) => f.t === 'hello')).d).toMatchObject({ userId: user.id });
    } finally {
      await handle.close();
    }
  });

  it('never logs a connect token', () => {
    expect(issuedConnectTokens.length).toBeGreaterThan(10);
    const logged = test.logs.text();
    for (const token of issuedConnectTokens) {
      expect(logged).not.toContain(token.split('.')[1]);
      expect(logged).not.toContain(token.split('.')[0]);
    }
  });
});
