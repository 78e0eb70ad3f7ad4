/**
 * Replies and join backlogs of large messages stay far below the socket's bound. A 200-row backlog
 * page (or a 100-message history page) of messages at the largest legal body and meta encodes to
 * megabytes: written at once it passed `maxBufferedBytes` and closed even a fast reader 1013 on a
 * real network (the kernel takes far less than that per write), so one member posting a few large
 * messages sent every other member into a reconnect loop. Frames are measured through the real
 * codec; the socket here buffers what it is sent until "the network" reads it, at each poll.
 */
import { describe, expect, it } from 'vitest';
import { createCodec } from '../../protocol/src/codec.js';
import { CloseCode } from '../../protocol/src/codes.js';
import { MAX_BODY_CHARS, MAX_META_CHARS, type RoomMessage } from '../../protocol/src/frames.js';
import type { RoomId, UserId } from '../../protocol/src/ids.js';
import { Encoding } from '../../protocol/src/version.js';
import type { RoomCommand } from '../actors/room/room-actor.js';
import type { MessageRow, RoomStore } from '../actors/room/room-store.js';
import type { ActorRef, Reply } from '../actors/runtime/index.js';
import { roomTopic, toRoomMessage } from '../domain/rooms/service.js';
import { createMemoryBus } from '../platform/bus/bus.js';
import { createLogger } from '../platform/logger.js';
import type { Timers } from '../platform/timers.js';
import { Connection } from './connection.js';
import { testConnectionEnvironment, testPrincipal } from './connection-testing.js';
import { createHub } from './hub.js';
import { createRoomJoins, DRAIN_STALL_POLLS } from './room-joins.js';
import { createRoomReads } from './room-reads.js';
import { encodedBytes, fitMessages, SEND_BURST_BYTES, SEND_LOW_WATER_BYTES } from './send-budget.js';
import type { SocketTransport } from './transport.js';

const codec = createCodec();
const roomId = 'c0000000-0000-4000-8000-0000000000b1' as RoomId;
const senderId = 'a0000000-0000-4000-8000-000000000001' as UserId;
const MAX_BUFFERED = 1_000_000;
const environment = testConnectionEnvironment(codec);

/** The largest legal message as JSON sees it: every body char escaped (\u0001), meta at its limit. */
const bigRow = (seq: number): MessageRow => {
  const metaText = '中'.repeat(MAX_META_CHARS - '{"x":""}'.length);
  expect(JSON.stringify({ x: metaText }).length).toBe(MAX_META_CHARS);
  return {
    room_id: roomId,
    seq,
    sender_id: senderId,
    client_msg_id: `big-${seq}`,
    body: '\u0001'.repeat(MAX_BODY_CHARS),
    meta: { x: metaText },
    sent_at: new Date(0),
  };
};

/** A socket whose buffer grows with each frame and shrinks only when `read` is called. */
function bufferingSocket(encoding: Encoding) {
  const state = {
    buffered: 0,
    maxBuffered: 0,
    maxFrame: 0,
    /** Bytes written since the network last read. */
    sinceRead: 0,
    maxSinceRead: 0,
    closedWith: undefined as number | undefined,
    seqs: [] as number[],
  };
  const transport: SocketTransport = {
    kind: 'fastify-ws',
    send: (data) => {
      const size = encodedBytes(data);
      state.buffered += size;
      state.sinceRead += size;
      state.maxBuffered = Math.max(state.maxBuffered, state.buffered);
      state.maxSinceRead = Math.max(state.maxSinceRead, state.sinceRead);
      state.maxFrame = Math.max(state.maxFrame, size);
      const decoded = codec.decodeServer(data, encoding);
      if (decoded.ok && decoded.frame.t === 'room.message') state.seqs.push(decoded.frame.d.seq);
      return true;
    },
    bufferedAmount: () => state.buffered,
    close: (code) => {
      state.closedWith = code;
    },
  };
  const read = (bytes: number) => {
    state.buffered = Math.max(0, state.buffered - bytes);
    state.sinceRead = 0;
  };
  return { state, transport, read };
}

function harness(options: { readPerPoll: number; encoding: Encoding }) {
  const hub = createHub(codec);
  const bus = createMemoryBus();
  const stored: MessageRow[] = [];
  const store = {
    messagesAfter: async (_roomId: RoomId, sinceSeq: number, limit: number) =>
      stored.filter((r) => r.seq > sinceSeq).slice(0, limit),
    members: async () => [],
    lastSeqs: async (roomIds: readonly RoomId[]) => new Map(roomIds.map((id) => [id, stored.length])),
  } as Pick<RoomStore, 'messagesAfter' | 'members' | 'lastSeqs'> as RoomStore;
  const actor = { lastSeq: 0 };
  const ref: ActorRef<RoomCommand> = {
    kind: 'room',
    id: roomId,
    tell: () => {},
    ask: <R>(build: (reply: Reply<R>) => RoomCommand) =>
      new Promise<R>((resolve, reject) => {
        const command = build({ ok: resolve, fail: reject, settled: false } as unknown as Reply<R>);
        if (command.type !== 'join') throw new Error(`unexpected ${command.type}`);
        command.reply.ok({ lastSeq: actor.lastSeq });
      }),
  };
  const socket = bufferingSocket(options.encoding);
  let polls = 0;
  /** Runs at each poll of a join waiting for the socket to drain. */
  const onPoll: (() => void)[] = [];
  const timers: Timers = {
    now: () => 0,
    schedule: (_ms, callback) => {
      const handle = setImmediate(() => {
        polls += 1;
        socket.read(options.readPerPoll);
        for (const hook of onPoll.splice(0)) hook();
        callback();
      });
      return () => clearImmediate(handle);
    },
  };
  const joins = createRoomJoins({
    hub,
    bus,
    store,
    reads: createRoomReads(),
    log: createLogger({ level: 'silent', pretty: false }),
    room: () => ref,
    connectionsOf: (userId) => hub.connectionsOf(userId),
    isMember: async () => true,
    timers,
  });
  const userId = 'd0000000-0000-4000-8000-0000000000b1' as UserId;
  const connection = new Connection(userId, testPrincipal(userId), options.encoding, socket.transport, {
    ...environment,
    limits: { ...environment.limits, maxBufferedBytes: MAX_BUFFERED },
  });
  hub.add(connection);
  const publish = (seq: number) => {
    stored.push(bigRow(seq));
    return bus.publish(roomTopic(roomId), { frame: { t: 'room.message', d: toRoomMessage(bigRow(seq)) } });
  };
  return { hub, joins, stored, actor, socket, connection, onPoll, publish, polls: () => polls };
}

describe('a join backlog of the largest messages', () => {
  for (const encoding of [Encoding.JSON, Encoding.MSGPACK]) {
    it(`(${encoding}) is written in bursts under the socket's bound, each message once and in order`, async () => {
      const h = harness({ readPerPoll: 150_000, encoding });
      for (let seq = 1; seq <= 450; seq++) h.stored.push(bigRow(seq));
      h.actor.lastSeq = 450;
      // Live messages arrive while the backlog drains: held, then written in bursts too.
      h.onPoll.push(() => {
        for (let seq = 451; seq <= 480; seq++) void h.publish(seq);
      });
      await expect(h.joins.join(h.connection, roomId, 0)).resolves.toEqual({ lastSeq: 450 });

      expect(h.socket.state.closedWith).toBeUndefined();
      expect(h.socket.state.seqs).toEqual(Array.from({ length: 480 }, (_, i) => i + 1));
      // Far below maxBufferedBytes: a burst of at most SEND_BURST_BYTES on a buffer at the low mark.
      expect(h.socket.state.maxSinceRead).toBeLessThanOrEqual(SEND_BURST_BYTES + SEND_LOW_WATER_BYTES);
      expect(h.socket.state.maxBuffered).toBeLessThanOrEqual(SEND_BURST_BYTES + SEND_LOW_WATER_BYTES);
      expect(h.socket.state.maxBuffered).toBeLessThan(MAX_BUFFERED);
      // Live messages go on after the catch-up, once each.
      await h.publish(481);
      await new Promise<void>((resolve) => setImmediate(resolve));
      expect(h.socket.state.seqs.at(-1)).toBe(481);
      expect(new Set(h.socket.state.seqs).size).toBe(h.socket.state.seqs.length);
    });
  }

  it('a reader that reads nothing at all is still closed 1013 as a slow consumer', async () => {
    const h = harness({ readPerPoll: 0, encoding: Encoding.JSON });
    for (let seq = 1; seq <= 200; seq++) h.stored.push(bigRow(seq));
    h.actor.lastSeq = 200;
    await h.joins.join(h.connection, roomId, 0);
    expect(h.socket.state.closedWith).toBe(CloseCode.TRY_AGAIN_LATER);
    expect(h.polls()).toBeGreaterThanOrEqual(DRAIN_STALL_POLLS);
    // It was never sent more than one burst over the low-water mark.
    expect(h.socket.state.maxBuffered).toBeLessThanOrEqual(SEND_BURST_BYTES + SEND_LOW_WATER_BYTES);
  });
});

describe('a lost room tail of the largest messages', () => {
  it('is pushed by the tail sweeps one burst at a time, each message once and in order', async () => {
    const h = harness({ readPerPoll: 0, encoding: Encoding.JSON });
    await h.joins.join(h.connection, roomId, undefined);
    // Stored, but their pushes were lost on the way here.
    for (let seq = 1; seq <= 200; seq++) h.stored.push(bigRow(seq));
    for (let sweep = 0; sweep < 200 && h.socket.state.seqs.length < 200; sweep++) {
      h.socket.read(Number.POSITIVE_INFINITY);
      await h.joins.sweepTails();
      expect(h.socket.state.sinceRead).toBeLessThanOrEqual(SEND_BURST_BYTES);
    }
    expect(h.socket.state.closedWith).toBeUndefined();
    expect(h.socket.state.seqs).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
  });
});

describe('a room.history page of the largest messages', () => {
  it('is cut, newest first, at the byte budget: its ok frame stays under it', () => {
    const page: RoomMessage[] = [];
    for (let seq = 100; seq >= 1; seq--) page.push(toRoomMessage(bigRow(seq)));
    for (const encoding of [Encoding.JSON, Encoding.MSGPACK]) {
      const whole = encodedBytes(codec.encode({ t: 'ok', id: 1, d: { messages: page } }, encoding));
      expect(whole).toBeGreaterThan(MAX_BUFFERED);
      const fitted = fitMessages(codec, encoding, page, SEND_BURST_BYTES);
      const reply = encodedBytes(codec.encode({ t: 'ok', id: 1, d: { messages: fitted } }, encoding));
      expect(reply).toBeLessThanOrEqual(SEND_BURST_BYTES);
      // The newest messages, contiguous: the client goes on from the smallest seq it got.
      expect(fitted.map((m) => m.seq)).toEqual(page.slice(0, fitted.length).map((m) => m.seq));
      expect(fitted.length).toBeGreaterThan(0);
    }
  });
});
