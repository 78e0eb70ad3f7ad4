/**
 * Review 21: the members check made when this node's bus subscriber is back (`recheckJoiners`, on
 * `Bus.onResubscribed`) when the database fails at that moment. A removal announced while the bus
 * was away reached nobody here; the check was given up on its first failure, and the removed user's
 * socket went on receiving every later message of the room. It is now tried again (bounded).
 */
import { describe, expect, it } from 'vitest';
import { createCodec } from '../../protocol/src/codec.js';
import type { RoomId, UserId } from '../../protocol/src/ids.js';
import { Encoding } from '../../protocol/src/version.js';
import type { RoomCommand } from '../actors/room/room-actor.js';
import type { RoomStore } from '../actors/room/room-store.js';
import type { ActorRef, Reply } from '../actors/runtime/index.js';
import { roomTopic } from '../domain/rooms/service.js';
import { type Bus, createMemoryBus } from '../platform/bus/bus.js';
import { createLogger } from '../platform/logger.js';
import { createManualTimers } from '../platform/timers.js';
import { Connection } from './connection.js';
import { testConnectionEnvironment, testPrincipal } from './connection-testing.js';
import { createHub } from './hub.js';
import { createRoomJoins, RECHECK_ATTEMPTS } from './room-joins.js';
import { createRoomReads } from './room-reads.js';
import type { SocketTransport } from './transport.js';

const codec = createCodec();
const roomId = 'c0000000-0000-4000-8000-000000002100' as RoomId;
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

function harness() {
  const hub = createHub(codec);
  const comebacks = new Set<() => void>();
  const bus: Bus = {
    ...createMemoryBus(),
    onResubscribed: (listener) => {
      comebacks.add(listener);
      return () => comebacks.delete(listener);
    },
  };
  const timers = createManualTimers();
  const members = new Set<UserId>();
  const db = { down: false, checks: 0 };
  const ref: ActorRef<RoomCommand> = {
    kind: 'room',
    id: roomId,
    tell: () => {},
    ask: <R>(build: (reply: Reply<R>) => RoomCommand) =>
      new Promise<R>((resolve, reject) => {
        const command = build({ ok: resolve, fail: reject, settled: false } as Reply<R>);
        if (command.type === 'join') command.reply.ok({ lastSeq: 0 });
      }),
  };
  const joins = createRoomJoins({
    hub,
    bus,
    store: { messagesAfter: async () => [] } as Pick<RoomStore, 'messagesAfter'> as RoomStore,
    reads: createRoomReads(),
    log: createLogger({ level: 'silent', pretty: false }),
    room: () => ref,
    connectionsOf: (userId) => hub.connectionsOf(userId),
    isMember: async (userId) => {
      db.checks += 1;
      if (db.down) throw new Error('injected: connection refused');
      return members.has(userId);
    },
    timers,
  });
  let next = 1;
  const open = () => {
    const userId = `d0000000-0000-4000-8000-${String(2100 + next++).padStart(12, '0')}` as UserId;
    const frames: string[] = [];
    const transport: SocketTransport = {
      kind: 'fastify-ws',
      send: (data) => {
        const decoded = codec.decodeServer(data, Encoding.JSON);
        if (decoded.ok && decoded.frame.t === 'room.message') frames.push(`message:${decoded.frame.d.seq}`);
        if (decoded.ok && decoded.frame.t === 'room.member')
          frames.push(`${decoded.frame.d.change}:${decoded.frame.d.userId}`);
        return true;
      },
      bufferedAmount: () => 0,
      close: () => {},
    };
    const connection = new Connection(
      userId,
      testPrincipal(userId),
      Encoding.JSON,
      transport,
      testConnectionEnvironment(codec),
    );
    hub.add(connection);
    members.add(userId);
    return { connection, frames };
  };
  const message = (seq: number) =>
    bus.publish(roomTopic(roomId), {
      frame: {
        t: 'room.message',
        d: {
          roomId,
          seq,
          senderId: 'a0000000-0000-4000-8000-000000000001' as UserId,
          clientMsgId: `m${seq}`,
          body: `b${seq}`,
          sentAt: '2026-01-01T00:00:00.000Z',
        },
      },
    });
  const busBack = () => {
    for (const listener of comebacks) listener();
  };
  return { hub, joins, timers, members, db, open, message, busBack };
}

describe('the members check after the bus came back, with the database down then', () => {
  it('is tried again until the database answers: the user removed meanwhile is taken out and told', async () => {
    const h = harness();
    const stays = h.open();
    const removed = h.open();
    await h.joins.join(stays.connection, roomId, undefined);
    await h.joins.join(removed.connection, roomId, undefined);

    // The removal was stored while this node's subscriber was away: its announcement never came.
    h.members.delete(removed.connection.userId);
    h.db.down = true;
    h.busBack();
    await settle();
    expect(h.db.checks).toBeGreaterThan(0);
    expect(h.hub.roomsOfConnection(removed.connection)).toEqual([roomId]);

    // Still down at the first retry, back for the second.
    h.timers.advance(1_000);
    await settle();
    h.db.down = false;
    h.timers.advance(2_000);
    await settle();

    expect(h.hub.roomsOfConnection(removed.connection)).toEqual([]);
    expect(h.hub.roomsOfConnection(stays.connection)).toEqual([roomId]);
    await h.message(1);
    await settle();
    expect(removed.frames).toEqual([`removed:${removed.connection.userId}`]);
    expect(stays.frames).toEqual(['message:1']);
  });

  it('gives up after RECHECK_ATTEMPTS, and nothing is left scheduled once the node closes', async () => {
    const h = harness();
    const joined = h.open();
    await h.joins.join(joined.connection, roomId, undefined);
    const before = h.db.checks;
    h.db.down = true;
    h.busBack();
    await settle();
    for (let i = 0; i < RECHECK_ATTEMPTS + 2; i += 1) {
      h.timers.advance(60_000);
      await settle();
    }
    expect(h.db.checks - before).toBe(RECHECK_ATTEMPTS);
    expect(h.timers.pending()).toBe(0);

    h.busBack();
    await settle();
    expect(h.timers.pending()).toBe(1);
    await h.joins.closeAll();
    expect(h.timers.pending()).toBe(0);
  });
});
