/**
 * The recent messages a room's bus subscription keeps for rejoins: a run of consecutive seqs, so a
 * rejoin served from it can never skip a message; anything it cannot vouch for goes to the database.
 */
import { describe, expect, it } from 'vitest';
import { createCodec } from '../../protocol/src/codec.js';
import type { RoomMessage } from '../../protocol/src/frames.js';
import type { RoomId, UserId } from '../../protocol/src/ids.js';
import { Encoding as Encodings } from '../../protocol/src/version.js';
import type { RoomCommand } from '../actors/room/room-actor.js';
import type { MessageRow, RoomStore } from '../actors/room/room-store.js';
import type { ActorRef, Reply } from '../actors/runtime/index.js';
import type { AuthService } from '../domain/auth/service.js';
import type { PresenceService } from '../domain/presence/service.js';
import { roomTopic, toRoomMessage } from '../domain/rooms/service.js';
import { createMemoryBus } from '../platform/bus/bus.js';
import type { RoomFramePayload } from '../platform/bus/topics.js';
import { createLogger } from '../platform/logger.js';
import { Connection } from './connection.js';
import { testConnectionEnvironment, testPrincipal } from './connection-testing.js';
import { createHandlers } from './handlers.js';
import { createHub } from './hub.js';
import { createRoomJoins, RecentMessages } from './room-joins.js';
import { createRoomReads } from './room-reads.js';
import type { SocketTransport } from './transport.js';

const message = (seq: number) =>
  ({
    roomId: 'r',
    seq,
    senderId: 's',
    clientMsgId: `m${seq}`,
    body: `b${seq}`,
    sentAt: '2026-01-01T00:00:00.000Z',
  }) as unknown as RoomMessage;
const seqs = (messages: RoomMessage[] | undefined) => messages?.map((m) => m.seq);

describe('RecentMessages', () => {
  it('answers only from a run that reaches back to sinceSeq + 1', () => {
    const recent = new RecentMessages(8);
    expect(recent.after(0)).toBeUndefined();
    for (const seq of [5, 6, 7]) recent.add(message(seq));
    expect(seqs(recent.after(4))).toEqual([5, 6, 7]);
    expect(seqs(recent.after(6))).toEqual([7]);
    expect(seqs(recent.after(7))).toEqual([]);
    expect(seqs(recent.after(9))).toEqual([]);
    // Seq 4 was never seen here: the database must answer.
    expect(recent.after(3)).toBeUndefined();
  });

  it('starts again after a hole and ignores what it already holds', () => {
    const recent = new RecentMessages(8);
    for (const seq of [1, 2, 3, 2, 5, 4, 6]) recent.add(message(seq));
    // 4 came after 5 (reordered): the run restarted at 5, and the late 4 is not taken.
    expect(recent.after(3)).toBeUndefined();
    expect(seqs(recent.after(4))).toEqual([5, 6]);
  });

  it('keeps the newest `capacity` messages', () => {
    const recent = new RecentMessages(4);
    for (let seq = 1; seq <= 10; seq++) recent.add(message(seq));
    expect(recent.after(5)).toBeUndefined();
    expect(seqs(recent.after(6))).toEqual([7, 8, 9, 10]);
  });
});

// ---------------------------------------------------------------------------------------------
// Joins through createRoomJoins: a real hub and in-memory bus, recording sockets, a room actor
// whose `join` answers are released by the test, and a store holding rows in memory.

const codec = createCodec();
const roomId = 'c0000000-0000-4000-8000-000000000000' as RoomId;
const senderId = 'a0000000-0000-4000-8000-000000000001' as UserId;
const environment = testConnectionEnvironment(codec);

/** Lets the bus's microtasks and every promise chain they start run to their end. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

let nextUser = 1;
/** A connection whose socket records the seqs of the room messages written to it. */
function recordingConnection() {
  const received: number[] = [];
  /** The `room.member` pushes written to it, as `change:userId`. */
  const memberChanges: string[] = [];
  const transport: SocketTransport = {
    kind: 'fastify-ws',
    send: (data) => {
      const decoded = codec.decodeServer(data, Encodings.JSON);
      if (decoded.ok && decoded.frame.t === 'room.message') received.push(decoded.frame.d.seq);
      if (decoded.ok && decoded.frame.t === 'room.member')
        memberChanges.push(`${decoded.frame.d.change}:${decoded.frame.d.userId}`);
      return true;
    },
    bufferedAmount: () => 0,
    close: () => {},
  };
  const userId = `d0000000-0000-4000-8000-${String(nextUser++).padStart(12, '0')}` as UserId;
  const principal = testPrincipal(userId);
  return {
    connection: new Connection(userId, principal, Encodings.JSON, transport, environment),
    received,
    memberChanges,
  };
}

const row = (seq: number): MessageRow => ({
  room_id: roomId,
  seq,
  sender_id: senderId,
  client_msg_id: `m${seq}`,
  body: `body ${seq}`,
  meta: null,
  sent_at: new Date(0),
});

type JoinCommand = Extract<RoomCommand, { type: 'join' }>;

function joinsHarness() {
  const hub = createHub(codec);
  const bus = createMemoryBus();
  /** Rows "in PostgreSQL", and the room's members there. */
  const stored: MessageRow[] = [];
  const members = new Set<UserId>();
  let memberChecks = 0;
  /** While set, backlog reads wait for it (a join held in its catch-up). */
  const backlog = { gate: undefined as Promise<void> | undefined, reads: 0 };
  const store = {
    messagesAfter: async (_roomId: RoomId, sinceSeq: number, limit: number) => {
      backlog.reads += 1;
      if (backlog.gate !== undefined) await backlog.gate;
      return stored.filter((r) => r.seq > sinceSeq).slice(0, limit);
    },
    members: async () => [...members].map((userId) => ({ userId, lastReadSeq: 0 })),
    lastSeqs: async (roomIds: readonly RoomId[]) =>
      new Map(roomIds.map((id) => [id, stored.reduce((last, r) => Math.max(last, r.seq), 0)])),
  } as Pick<RoomStore, 'messagesAfter' | 'members' | 'lastSeqs'> as RoomStore;
  /** What the room actor answers; while `hold` is set, join asks wait in `held` for `release`. */
  const actor = { lastSeq: 0, hold: false, held: [] as JoinCommand[] };
  const ref: ActorRef<RoomCommand> = {
    kind: 'room',
    id: roomId,
    tell: () => {},
    ask: <R>(build: (reply: Reply<R>) => RoomCommand) =>
      new Promise<R>((resolve, reject) => {
        let settled = false;
        const reply: Reply<R> = {
          ok: (value) => {
            settled = true;
            resolve(value);
          },
          fail: (error) => {
            settled = true;
            reject(error);
          },
          get settled() {
            return settled;
          },
        };
        const command = build(reply);
        if (command.type !== 'join') throw new Error(`unexpected ${command.type}`);
        if (actor.hold) actor.held.push(command);
        else command.reply.ok({ lastSeq: actor.lastSeq });
      }),
  };
  const joins = createRoomJoins({
    hub,
    bus,
    store,
    reads: createRoomReads(),
    log: createLogger({ level: 'silent', pretty: false }),
    room: () => ref,
    connectionsOf: (userId) => hub.connectionsOf(userId),
    isMember: async (userId) => {
      memberChecks += 1;
      return members.has(userId);
    },
  });
  const open = () => {
    const socket = recordingConnection();
    hub.add(socket.connection);
    members.add(socket.connection.userId);
    return socket;
  };
  /** Answers every held join ask with the actor's current (maybe stale) lastSeq. */
  const release = () => {
    for (const command of actor.held.splice(0)) command.reply.ok({ lastSeq: actor.lastSeq });
  };
  const publish = (frame: RoomFramePayload['frame']) => bus.publish(roomTopic(roomId), { frame });
  const publishMessage = (seq: number) => publish({ t: 'room.message', d: toRoomMessage(row(seq)) });
  return {
    hub,
    joins,
    ref,
    backlog,
    stored,
    members,
    actor,
    open,
    release,
    publish,
    publishMessage,
    memberChecks: () => memberChecks,
  };
}

describe('a join racing a leave or a removal', () => {
  it('a leave while the join waits for the room actor wins: not joined, no later message', async () => {
    const h = joinsHarness();
    // Another connection keeps the node's subscription to the room, so later messages do arrive here.
    const other = h.open();
    await h.joins.join(other.connection, roomId, undefined);
    const racing = h.open();

    h.actor.hold = true;
    const joining = h.joins.join(racing.connection, roomId, undefined);
    await settle();
    await h.joins.leave(roomId, racing.connection);
    h.release();
    await expect(joining).resolves.toEqual({ lastSeq: 0 });

    expect(h.hub.roomsOfConnection(racing.connection)).toEqual([]);
    await h.publishMessage(1);
    await settle();
    expect(racing.received).toEqual([]);
    expect(other.received).toEqual([1]);
  });

  it('a removal of the user while the join waits is FORBIDDEN once the store confirms it', async () => {
    const h = joinsHarness();
    const other = h.open();
    await h.joins.join(other.connection, roomId, undefined);
    const removed = h.open();

    h.actor.hold = true;
    const joining = h.joins.join(removed.connection, roomId, undefined);
    await settle();
    // REST removed the member: stored first, then announced; the actor's reload is queued behind the ask.
    h.members.delete(removed.connection.userId);
    await h.publish({
      t: 'room.member',
      d: { roomId, userId: removed.connection.userId, change: 'removed' },
    });
    await settle();
    h.release();
    await expect(joining).rejects.toMatchObject({ code: 'FORBIDDEN' });

    expect(h.hub.roomsOfConnection(removed.connection)).toEqual([]);
    await h.publishMessage(1);
    await settle();
    expect(removed.received).toEqual([]);
    expect(other.received).toEqual([1]);
  });

  it('a removal of the user while the join reads its backlog is FORBIDDEN, not ok for a room it is out of', async () => {
    const h = joinsHarness();
    const other = h.open();
    await h.joins.join(other.connection, roomId, undefined);
    for (const seq of [1, 2, 3]) h.stored.push(row(seq));
    h.actor.lastSeq = 3;
    const removed = h.open();

    let openGate: () => void = () => undefined;
    h.backlog.gate = new Promise<void>((resolve) => {
      openGate = resolve;
    });
    const joining = h.joins.join(removed.connection, roomId, 0);
    const outcome = joining.then(
      (value) => ({ ok: value }),
      (error: unknown) => ({ error }),
    );
    await settle();
    // Registered and catching up: the removal (stored, then announced) takes it out of the room.
    expect(h.hub.roomsOfConnection(removed.connection)).toEqual([roomId]);
    h.members.delete(removed.connection.userId);
    await h.publish({
      t: 'room.member',
      d: { roomId, userId: removed.connection.userId, change: 'removed' },
    });
    await settle();
    h.backlog.gate = undefined;
    openGate();
    expect(await outcome).toMatchObject({ error: { code: 'FORBIDDEN' } });
    expect(h.hub.roomsOfConnection(removed.connection)).toEqual([]);
    expect(removed.received).toEqual([]);
  });

  it("tells a removed member's joined connections of their removal, as the room's last push to them", async () => {
    const h = joinsHarness();
    const other = h.open();
    await h.joins.join(other.connection, roomId, undefined);
    const removed = h.open();
    await h.joins.join(removed.connection, roomId, undefined);

    h.members.delete(removed.connection.userId);
    await h.publish({
      t: 'room.member',
      d: { roomId, userId: removed.connection.userId, change: 'removed' },
    });
    await settle();
    const change = `removed:${removed.connection.userId}`;
    // Told, once: a client learns it is out of the room instead of holding one that went silent.
    expect(removed.memberChanges).toEqual([change]);
    expect(other.memberChanges).toEqual([change]);
    expect(h.hub.roomsOfConnection(removed.connection)).toEqual([]);
    await h.publishMessage(1);
    await settle();
    expect(removed.received).toEqual([]);
    expect(other.received).toEqual([1]);
  });

  it('tells a member the tail sweep finds removed (its announcement lost) of the removal, and only them', async () => {
    const h = joinsHarness();
    const other = h.open();
    await h.joins.join(other.connection, roomId, undefined);
    const removed = h.open();
    await h.joins.join(removed.connection, roomId, undefined);
    // Redis lost both the removal's announcement and the push of the message stored after it.
    h.members.delete(removed.connection.userId);
    h.stored.push(row(1));
    await h.joins.sweepTails(); // notes the room behind
    await h.joins.sweepTails(); // still behind, nothing heard: reads the tail
    await settle();
    expect(other.received).toEqual([1]);
    expect(removed.received).toEqual([]);
    expect(removed.memberChanges).toEqual([`removed:${removed.connection.userId}`]);
    expect(other.memberChanges).toEqual([]);
    expect(h.hub.roomsOfConnection(removed.connection)).toEqual([]);
  });

  it('stops reading the backlog of a connection the server is closing (a slow consumer)', async () => {
    const h = joinsHarness();
    for (let seq = 1; seq <= 1_000; seq++) h.stored.push(row(seq));
    h.actor.lastSeq = 1_000;
    const slow = h.open();
    let openGate: () => void = () => undefined;
    h.backlog.gate = new Promise<void>((resolve) => {
      openGate = resolve;
    });
    const joining = h.joins.join(slow.connection, roomId, 0);
    await settle();
    expect(h.backlog.reads).toBe(1);
    // Closed 1013 while its first page is read; its transport reports the close only later (the
    // closing handshake, up to 2 s on the HTTP port), so the hub still holds it meanwhile.
    slow.connection.close(1013, 'slow consumer');
    h.backlog.gate = undefined;
    openGate();
    await joining.catch(() => undefined);
    // No further page of the 1 000 messages was read (and encoded) for a socket being closed.
    expect(h.backlog.reads).toBe(1);
  });

  it('a leave while the join reads its backlog stands: ok, and not in the room', async () => {
    const h = joinsHarness();
    const other = h.open();
    await h.joins.join(other.connection, roomId, undefined);
    for (const seq of [1, 2, 3]) h.stored.push(row(seq));
    h.actor.lastSeq = 3;
    const leaving = h.open();

    let openGate: () => void = () => undefined;
    h.backlog.gate = new Promise<void>((resolve) => {
      openGate = resolve;
    });
    const joining = h.joins.join(leaving.connection, roomId, 0);
    await settle();
    await h.joins.leave(roomId, leaving.connection);
    h.backlog.gate = undefined;
    openGate();
    await expect(joining).resolves.toEqual({ lastSeq: 3 });
    expect(h.hub.roomsOfConnection(leaving.connection)).toEqual([]);
  });

  it("a removal announced before the node's subscription was active is FORBIDDEN once subscribed", async () => {
    const h = joinsHarness();
    const removed = h.open();
    h.actor.hold = true;
    const joining = h.joins.join(removed.connection, roomId, undefined);
    await settle();
    // Nobody on this node is subscribed yet: the announcement of the removal reaches no one here.
    h.members.delete(removed.connection.userId);
    await h.publish({
      t: 'room.member',
      d: { roomId, userId: removed.connection.userId, change: 'removed' },
    });
    h.release(); // the actor answers from the membership it had not reloaded yet
    await expect(joining).rejects.toMatchObject({ code: 'FORBIDDEN' });
    expect(h.hub.roomsOfConnection(removed.connection)).toEqual([]);
    expect(h.hub.hasRoom(roomId)).toBe(false);
  });

  it('asks the database only for joins that waited for a new subscription', async () => {
    const h = joinsHarness();
    const first = h.open();
    await h.joins.join(first.connection, roomId, undefined);
    expect(h.memberChecks()).toBe(1);
    const second = h.open();
    await h.joins.join(second.connection, roomId, undefined);
    expect(h.memberChecks()).toBe(1);
  });

  it('a removal already undone (the user is a member again) does not cancel the join', async () => {
    const h = joinsHarness();
    const other = h.open();
    await h.joins.join(other.connection, roomId, undefined);
    const readded = h.open();

    h.actor.hold = true;
    const joining = h.joins.join(readded.connection, roomId, undefined);
    await settle();
    await h.publish({
      t: 'room.member',
      d: { roomId, userId: readded.connection.userId, change: 'removed' },
    });
    await settle();
    h.release();
    await expect(joining).resolves.toEqual({ lastSeq: 0 });

    expect(h.hub.roomsOfConnection(readded.connection)).toEqual([roomId]);
    await h.publishMessage(1);
    await settle();
    expect(readded.received).toEqual([1]);
  });
});

describe('room.join and room.leave through the handlers', () => {
  it('a room.leave answered while the room.join checks membership wins', async () => {
    const h = joinsHarness();
    const other = h.open();
    await h.joins.join(other.connection, roomId, undefined);
    const racing = h.open();
    /** The membership check of the join, released by the test. */
    const checks: ((member: boolean) => void)[] = [];
    const handlers = createHandlers({
      auth: {} as AuthService,
      presence: {} as PresenceService,
      hub: h.hub,
      now: () => 0,
      room: () => h.ref,
      mayUseRoom: () => new Promise<boolean>((resolve) => checks.push(resolve)),
      contactRemovals: () => 0,
      joinRoom: h.joins.join,
      readHistory: async () => ({ messages: [] }),
      leaveRoom: h.joins.leave,
      jobBoard: { watch: () => {}, unwatch: () => {} },
    });

    // Sent back to back: room.join (id 1), then room.leave (id 2), answered while the join checks.
    const joining = handlers['room.join'](racing.connection, { t: 'room.join', id: 1, d: { roomId } });
    await expect(
      handlers['room.leave'](racing.connection, { t: 'room.leave', id: 2, d: { roomId } }),
    ).resolves.toBeUndefined();
    for (const check of checks.splice(0)) check(true);
    await expect(joining).resolves.toEqual({ lastSeq: 0 });

    expect(h.hub.roomsOfConnection(racing.connection)).toEqual([]);
    await h.publishMessage(1);
    await settle();
    expect(racing.received).toEqual([]);
    expect(other.received).toEqual([1]);
  });
});

describe('the rejoin from recent messages', () => {
  it('reads from the store what the run lacks up to the lastSeq the actor answered', async () => {
    const h = joinsHarness();
    const first = h.open();
    await h.joins.join(first.connection, roomId, undefined);
    // Seqs 1-3 reach this node over the bus; seq 4 is stored but its publish never arrived here.
    for (const seq of [1, 2, 3]) {
      h.stored.push(row(seq));
      await h.publishMessage(seq);
    }
    h.stored.push(row(4));
    h.actor.lastSeq = 4;
    await settle();
    expect(first.received).toEqual([1, 2, 3]);

    const rejoining = h.open();
    await expect(h.joins.join(rejoining.connection, roomId, 3)).resolves.toEqual({ lastSeq: 4 });
    expect(rejoining.received).toEqual([4]);
  });

  it('still serves a rejoin from memory when the run reaches the lastSeq', async () => {
    const h = joinsHarness();
    const first = h.open();
    await h.joins.join(first.connection, roomId, undefined);
    for (const seq of [1, 2, 3]) await h.publishMessage(seq);
    h.actor.lastSeq = 3;
    await settle();

    // Nothing in the store: whatever the rejoin gets came from the run.
    const rejoining = h.open();
    await h.joins.join(rejoining.connection, roomId, 1);
    expect(rejoining.received).toEqual([2, 3]);
  });
});
