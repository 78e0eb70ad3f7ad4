/**
 * Resource exhaustion (issue 10, finding 8): a room.* request for a room one is not in never
 * activates a room actor; sockets per user per node, upgrades per client IP and rooms per user are
 * capped by settings; GET /v1/rooms is one SQL statement whatever the number of rooms, and pages.
 */
import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { RunningNode } from '../../src/bin/start-node.js';
import type { Database } from '../../src/db/database.js';
import { createRoomService } from '../../src/domain/rooms/service.js';
import { createMemoryBus } from '../../src/platform/bus/bus.js';
import { startTestNode, type TestNode } from '../support/context.js';
import { addContact, httpClient, type Registered, registerUser } from '../support/http.js';
import { openSocket, type TestSocket } from '../support/ws-client.js';

/** ROOMS_MAX_PER_USER of the node: a reader below makes this many rooms at most. */
const ROOM_LIMIT = 5;

const wsUrls = (node: RunningNode) => ({
  uws: node.uwsUrl ?? `${node.baseUrl.replace(/^http/, 'ws')}/ws`,
  'fastify-ws': `${node.baseUrl.replace(/^http/, 'ws')}/ws`,
});

/** Status and headers of an upgrade attempt (101 when a socket opened; it is closed at once). */
function upgrade(url: string, headers: Record<string, string> = {}) {
  const ws = new WebSocket(url, ['gigwire.v1.json', 'bearer.not-a-token'], { headers });
  return new Promise<{ status: number; retryAfter: string | undefined }>((resolve) => {
    ws.once('open', () => {
      ws.close();
      resolve({ status: 101, retryAfter: undefined });
    });
    ws.once('unexpected-response', (_req, res) => {
      resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'] as string | undefined });
      res.resume();
      ws.terminate();
    });
    ws.once('error', () => resolve({ status: 0, retryAfter: undefined }));
  });
}

async function roomActorsAlive(node: RunningNode): Promise<number> {
  const text = await (await fetch(`${node.baseUrl}/metrics`)).text();
  return text
    .split('\n')
    .filter((line) => line.startsWith('gigwire_actors_alive{') && line.includes('kind="room"'))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
}

describe('exhaustion: room actors, sockets, upgrades, rooms', () => {
  let testNode: TestNode;
  let node: RunningNode;
  let api: ReturnType<typeof httpClient>;
  const sockets: TestSocket[] = [];

  beforeAll(async () => {
    testNode = await startTestNode({ WS_MAX_SOCKETS_PER_USER: '2', ROOMS_MAX_PER_USER: String(ROOM_LIMIT) });
    node = testNode.node;
    api = httpClient(node.baseUrl);
  });
  afterAll(async () => {
    for (const socket of sockets) socket.close();
    await testNode.stop();
  });

  const open = async (url: string, user: Registered) => {
    const socket = await openSocket(url, user.accessToken, 'json');
    sockets.push(socket);
    return socket;
  };

  describe.each(['uws', 'fastify-ws'] as const)('over %s', (transport) => {
    it('answers room.* for unknown and foreign rooms FORBIDDEN without activating a room actor', async () => {
      const [owner, intruder] = [await registerUser(api), await registerUser(api)];
      const friend = await registerUser(api);
      await addContact(api, friend, owner);
      const foreign = await api.post<{ id: string }>(
        '/v1/rooms',
        { kind: 'group', memberIds: [friend.id], title: 'private' },
        owner.accessToken,
      );
      expect(foreign.status).toBe(201);
      const socket = await open(wsUrls(node)[transport], intruder);
      await socket.next((f) => f.t === 'hello');
      const before = await roomActorsAlive(node);

      const roomIds = [foreign.body.id, ...Array.from({ length: 20 }, () => crypto.randomUUID())];
      for (const roomId of roomIds) {
        const requests = [
          socket.request('room.join', { roomId, sinceSeq: 0 }),
          socket.request('room.send', { roomId, clientMsgId: 'x', body: 'hi' }),
          socket.request('room.history', { roomId }),
          socket.request('room.typing', { roomId }),
          socket.request('room.read', { roomId, seq: 1 }),
        ];
        for (const reply of await Promise.all(requests)) {
          expect(reply).toMatchObject({
            t: 'error',
            d: { code: 'FORBIDDEN', message: 'not a member of this room' },
          });
        }
      }
      // Idle actors of earlier tests may passivate meanwhile; none may be added.
      expect(await roomActorsAlive(node)).toBeLessThanOrEqual(before);
      // A member still gets through (and that does activate the actor).
      const member = await open(wsUrls(node)[transport], owner);
      expect(await member.request('room.join', { roomId: foreign.body.id })).toMatchObject({ t: 'ok' });
      member.close();
    });

    it('closes a socket beyond WS_MAX_SOCKETS_PER_USER with 1008 and a reason, before hello', async () => {
      const user = await registerUser(api);
      const first = await open(wsUrls(node)[transport], user);
      const second = await open(wsUrls(node).uws, user);
      await first.next((f) => f.t === 'hello');
      await second.next((f) => f.t === 'hello');

      // The first attempt at the cap has the user's other sockets pinged and is closed 4101 (retry);
      // once both answered, one more is closed 1008 (socket-cap.ts).
      let third = await open(wsUrls(node)[transport], user);
      let closed = await Promise.race([third.closed, third.next((f) => f.t === 'hello')]);
      for (let attempt = 0; attempt < 50 && (closed as { code?: number }).code === 4101; attempt++) {
        third = await open(wsUrls(node)[transport], user);
        closed = await Promise.race([third.closed, third.next((f) => f.t === 'hello')]);
      }
      expect(closed).toMatchObject({ code: 1008, reason: 'too many sockets for this user' });
      expect(third.frames.filter((f) => f.t === 'hello')).toEqual([]);
      // The refused socket never counted: the two others still serve, and after one closes a new one opens.
      expect((await first.request('ping')).t).toBe('ok');
      second.close();
      await second.closed;
      let replacement: TestSocket | undefined;
      // The server sees the close a moment after the client does; retry until it has.
      for (let attempt = 0; attempt < 50 && replacement === undefined; attempt++) {
        const candidate = await open(wsUrls(node)[transport], user);
        const outcome = await Promise.race([
          candidate.next((f) => f.t === 'hello').then(() => 'hello' as const),
          candidate.closed.then(() => 'closed' as const),
        ]);
        if (outcome === 'hello') replacement = candidate;
      }
      expect(replacement).toBeDefined();
      first.close();
      replacement?.close();
    });
  });

  describe('rooms per user (ROOMS_MAX_PER_USER)', () => {
    it('refuses creating or joining a room beyond the limit with 409 ROOM_LIMIT_REACHED', async () => {
      const [busy, other, third] = [
        await registerUser(api),
        await registerUser(api),
        await registerUser(api),
      ];
      for (const u of [other, third]) await addContact(api, u, busy);
      await addContact(api, busy, third);
      for (let i = 0; i < ROOM_LIMIT; i++) {
        const created = await api.post(
          '/v1/rooms',
          { kind: 'group', memberIds: [other.id], title: `g${i}` },
          busy.accessToken,
        );
        expect(created.status).toBe(201);
      }
      const fourth = await api.post('/v1/rooms', { kind: 'group', memberIds: [third.id] }, busy.accessToken);
      expect(fourth.status).toBe(409);
      expect(fourth.body).toMatchObject({ code: 'ROOM_LIMIT_REACHED', userIds: [busy.id] });
      const direct = await api.post('/v1/rooms', { kind: 'direct', memberIds: [third.id] }, busy.accessToken);
      expect(direct.status).toBe(409);

      // Being added beyond the limit: `other` is in as many rooms as allowed already.
      const room = await api.post<{ id: string }>(
        '/v1/rooms',
        { kind: 'group', memberIds: [busy.id] },
        third.accessToken,
      );
      expect(room.status).toBe(409);
      expect(room.body).toMatchObject({ code: 'ROOM_LIMIT_REACHED', userIds: [busy.id] });
      const free = await registerUser(api);
      await addContact(api, free, third);
      const withFree = await api.post<{ id: string }>(
        '/v1/rooms',
        { kind: 'group', memberIds: [free.id] },
        third.accessToken,
      );
      expect(withFree.status).toBe(201);
      await addContact(api, other, third);
      const added = await api.post(
        `/v1/rooms/${withFree.body.id}/members/${other.id}`,
        undefined,
        third.accessToken,
      );
      expect(added.status).toBe(409);
      expect(added.body).toMatchObject({ code: 'ROOM_LIMIT_REACHED', userIds: [other.id] });
      const list = await api.get<{ data: unknown[] }>('/v1/rooms', other.accessToken);
      expect(list.body.data).toHaveLength(ROOM_LIMIT);
    });

    it('lets concurrent creations pass the limit only up to it', async () => {
      const [creator, peer] = [await registerUser(api), await registerUser(api)];
      await addContact(api, peer, creator);
      const results = await Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          api.post('/v1/rooms', { kind: 'group', memberIds: [peer.id], title: `c${i}` }, creator.accessToken),
        ),
      );
      expect(results.filter((r) => r.status === 201)).toHaveLength(ROOM_LIMIT);
      expect(results.filter((r) => r.status === 409)).toHaveLength(8 - ROOM_LIMIT);
    });
  });

  describe('GET /v1/rooms', () => {
    it('reads the room list in one SQL statement whatever the number of rooms', async () => {
      const statements: string[] = [];
      const pool = new pg.Pool({ connectionString: testNode.db.url, max: 2 });
      const db = new Kysely<Database>({
        dialect: new PostgresDialect({ pool }),
        log: (event) => {
          if (event.level === 'query') statements.push(event.query.sql);
        },
      });
      try {
        const rooms = createRoomService({ db, bus: createMemoryBus(), maxRoomsPerUser: 1000 });
        const [reader, ...others] = await Promise.all(
          Array.from({ length: ROOM_LIMIT }, () => registerUser(api)),
        );
        const r = reader as Registered;
        for (const other of others) await addContact(api, other, r);
        const ids: string[] = [];
        for (const other of others) {
          const created = await api.post<{ id: string }>(
            '/v1/rooms',
            { kind: 'direct', memberIds: [other.id] },
            r.accessToken,
          );
          ids.push(created.body.id);
        }
        // A message in every room: the old list read each room's last message with a query of its own.
        for (const [i, id] of ids.entries()) {
          await sql`insert into messages (room_id, seq, sender_id, client_msg_id, body)
                    values (${id}, 1, ${r.id}, ${`m${i}`}, 'hi')`.execute(db);
          await sql`update rooms set last_seq = 1 where id = ${id}`.execute(db);
        }
        statements.length = 0;
        const all = await rooms.list(r.id as never, { limit: 500 });
        expect(statements).toHaveLength(1);
        expect(all.data.map((room) => room.id).sort()).toEqual([...ids].sort());
        expect(all.data.every((room) => room.lastMessage?.body === 'hi' && room.unread === 1)).toBe(true);
      } finally {
        await db.destroy();
      }
    });

    it('pages with a cursor, every room exactly once, with last message and unread count', async () => {
      const reader = await registerUser(api);
      const peers = [
        await registerUser(api),
        await registerUser(api),
        await registerUser(api),
        await registerUser(api),
        await registerUser(api),
      ];
      const ids: string[] = [];
      for (const peer of peers) {
        await addContact(api, peer, reader);
        const created = await api.post<{ id: string }>(
          '/v1/rooms',
          { kind: 'direct', memberIds: [peer.id] },
          reader.accessToken,
        );
        ids.push(created.body.id);
      }
      // A message in one room: it shows as lastMessage and counts as unread.
      const peerSocket = await open(wsUrls(node).uws, peers[0] as Registered);
      await peerSocket.next((f) => f.t === 'hello');
      expect(
        await peerSocket.request('room.send', { roomId: ids[0], clientMsgId: 'c1', body: 'hello' }),
      ).toMatchObject({ t: 'ok' });
      peerSocket.close();

      const seen: { id: string; unread: number; lastMessage: { body: string } | null }[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const path: string = `/v1/rooms?limit=2${cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`}`;
        const page = await api.get<{ data: typeof seen; nextCursor: string | null }>(
          path,
          reader.accessToken,
        );
        expect(page.status).toBe(200);
        expect(page.body.data.length).toBeLessThanOrEqual(2);
        seen.push(...page.body.data);
        cursor = page.body.nextCursor;
        pages += 1;
      } while (cursor !== null && pages < 10);
      expect(pages).toBe(3);
      expect(seen.map((room) => room.id).sort()).toEqual([...ids].sort());
      const withMessage = seen.find((room) => room.id === ids[0]);
      expect(withMessage).toMatchObject({ unread: 1, lastMessage: { body: 'hello' } });

      // Without a limit: every room (up to 500) in one page, as before, and nextCursor null.
      const whole = await api.get<{ data: unknown[]; nextCursor: string | null }>(
        '/v1/rooms',
        reader.accessToken,
      );
      expect(whole.body.data).toHaveLength(5);
      expect(whole.body.nextCursor).toBeNull();
    });

    it('answers a crafted cursor with 400, never 500', async () => {
      const reader = await registerUser(api);
      for (const cursor of [
        'nope',
        Buffer.from('[1,2]').toString('base64url'),
        Buffer.from('["99999999999999999999","x"]').toString('base64url'),
        Buffer.from('["1","00000000-0000-0000-0000-000000000000\'"]').toString('base64url'),
      ]) {
        const page = await api.get(`/v1/rooms?cursor=${cursor}`, reader.accessToken);
        expect(page.status).toBe(400);
        expect(page.body).toMatchObject({ code: 'VALIDATION_FAILED' });
      }
    });
  });
});

describe('exhaustion: upgrades per client IP', () => {
  let testNode: TestNode;

  beforeAll(async () => {
    testNode = await startTestNode({ WS_UPGRADES_PER_IP_PER_SECOND: '1', WS_UPGRADE_BURST_PER_IP: '3' });
  });
  afterAll(async () => {
    await testNode.stop();
  });

  it('answers 429 with Retry-After past the burst, before any auth work, on both transports', async () => {
    const urls = wsUrls(testNode.node);
    const results = await Promise.all(
      Array.from({ length: 12 }, (_, i) => upgrade(i % 2 === 0 ? urls.uws : urls['fastify-ws'])),
    );
    const limited = results.filter((r) => r.status === 429);
    // Invalid tokens: admitted attempts get 401, the rest 429 without their token being looked at.
    expect(results.every((r) => r.status === 401 || r.status === 429)).toBe(true);
    expect(limited.length).toBeGreaterThan(0);
    expect(results.filter((r) => r.status === 401).length).toBeLessThan(12);
    for (const r of limited) expect(Number(r.retryAfter)).toBeGreaterThanOrEqual(1);
  });

  it('ignores X-Forwarded-For without TRUST_PROXY: a client cannot escape its bucket by naming another IP', async () => {
    const url = wsUrls(testNode.node).uws;
    const spoofed = await Promise.all(
      Array.from({ length: 8 }, (_, i) => upgrade(url, { 'x-forwarded-for': `198.51.100.${i}` })),
    );
    expect(spoofed.some((r) => r.status === 429)).toBe(true);
  });
});

describe('exhaustion: upgrades per client IP behind a trusted proxy (TRUST_PROXY=1)', () => {
  let testNode: TestNode;

  beforeAll(async () => {
    testNode = await startTestNode({
      WS_UPGRADES_PER_IP_PER_SECOND: '1',
      WS_UPGRADE_BURST_PER_IP: '3',
      TRUST_PROXY: '1',
    });
  });
  afterAll(async () => {
    await testNode.stop();
  });

  it('tells clients behind the trusted proxy apart by X-Forwarded-For on the uWS port', async () => {
    if (testNode.node.uwsUrl === undefined) return; // no native uWS build here
    const url = testNode.node.uwsUrl;
    const fromA = await Promise.all(
      Array.from({ length: 8 }, () => upgrade(url, { 'x-forwarded-for': '203.0.113.7' })),
    );
    expect(fromA.some((r) => r.status === 429)).toBe(true);
    // Another client behind the same proxy still gets through to auth (401 for its bad token).
    expect((await upgrade(url, { 'x-forwarded-for': '203.0.113.99' })).status).toBe(401);
  });
});
