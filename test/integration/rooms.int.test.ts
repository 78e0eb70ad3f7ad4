/**
 * Rooms over real sockets: ordered, gap-free, exactly-once delivery to every member on mixed
 * transports and encodings, idempotent resends, resume with sinceSeq, authorization, and REST
 * history and unread counts agreeing with the socket view.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningNode } from '../../src/bin/start-node.js';
import { startTestNode, type TestDatabase, type TestNode } from '../support/context.js';
import { addContact, httpClient, type Registered, registerUser } from '../support/http.js';
import { openSocket, type TestSocket, type WireFrame } from '../support/ws-client.js';

type Message = { roomId: string; seq: number; senderId: string; clientMsgId: string; body: string };

describe('rooms', () => {
  let testNode: TestNode;
  let db: TestDatabase;
  let node: RunningNode;
  let api: ReturnType<typeof httpClient>;
  const sockets: TestSocket[] = [];

  beforeAll(async () => {
    testNode = await startTestNode({ WS_MAX_MESSAGES_PER_SECOND: '5000', WS_MAX_BURST: '5000' });
    ({ node, db } = testNode);
    api = httpClient(node.baseUrl);
  });
  afterAll(async () => {
    for (const socket of sockets) socket.close();
    await testNode.stop();
  });

  const fastifyUrl = () => `${node.baseUrl.replace(/^http/, 'ws')}/ws`;
  const open = async (...args: Parameters<typeof openSocket>) => {
    const socket = await openSocket(...args);
    sockets.push(socket);
    await socket.next((f) => f.t === 'hello');
    return socket;
  };
  const messagesOf = (socket: TestSocket, roomId: string) =>
    socket.frames
      .filter((f) => f.t === 'room.message' && (f.d as Message).roomId === roomId)
      .map((f) => f.d as Message);
  const groupOf = async (creator: Registered, others: Registered[]) => {
    // Nobody is put into a room by someone they have not added as a contact.
    for (const other of others) await addContact(api, other, creator);
    const created = await api.post<{ id: string }>(
      '/v1/rooms',
      { kind: 'group', memberIds: others.map((o) => o.id), title: 'team' },
      creator.accessToken,
    );
    expect(created.status).toBe(201);
    return created.body.id;
  };

  it('pushes the last messages of a room whose push was lost, once, from the database, to its members only (tail sweep)', async () => {
    const [a, b, c] = [await registerUser(api), await registerUser(api), await registerUser(api)];
    const roomId = await groupOf(a, [b, c]);
    const members = [
      await open(node.uwsUrl ?? '', a.accessToken, 'msgpack'),
      await open(fastifyUrl(), b.accessToken, 'json'),
    ];
    const removed = await open(node.uwsUrl ?? '', c.accessToken, 'json');
    for (const socket of [...members, removed]) await socket.request('room.join', { roomId });
    expect(
      await (members[0] as TestSocket).request('room.send', { roomId, clientMsgId: 'first', body: 'first' }),
    ).toMatchObject({ t: 'ok', d: { seq: 1 } });
    await removed.next((f) => f.t === 'room.message');
    // Two messages committed whose pushes never went out (Redis down at the time, the owner gone
    // between its commit and its publish), and a removal whose announcement was lost the same way:
    // the room then goes quiet, so no later seq shows a gap.
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    await client.query('delete from room_members where room_id = $1 and user_id = $2', [roomId, c.id]);
    await client.query(
      `insert into messages (room_id, seq, sender_id, client_msg_id, body)
       values ($1, 2, $2, 'lost-1', 'lost one'), ($1, 3, $2, 'lost-2', 'lost two')`,
      [roomId, a.id],
    );
    await client.query('update rooms set last_seq = 3 where id = $1', [roomId]);
    await client.end();
    for (const socket of members) {
      const deadline = Date.now() + 30_000;
      while (messagesOf(socket, roomId).length < 3 && Date.now() < deadline) await sleep(100);
    }
    // One more sweep's time: nothing arrives twice.
    await sleep(6_000);
    for (const socket of members) {
      expect(messagesOf(socket, roomId).map((m) => [m.seq, m.clientMsgId])).toEqual([
        [1, 'first'],
        [2, 'lost-1'],
        [3, 'lost-2'],
      ]);
    }
    // The store, not the lost announcement, decided: the removed member got nothing after it.
    expect(messagesOf(removed, roomId).map((m) => m.seq)).toEqual([1]);
  }, 60_000);

  it('delivers 1 000 interleaved messages from three members to all of them exactly once, in seq order', async () => {
    const [a, b, c] = [await registerUser(api), await registerUser(api), await registerUser(api)];
    const roomId = await groupOf(a, [b, c]);
    const members = [
      await open(node.uwsUrl ?? '', a.accessToken, 'msgpack'),
      await open(fastifyUrl(), b.accessToken, 'msgpack'),
      await open(node.uwsUrl ?? '', c.accessToken, 'json'),
    ];
    for (const socket of members)
      expect(await socket.request('room.join', { roomId })).toMatchObject({ t: 'ok', d: { lastSeq: 0 } });

    const acks: WireFrame[][] = [[], [], []];
    const ackedSeq = new Map<string, number>();
    const sends: Promise<void>[] = [];
    for (let i = 0; i < 1000; i++) {
      const who = i % 3;
      const socket = members[who] as TestSocket;
      sends.push(
        socket.request('room.send', { roomId, clientMsgId: `m${i}`, body: `message ${i}` }).then((reply) => {
          acks[who]?.push(reply);
          ackedSeq.set(`m${i}`, (reply.d as { seq: number }).seq);
        }),
      );
    }
    await Promise.all(sends);
    for (const socket of members) {
      for (let i = 0; i < 300 && messagesOf(socket, roomId).length < 1000; i++) await sleep(20);
      const seqs = messagesOf(socket, roomId).map((m) => m.seq);
      expect(seqs).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1));
    }
    const allAcks = acks.flat();
    expect(allAcks.every((ack) => ack.t === 'ok')).toBe(true);
    expect(new Set(allAcks.map((ack) => (ack.d as { seq: number }).seq)).size).toBe(1000);
    // Each sender's ack carries the seq every receiver sees for that clientMsgId.
    const seqByClientId = new Map(
      messagesOf(members[0] as TestSocket, roomId).map((m) => [m.clientMsgId, m.seq]),
    );
    for (const socket of members) {
      expect(new Map(messagesOf(socket, roomId).map((m) => [m.clientMsgId, m.seq]))).toEqual(seqByClientId);
    }
    expect(ackedSeq).toEqual(seqByClientId);
    const mine = messagesOf(members[0] as TestSocket, roomId).filter((m) => m.senderId === a.id);
    expect(mine.map((m) => m.seq).sort((x, y) => x - y)).toEqual(
      acks[0]?.map((ack) => (ack.d as { seq: number }).seq).sort((x, y) => x - y),
    );
    expect(seqByClientId.size).toBe(1000);
  }, 60_000);

  it('stores concurrent sends with group commit: far fewer INSERT statements than messages', async () => {
    const metric = async (name: string) => {
      const text = await (await fetch(`${node.baseUrl}/metrics`)).text();
      // Summed over label sets (the registry adds default labels such as the node id).
      return text
        .split('\n')
        .filter((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`))
        .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
    };
    const users = await Promise.all(Array.from({ length: 10 }, () => registerUser(api)));
    const [creator, ...others] = users as [Registered, ...Registered[]];
    const roomId = await groupOf(creator, others);
    const members = await Promise.all(
      users.map((user, i) =>
        open(i % 2 === 0 ? (node.uwsUrl ?? '') : fastifyUrl(), user.accessToken, 'msgpack'),
      ),
    );
    for (const socket of members) await socket.request('room.join', { roomId });
    const writesBefore = await metric('gigwire_room_write_batch_size_count');
    const storedBefore = await metric('gigwire_room_write_batch_size_sum');
    const rechecksBefore = await metric('gigwire_room_write_rechecks_total');

    // 10 members × 100 sends, all in flight at once: each write is one INSERT statement.
    const acks = await Promise.all(
      members.flatMap((socket, who) =>
        Array.from({ length: 100 }, (_, i) =>
          socket.request(
            'room.send',
            { roomId, clientMsgId: `g${who}-${i}`, body: `from ${who}: ${i}` },
            30_000,
          ),
        ),
      ),
    );
    expect(acks.every((ack) => ack.t === 'ok')).toBe(true);

    const writes = (await metric('gigwire_room_write_batch_size_count')) - writesBefore;
    const stored = (await metric('gigwire_room_write_batch_size_sum')) - storedBefore;
    expect(stored).toBe(1000);
    expect(await metric('gigwire_room_write_rechecks_total')).toBe(rechecksBefore);
    expect(writes).toBeGreaterThan(0);
    expect(writes * 5).toBeLessThanOrEqual(1000);
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    const rows = await client.query<{ count: string; max: string }>(
      'select count(*), max(seq) from messages where room_id = $1',
      [roomId],
    );
    await client.end();
    expect(rows.rows[0]).toEqual({ count: '1000', max: '1000' });
    console.info(`group commit: 1000 messages stored by ${writes} INSERT statements`);
  }, 60_000);

  it('answers a resent clientMsgId with the same seq and stores and delivers nothing new', async () => {
    const [a, b] = [await registerUser(api), await registerUser(api)];
    const roomId = await groupOf(a, [b]);
    const sender = await open(node.uwsUrl ?? '', a.accessToken, 'json');
    const receiver = await open(fastifyUrl(), b.accessToken, 'msgpack');
    await receiver.request('room.join', { roomId });
    const first = await sender.request('room.send', { roomId, clientMsgId: 'once', body: 'hello' });
    const again = await sender.request('room.send', { roomId, clientMsgId: 'once', body: 'hello' });
    expect(again.d).toEqual(first.d);
    // Also after the room actor forgot it: a new socket, the stored row answers.
    const other = await open(fastifyUrl(), a.accessToken, 'msgpack');
    expect((await other.request('room.send', { roomId, clientMsgId: 'once', body: 'hello' })).d).toEqual(
      first.d,
    );
    await sleep(300);
    expect(messagesOf(receiver, roomId).map((m) => m.clientMsgId)).toEqual(['once']);
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    const stored = await client.query('select seq from messages where room_id = $1', [roomId]);
    await client.end();
    expect(stored.rows).toEqual([{ seq: '1' }]);
  });

  it('gives a member who reconnects with sinceSeq exactly the messages it missed, then live ones', async () => {
    const [a, b] = [await registerUser(api), await registerUser(api)];
    const roomId = await groupOf(a, [b]);
    const sender = await open(node.uwsUrl ?? '', a.accessToken, 'msgpack');
    let receiver = await open(fastifyUrl(), b.accessToken, 'json');
    await receiver.request('room.join', { roomId });
    await sender.request('room.send', { roomId, clientMsgId: 'before', body: 'seen' });
    await receiver.next((f) => f.t === 'room.message');
    receiver.close();
    await receiver.closed;

    for (let i = 0; i < 100; i++)
      await sender.request('room.send', { roomId, clientMsgId: `gap${i}`, body: `missed ${i}` });
    receiver = await open(node.uwsUrl ?? '', b.accessToken, 'msgpack');
    expect(await receiver.request('room.join', { roomId, sinceSeq: 1 })).toMatchObject({
      t: 'ok',
      d: { lastSeq: 101 },
    });
    await sender.request('room.send', { roomId, clientMsgId: 'live', body: 'after' });
    for (let i = 0; i < 200 && messagesOf(receiver, roomId).length < 101; i++) await sleep(10);
    const got = messagesOf(receiver, roomId);
    expect(got.map((m) => m.seq)).toEqual(Array.from({ length: 101 }, (_, i) => i + 2));
    expect(got.at(-1)?.clientMsgId).toBe('live');
  });

  it('refuses non-members everything and reveals nothing about the room', async () => {
    const [a, b, outsider] = [await registerUser(api), await registerUser(api), await registerUser(api)];
    const roomId = await groupOf(a, [b]);
    const socket = await open(node.uwsUrl ?? '', outsider.accessToken, 'json');
    const missing = '00000000-0000-4000-8000-00000000abcd';
    for (const id of [roomId, missing]) {
      for (const [t, d] of [
        ['room.join', { roomId: id }],
        ['room.send', { roomId: id, clientMsgId: 'x', body: 'x' }],
        ['room.history', { roomId: id }],
        ['room.read', { roomId: id, seq: 1 }],
      ] as const) {
        const reply = await socket.request(t, d);
        expect(reply).toMatchObject({
          t: 'error',
          d: { code: 'FORBIDDEN', message: 'not a member of this room' },
        });
      }
      const rest = await api.get(`/v1/rooms/${id}`, outsider.accessToken);
      expect(rest.status).toBe(403);
      expect((await api.get(`/v1/rooms/${id}/messages`, outsider.accessToken)).status).toBe(403);
    }
  });

  it('agrees between REST and WebSocket history, and clears unread counts with room.read', async () => {
    const [a, b] = [await registerUser(api), await registerUser(api)];
    await addContact(api, b, a);
    const direct = await api.post<{ id: string }>(
      '/v1/rooms',
      { kind: 'direct', memberIds: [b.id] },
      a.accessToken,
    );
    expect(direct.status).toBe(201);
    const again = await api.post<{ id: string }>(
      '/v1/rooms',
      { kind: 'direct', memberIds: [a.id] },
      b.accessToken,
    );
    expect(again.status).toBe(200);
    expect(again.body.id).toBe(direct.body.id);
    const roomId = direct.body.id;

    const socket = await open(node.uwsUrl ?? '', a.accessToken, 'msgpack');
    for (let i = 0; i < 5; i++)
      await socket.request('room.send', { roomId, clientMsgId: `h${i}`, body: `body ${i}` });
    const ws = await socket.request('room.history', { roomId, limit: 3 });
    const rest = await api.get<{ data: Message[] }>(`/v1/rooms/${roomId}/messages?limit=3`, b.accessToken);
    expect((ws.d as { messages: Message[] }).messages).toEqual(rest.body.data);
    expect(rest.body.data.map((m) => m.seq)).toEqual([5, 4, 3]);
    const older = await api.get<{ data: Message[] }>(
      `/v1/rooms/${roomId}/messages?beforeSeq=3`,
      b.accessToken,
    );
    expect(older.body.data.map((m) => m.seq)).toEqual([2, 1]);

    const listed = await api.get<{ data: { id: string; unread: number; lastMessage: Message }[] }>(
      '/v1/rooms',
      b.accessToken,
    );
    const summary = listed.body.data.find((r) => r.id === roomId);
    expect(summary).toMatchObject({ unread: 5, lastMessage: { seq: 5, body: 'body 4' } });

    const reader = await open(fastifyUrl(), b.accessToken, 'json');
    await reader.request('room.join', { roomId });
    expect(await reader.request('room.read', { roomId, seq: 5 })).toMatchObject({ t: 'ok', d: { seq: 5 } });
    await socket.request('room.join', { roomId });
    const after = await api.get<{ data: { id: string; unread: number }[] }>('/v1/rooms', b.accessToken);
    expect(after.body.data.find((r) => r.id === roomId)?.unread).toBe(0);
  });

  it('lets a member leave a direct room (nobody else puts them out) and back in only with consent', async () => {
    const [a, b] = [await registerUser(api), await registerUser(api)];
    await addContact(api, b, a);
    const direct = await api.post<{ id: string }>(
      '/v1/rooms',
      { kind: 'direct', memberIds: [b.id] },
      a.accessToken,
    );
    const roomId = direct.body.id;
    const leave = (actor: Registered, who: Registered) =>
      api.call('DELETE', `/v1/rooms/${roomId}/members/${who.id}`, { token: actor.accessToken });
    expect((await leave(a, b)).status).toBe(409);
    expect((await leave(b, b)).status).toBe(204);
    expect((await api.get(`/v1/rooms/${roomId}/messages`, b.accessToken)).status).toBe(403);
    // b no longer wants a's messages: opening the room again does not bring b back.
    expect((await api.call('DELETE', `/v1/me/contacts/${a.id}`, { token: b.accessToken })).status).toBe(204);
    const refused = await api.post('/v1/rooms', { kind: 'direct', memberIds: [b.id] }, a.accessToken);
    expect(refused.status).toBe(403);
    expect((await api.get(`/v1/rooms/${roomId}/messages`, b.accessToken)).status).toBe(403);
    // With consent again, the same room (and its history) has both of them.
    await addContact(api, b, a);
    const back = await api.post<{ id: string; memberIds: string[] }>(
      '/v1/rooms',
      { kind: 'direct', memberIds: [b.id] },
      a.accessToken,
    );
    expect(back.status).toBe(200);
    expect(back.body.id).toBe(roomId);
    expect((await api.get(`/v1/rooms/${roomId}/messages`, b.accessToken)).status).toBe(200);
  });

  it('replays a group room created again with the same Idempotency-Key instead of creating a second one', async () => {
    const [a, b] = [await registerUser(api), await registerUser(api)];
    await addContact(api, b, a);
    const create = (body: Record<string, unknown>, key?: string) =>
      api.call<{ id: string; title: string | null; code?: string }>('POST', '/v1/rooms', {
        token: a.accessToken,
        body,
        ...(key === undefined ? {} : { headers: { 'idempotency-key': key } }),
      });
    const body = { kind: 'group', memberIds: [b.id], title: 'retried' };
    const first = await create(body, 'create-group-1');
    expect(first.status).toBe(201);
    // The answer was lost; the client sends the same request with the same key.
    const retry = await create(body, 'create-group-1');
    expect(retry.status).toBe(201);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(retry.body).toEqual(first.body);
    const groupsOf = async (user: Registered) =>
      (
        await api.get<{ data: { id: string; kind: string }[] }>('/v1/rooms', user.accessToken)
      ).body.data.filter((room) => room.kind === 'group');
    expect((await groupsOf(a)).map((room) => room.id)).toEqual([first.body.id]);
    expect((await groupsOf(b)).map((room) => room.id)).toEqual([first.body.id]);
    // The same key with another body is refused; without a key every request creates a room.
    const reused = await create({ ...body, title: 'another' }, 'create-group-1');
    expect(reused.status).toBe(422);
    expect(reused.body.code).toBe('IDEMPOTENCY_KEY_REUSED');
    const unkeyed = [await create(body), await create(body)];
    expect(unkeyed.map((r) => r.status)).toEqual([201, 201]);
    expect(new Set([first.body.id, ...unkeyed.map((r) => r.body.id)]).size).toBe(3);
  });

  it('opens the same direct room with or without an Idempotency-Key, and a keyed retry replays its answer', async () => {
    const [a, b] = [await registerUser(api), await registerUser(api)];
    await addContact(api, b, a);
    const openSocketOf = (user: Registered) => open(node.uwsUrl ?? '', user.accessToken, 'json');
    const openDirect = (key?: string) =>
      api.call<{ id: string }>('POST', '/v1/rooms', {
        token: a.accessToken,
        body: { kind: 'direct', memberIds: [b.id] },
        ...(key === undefined ? {} : { headers: { 'idempotency-key': key } }),
      });
    const first = await openDirect('open-direct-1');
    expect(first.status).toBe(201);
    const retry = await openDirect('open-direct-1');
    expect([retry.status, retry.headers.get('idempotent-replayed'), retry.body.id]).toEqual([
      201,
      'true',
      first.body.id,
    ]);
    const otherKey = await openDirect('open-direct-2');
    expect([otherKey.status, otherKey.headers.get('idempotent-replayed'), otherKey.body.id]).toEqual([
      200,
      null,
      first.body.id,
    ]);
    const unkeyed = await openDirect();
    expect([unkeyed.status, unkeyed.body.id]).toEqual([200, first.body.id]);
    // b left; opening it again with a key brings b back, announced to the room after the commit.
    const sa = await openSocketOf(a);
    await sa.request('room.join', { roomId: first.body.id });
    expect(
      (await api.call('DELETE', `/v1/rooms/${first.body.id}/members/${b.id}`, { token: b.accessToken }))
        .status,
    ).toBe(204);
    await sa.next((f) => f.t === 'room.member' && (f.d as { change: string }).change === 'removed');
    const back = await openDirect('open-direct-3');
    expect([back.status, back.body.id]).toEqual([200, first.body.id]);
    expect(
      (await sa.next((f) => f.t === 'room.member' && (f.d as { change: string }).change === 'added')).d,
    ).toEqual({
      roomId: first.body.id,
      userId: b.id,
      change: 'added',
    });
    expect((await api.get(`/v1/rooms/${first.body.id}/messages`, b.accessToken)).status).toBe(200);
  });

  it('refuses a title on a direct room with 400 VALIDATION_FAILED naming body.title instead of dropping it', async () => {
    const [a, b] = [await registerUser(api), await registerUser(api)];
    await addContact(api, b, a);
    const refused = await api.post<{ code: string; errors: { path: string }[] }>(
      '/v1/rooms',
      { kind: 'direct', memberIds: [b.id], title: 'hello' },
      a.accessToken,
    );
    expect(refused.status).toBe(400);
    expect(refused.headers.get('content-type')).toContain('application/problem+json');
    expect(refused.body.code).toBe('VALIDATION_FAILED');
    expect(refused.body.errors.map((e) => e.path)).toEqual(['body.title']);
    // Nothing was created: the first real open creates the room.
    const opened = await api.post('/v1/rooms', { kind: 'direct', memberIds: [b.id] }, a.accessToken);
    expect(opened.status).toBe(201);
  });

  it('refuses to add a member to a full group room (501 members, as many as a create names) with 409 ROOM_FULL', async () => {
    const [a, b, c] = [await registerUser(api), await registerUser(api), await registerUser(api)];
    const roomId = await groupOf(a, [b]);
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      // 499 more members, made in SQL (registering them through the API would take minutes).
      await client.query(
        `with filler as (
           insert into users (username, email, password_hash)
           select 'filler' || g || substr(md5(random()::text), 1, 8), 'filler' || g || substr(md5(random()::text), 1, 8) || '@example.test', 'x'
           from generate_series(1, 499) g
           returning id)
         insert into room_members (room_id, user_id) select $1, id from filler`,
        [roomId],
      );
    } finally {
      await client.end();
    }
    await addContact(api, c, a);
    const refused = await api.post<{ code: string; reason: string; limit: number }>(
      `/v1/rooms/${roomId}/members/${c.id}`,
      undefined,
      a.accessToken,
    );
    expect(refused.status).toBe(409);
    expect(refused.body).toMatchObject({ code: 'CONFLICT', reason: 'ROOM_FULL', limit: 501 });
    // Someone leaving makes room.
    expect(
      (await api.call('DELETE', `/v1/rooms/${roomId}/members/${b.id}`, { token: b.accessToken })).status,
    ).toBe(204);
    expect((await api.post(`/v1/rooms/${roomId}/members/${c.id}`, undefined, a.accessToken)).status).toBe(
      204,
    );
  });

  it('pushes typing to the others (throttled), membership changes, and stops after room.leave', async () => {
    const [a, b, c] = [await registerUser(api), await registerUser(api), await registerUser(api)];
    const roomId = await groupOf(a, [b]);
    const sa = await open(node.uwsUrl ?? '', a.accessToken, 'json');
    const sb = await open(fastifyUrl(), b.accessToken, 'msgpack');
    await sa.request('room.join', { roomId });
    await sb.request('room.join', { roomId });

    for (let i = 0; i < 5; i++) expect((await sa.request('room.typing', { roomId })).t).toBe('ok');
    await sb.next((f) => f.t === 'room.typing');
    await sleep(200);
    expect(sb.frames.filter((f) => f.t === 'room.typing')).toEqual([
      { t: 'room.typing', d: { roomId, userId: a.id } },
    ]);
    expect(sa.frames.filter((f) => f.t === 'room.typing')).toEqual([]);

    await addContact(api, c, a);
    expect((await api.post(`/v1/rooms/${roomId}/members/${c.id}`, undefined, a.accessToken)).status).toBe(
      204,
    );
    const added = await sb.next((f) => f.t === 'room.member');
    expect(added.d).toEqual({ roomId, userId: c.id, change: 'added' });
    const sc = await open(node.uwsUrl ?? '', c.accessToken, 'json');
    expect(await sc.request('room.join', { roomId })).toMatchObject({ t: 'ok' });

    expect(
      (await api.call('DELETE', `/v1/rooms/${roomId}/members/${c.id}`, { token: a.accessToken })).status,
    ).toBe(204);
    await sb.next((f) => f.t === 'room.member' && (f.d as { change: string }).change === 'removed');
    expect(await sc.request('room.send', { roomId, clientMsgId: 'late', body: 'x' })).toMatchObject({
      t: 'error',
      d: { code: 'FORBIDDEN' },
    });

    expect(await sb.request('room.leave', { roomId })).toMatchObject({ t: 'ok' });
    await sa.request('room.send', { roomId, clientMsgId: 'after-leave', body: 'not for b' });
    await sleep(300);
    expect(messagesOf(sb, roomId)).toEqual([]);
  });
});
