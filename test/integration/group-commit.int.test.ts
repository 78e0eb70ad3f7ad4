/**
 * Node-wide group commit (issue 15) against real PostgreSQL: the new-message batches of many rooms
 * go in one statement, each room fenced by its own epoch; a failure of one room (a taken seq, a
 * takeover) is that room's alone; nobody is answered before the statement that carried their batch
 * committed. Then through a whole node: sends to many rooms at once are acknowledged with their own
 * seq, numbered 1..n per room in order, and resends are answered with their first seq.
 */
import pg from 'pg';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RoomId, UserId } from '../../protocol/src/ids.js';
import { createRoomStore, RoomFencedError } from '../../src/actors/room/room-store.js';
import { addRoomMembers, insertRoom } from '../../src/db/repositories/rooms.repo.js';
import { startTestNode, type TestNode } from '../support/context.js';
import { addContact, httpClient, type Registered, registerUser } from '../support/http.js';
import { insertUsers, openPaymentsTestDb, type PaymentsTestDb } from '../support/payments-db.js';
import { newMessage } from '../support/room-messages.js';
import { openSocket, type TestSocket, type WireFrame } from '../support/ws-client.js';

/** Sum of a metric's samples in a registry (all label sets). */
const sampleOf = async (registry: Registry, name: string) =>
  (await registry.getMetricsAsJSON())
    .flatMap((metric) =>
      metric.values.map((value) => ({
        value: value.value,
        // Histograms name each sample (`_count`, `_sum`, `_bucket`); others are the metric.
        name: (value as { metricName?: string }).metricName ?? metric.name,
      })),
    )
    .filter((value) => value.name === name)
    .reduce((sum, value) => sum + value.value, 0);

describe('node-wide group commit (real PostgreSQL)', () => {
  let t: PaymentsTestDb;
  let sender: UserId;
  const rooms: RoomId[] = [];

  beforeAll(async () => {
    t = await openPaymentsTestDb();
    [sender] = (await insertUsers(t.db, 1, 'group')) as [UserId];
    for (let i = 0; i < 30; i += 1) {
      const room = await insertRoom(t.db, {
        kind: 'group',
        title: `g${i}`,
        createdBy: sender,
        directKey: null,
      });
      await addRoomMembers(t.db, room.id, [sender]);
      rooms.push(room.id);
    }
  });
  afterAll(async () => {
    await t.close();
  });

  const message = (seq: number, id: string) => newMessage(sender, seq, id);
  const storedSeqs = async (roomId: RoomId) =>
    (
      await t.db.selectFrom('messages').select('seq').where('room_id', '=', roomId).orderBy('seq').execute()
    ).map((row) => Number(row.seq));
  const lastSeqOf = async (roomId: RoomId) =>
    Number(
      (await t.db.selectFrom('rooms').select('last_seq').where('id', '=', roomId).executeTakeFirstOrThrow())
        .last_seq,
    );

  it('stores the batches of 30 rooms in one statement, each room numbered and bumped on its own', async () => {
    const metrics = new Registry();
    const store = createRoomStore(t.db, 'node-a', { metrics });
    const epochs = await Promise.all(rooms.map((roomId) => store.acquire(roomId)));
    const written = await Promise.all(
      rooms.map((roomId, i) =>
        store.insertNew(
          roomId,
          epochs[i]?.epoch ?? 0,
          Array.from({ length: (i % 3) + 1 }, (_, k) => message(k + 1, `r${i}-${k}`)),
        ),
      ),
    );
    expect(written.map((rows) => rows.map((row) => row.seq))).toEqual(
      rooms.map((_, i) => Array.from({ length: (i % 3) + 1 }, (_, k) => k + 1)),
    );
    // Every row came back to the room that wrote it.
    expect(written.every((rows, i) => rows.every((row) => row.room_id === rooms[i]))).toBe(true);
    for (const [i, roomId] of rooms.entries()) {
      expect(await storedSeqs(roomId)).toEqual(Array.from({ length: (i % 3) + 1 }, (_, k) => k + 1));
      expect(await lastSeqOf(roomId)).toBe((i % 3) + 1);
    }
    const statements = await sampleOf(metrics, 'gigwire_room_group_commit_rooms_count');
    const roomsWritten = await sampleOf(metrics, 'gigwire_room_group_commit_rooms_sum');
    expect(roomsWritten).toBe(30);
    expect(statements).toBeLessThanOrEqual(2);
    // Each statement's time to commit is observed once.
    expect(await sampleOf(metrics, 'gigwire_room_group_commit_seconds_count')).toBe(statements);
    expect(await sampleOf(metrics, 'gigwire_room_group_commit_seconds_sum')).toBeGreaterThan(0);
  });

  it("keeps one room's failure to that room: a taken seq and a takeover fail only their own batch", async () => {
    const metrics = new Registry();
    const store = createRoomStore(t.db, 'node-a', { metrics });
    const [taken, fenced, ...others] = rooms.slice(0, 6) as [RoomId, RoomId, ...RoomId[]];
    const epochs = new Map<RoomId, number>();
    for (const roomId of rooms.slice(0, 6)) epochs.set(roomId, (await store.acquire(roomId))?.epoch ?? 0);
    // Seq 4 of `taken` is stored already (as by a contract's system message).
    await t.db
      .insertInto('messages')
      .values({ room_id: taken, seq: 4, sender_id: sender, client_msg_id: 'system-4', body: 'system' })
      .execute();
    // Another node took `fenced` over.
    await createRoomStore(t.db, 'node-b').acquire(fenced);

    const outcomes = await Promise.allSettled(
      [taken, fenced, ...others].map((roomId) =>
        store.insertNew(roomId, epochs.get(roomId) ?? 0, [
          message(4, `${roomId}-4`),
          message(5, `${roomId}-5`),
        ]),
      ),
    );
    expect(outcomes[0]).toMatchObject({ status: 'rejected', reason: { code: '23505' } });
    expect(outcomes[1]?.status).toBe('rejected');
    expect((outcomes[1] as PromiseRejectedResult).reason).toBeInstanceOf(RoomFencedError);
    for (const outcome of outcomes.slice(2)) expect(outcome.status).toBe('fulfilled');
    // Nothing of the failed batches was stored; the others were.
    expect(await storedSeqs(taken)).toEqual([1, 4]);
    expect(await storedSeqs(fenced)).toEqual([1, 2]);
    for (const roomId of others) expect((await storedSeqs(roomId)).slice(-2)).toEqual([4, 5]);
    expect(await sampleOf(metrics, 'gigwire_room_group_commit_split_total')).toBe(1);
  });

  it('answers nobody before the statement carrying their batch committed', async () => {
    const store = createRoomStore(t.db, 'node-a');
    const [held, free] = rooms.slice(10, 12) as [RoomId, RoomId];
    const heldEpoch = (await store.acquire(held))?.epoch ?? 0;
    const freeEpoch = (await store.acquire(free))?.epoch ?? 0;
    const heldNext = (await storedSeqs(held)).length + 1;
    const freeNext = (await storedSeqs(free)).length + 1;
    // Another transaction holds `held`'s row: the statement carrying both batches waits for it.
    const locker = new pg.Client({ connectionString: t.url });
    await locker.connect();
    await locker.query('begin');
    await locker.query('select id from rooms where id = $1 for update', [held]);
    let answered = 0;
    const writes = [
      store.insertNew(held, heldEpoch, [message(heldNext, 'held')]),
      store.insertNew(free, freeEpoch, [message(freeNext, 'free')]),
    ].map((write) =>
      write.then((rows) => {
        answered += 1;
        return rows;
      }),
    );
    // Wait until PostgreSQL shows the statement waiting for the lock (it must: both batches wait).
    let sawLockWait = false;
    for (let i = 0; i < 200 && !sawLockWait; i += 1) {
      const waiting = await locker.query(
        "select count(*)::int as n from pg_stat_activity where wait_event_type = 'Lock' and datname = current_database()",
      );
      sawLockWait = (waiting.rows[0] as { n: number }).n > 0;
      if (!sawLockWait) await new Promise((resolve) => setTimeout(resolve, 25));
    }
    expect(sawLockWait).toBe(true);
    expect(answered).toBe(0);
    // Not committed, so not visible to anyone else either.
    expect(await storedSeqs(free)).not.toContain(freeNext);
    await locker.query('commit');
    await locker.end();
    const [heldRows, freeRows] = await Promise.all(writes);
    expect(heldRows?.map((row) => row.seq)).toEqual([heldNext]);
    expect(freeRows?.map((row) => row.seq)).toEqual([freeNext]);
    expect(await storedSeqs(free)).toContain(freeNext);
  });
});

describe('node-wide group commit through a node', () => {
  let testNode: TestNode;
  const sockets: TestSocket[] = [];

  beforeAll(async () => {
    testNode = await startTestNode({ WS_MAX_MESSAGES_PER_SECOND: '5000', WS_MAX_BURST: '5000' });
  });
  afterAll(async () => {
    for (const socket of sockets) socket.close();
    await testNode.stop();
  });

  it('acknowledges sends to many rooms at once with their own seq, 1..n per room in order, resends with their first seq', async () => {
    const { node, db } = testNode;
    const api = httpClient(node.baseUrl);
    const ROOMS = 6;
    const SENDS = 25;
    const pairs: { roomId: string; members: [Registered, Registered] }[] = [];
    for (let r = 0; r < ROOMS; r += 1) {
      const a = await registerUser(api);
      const b = await registerUser(api);
      await addContact(api, b, a);
      const created = await api.post<{ id: string }>(
        '/v1/rooms',
        { kind: 'group', memberIds: [b.id], title: `room ${r}` },
        a.accessToken,
      );
      expect(created.status).toBe(201);
      pairs.push({ roomId: created.body.id, members: [a, b] });
    }
    const open = async (user: Registered, roomId: string) => {
      const socket = await openSocket(node.uwsUrl ?? '', user.accessToken, 'msgpack');
      sockets.push(socket);
      await socket.next((f) => f.t === 'hello');
      await socket.request('room.join', { roomId });
      return socket;
    };
    const members = await Promise.all(
      pairs.flatMap(({ roomId, members: [a, b] }) => [open(a, roomId), open(b, roomId)]),
    );

    const metric = async (name: string) =>
      (await (await fetch(`${node.baseUrl}/metrics`)).text())
        .split('\n')
        .filter((line) => line.startsWith(`${name} `) || line.startsWith(`${name}{`))
        .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
    const statementsBefore = await metric('gigwire_room_group_commit_rooms_count');
    const roomsBefore = await metric('gigwire_room_group_commit_rooms_sum');

    // Every member of every room sends at once; each send goes twice (a resend of the same id).
    const sent = members.flatMap((socket, who) => {
      const roomId = pairs[Math.floor(who / 2)]?.roomId ?? '';
      return Array.from({ length: SENDS }, (_, i) => {
        const clientMsgId = `m${who}-${i}`;
        const first = socket.request('room.send', { roomId, clientMsgId, body: `${who}:${i}` }, 30_000);
        const again = socket.request('room.send', { roomId, clientMsgId, body: `${who}:${i}` }, 30_000);
        return Promise.all([first, again]).then(([x, y]) => ({ roomId, who, i, first: x, again: y }));
      });
    });
    const acks = await Promise.all(sent);
    expect(acks.every((ack) => ack.first.t === 'ok' && ack.again.t === 'ok')).toBe(true);
    const seqOf = (frame: WireFrame) => (frame.d as { seq: number }).seq;
    expect(acks.every((ack) => seqOf(ack.first) === seqOf(ack.again))).toBe(true);

    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    for (const { roomId } of pairs) {
      const own = acks.filter((ack) => ack.roomId === roomId);
      // 1..n with no gap and no duplicate; each sender's messages in its send order.
      expect(own.map((ack) => seqOf(ack.first)).sort((x, y) => x - y)).toEqual(
        Array.from({ length: 2 * SENDS }, (_, k) => k + 1),
      );
      for (const who of new Set(own.map((ack) => ack.who))) {
        const seqs = own.filter((ack) => ack.who === who).map((ack) => seqOf(ack.first));
        expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
      }
      const rows = await client.query<{ seq: string; client_msg_id: string }>(
        'select seq, client_msg_id from messages where room_id = $1 order by seq',
        [roomId],
      );
      expect(rows.rows.map((row) => Number(row.seq))).toEqual(
        Array.from({ length: 2 * SENDS }, (_, k) => k + 1),
      );
      // What was acknowledged is what is stored.
      const acked = new Map(own.map((ack) => [`m${ack.who}-${ack.i}`, seqOf(ack.first)]));
      expect(new Map(rows.rows.map((row) => [row.client_msg_id, Number(row.seq)]))).toEqual(acked);
    }
    await client.end();

    const statements = (await metric('gigwire_room_group_commit_rooms_count')) - statementsBefore;
    const roomsWritten = (await metric('gigwire_room_group_commit_rooms_sum')) - roomsBefore;
    console.info(`node-wide group commit: ${roomsWritten} room batches in ${statements} statements`);
    expect(statements).toBeGreaterThan(0);
    // Several rooms shared a statement at least once (all rooms were sending at the same time).
    expect(roomsWritten).toBeGreaterThan(statements);
  }, 60_000);
});
