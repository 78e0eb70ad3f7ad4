/**
 * Review 29: while a socket's buffer was over the low-water mark, every join of the connection
 * (even one with nothing to send, at its final drain before going live) polled the buffer on a
 * timer of its own: a user joining hundreds of rooms while backed up made as many timers. The
 * waiting joins of one connection now share one poll, woken together when the buffer drains, and
 * ended (timer cancelled) when the connection closes.
 */
import { describe, expect, it } from 'vitest';
import { createCodec } from '../../protocol/src/codec.js';
import type { RoomId, UserId } from '../../protocol/src/ids.js';
import { Encoding } from '../../protocol/src/version.js';
import type { RoomCommand } from '../actors/room/room-actor.js';
import type { RoomStore } from '../actors/room/room-store.js';
import type { ActorRef, Reply } from '../actors/runtime/index.js';
import { createMemoryBus } from '../platform/bus/bus.js';
import { createLogger } from '../platform/logger.js';
import type { Timers } from '../platform/timers.js';
import { Connection } from './connection.js';
import { testConnectionEnvironment, testPrincipal } from './connection-testing.js';
import { createHub } from './hub.js';
import { createRoomJoins } from './room-joins.js';
import { createRoomReads } from './room-reads.js';
import { SEND_LOW_WATER_BYTES } from './send-budget.js';
import type { SocketTransport } from './transport.js';

const codec = createCodec();
const ROOMS = 200;
const roomIds = Array.from(
  { length: ROOMS },
  (_, i) => `c0000000-0000-4000-8000-${String(i).padStart(12, '0')}` as RoomId,
);
const turns = async (n = 5) => {
  for (let i = 0; i < n; i++) await new Promise<void>((resolve) => setImmediate(resolve));
};

function harness() {
  const hub = createHub(codec);
  const store = {
    messagesAfter: async () => [],
    members: async () => [],
    lastSeqs: async (ids: readonly RoomId[]) => new Map(ids.map((id) => [id, 0])),
  } as Pick<RoomStore, 'messagesAfter' | 'members' | 'lastSeqs'> as RoomStore;
  const ref = (id: RoomId): ActorRef<RoomCommand> => ({
    kind: 'room',
    id,
    tell: () => {},
    ask: <R>(build: (reply: Reply<R>) => RoomCommand) =>
      new Promise<R>((resolve, reject) => {
        const command = build({ ok: resolve, fail: reject, settled: false } as unknown as Reply<R>);
        if (command.type !== 'join') throw new Error(`unexpected ${command.type}`);
        command.reply.ok({ lastSeq: 0 });
      }),
  });
  /** Timers run by hand: `pending` are scheduled and neither run nor cancelled. */
  const pending = new Set<() => void>();
  const timers: Timers = {
    now: () => 0,
    schedule: (_ms, callback) => {
      pending.add(callback);
      return () => pending.delete(callback);
    },
  };
  const tick = () => {
    const due = [...pending];
    pending.clear();
    for (const callback of due) callback();
  };
  const joins = createRoomJoins({
    hub,
    bus: createMemoryBus(),
    store,
    reads: createRoomReads({ perUser: ROOMS, concurrency: ROOMS, maxWaiting: ROOMS }),
    log: createLogger({ level: 'silent', pretty: false }),
    room: ref,
    connectionsOf: (userId) => hub.connectionsOf(userId),
    isMember: async () => true,
    timers,
  });
  const socket = { buffered: 0, closedWith: undefined as number | undefined };
  const transport: SocketTransport = {
    kind: 'fastify-ws',
    send: () => true,
    bufferedAmount: () => socket.buffered,
    close: (code) => {
      socket.closedWith = code;
    },
  };
  const userId = 'd0000000-0000-4000-8000-000000000029' as UserId;
  const environment = testConnectionEnvironment(codec, {
    // As the gateway does (index.ts) once the transport reports the socket gone.
    onClosed: (closed) => {
      const joined = hub.roomsOfConnection(closed);
      hub.remove(closed);
      joins.dropUnused(joined);
      joins.closed(closed);
    },
  });
  const connection = new Connection(userId, testPrincipal(userId), Encoding.JSON, transport, environment);
  hub.add(connection);
  return { joins, connection, socket, pending, tick };
}

describe('joins waiting for a backed-up socket (review 29)', () => {
  it('share one poll, and all go live once the buffer drains', async () => {
    const h = harness();
    h.socket.buffered = SEND_LOW_WATER_BYTES * 2;
    const outcomes: unknown[] = [];
    const all = roomIds.map((roomId) =>
      h.joins.join(h.connection, roomId, undefined).then((reply) => outcomes.push(reply)),
    );
    await turns();
    expect(outcomes).toEqual([]);
    // Before: one timer per waiting join (200).
    expect(h.pending.size).toBe(1);
    // Still backed up (but going down): one poll again, nobody answered yet.
    h.socket.buffered -= 1;
    h.tick();
    await turns(1);
    expect(outcomes).toEqual([]);
    expect(h.pending.size).toBe(1);
    h.socket.buffered = 0;
    h.tick();
    await Promise.all(all);
    expect(outcomes).toEqual(roomIds.map(() => ({ lastSeq: 0 })));
    expect(h.pending.size).toBe(0);
    expect(h.socket.closedWith).toBeUndefined();
  });

  it('end when the connection closes, leaving no timer', async () => {
    const h = harness();
    h.socket.buffered = SEND_LOW_WATER_BYTES * 2;
    let settled = 0;
    const all = roomIds.map((roomId) =>
      h.joins.join(h.connection, roomId, undefined).finally(() => {
        settled += 1;
      }),
    );
    await turns();
    expect(h.pending.size).toBe(1);
    // The peer goes away: the transport reports the close.
    h.connection.onClose(1006);
    await Promise.allSettled(all);
    expect(settled).toBe(ROOMS);
    expect(h.pending.size).toBe(0);
  });

  it('end at the next poll when the server closes the connection', async () => {
    const h = harness();
    h.socket.buffered = SEND_LOW_WATER_BYTES * 2;
    const all = roomIds.slice(0, 3).map((roomId) => h.joins.join(h.connection, roomId, undefined));
    await turns();
    expect(h.pending.size).toBe(1);
    h.connection.close(1008, 'policy');
    h.tick();
    await Promise.allSettled(all);
    expect(h.pending.size).toBe(0);
  });
});
