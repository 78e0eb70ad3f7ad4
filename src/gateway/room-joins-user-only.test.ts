/**
 * A membership change announced again reaches the user it names alone (`userOnly` on the room's bus
 * payload). A DELETE of somebody who is no member, or a POST of somebody who already is, changes
 * nothing but announces the change again: the retry of one whose first announcement failed (503)
 * must still reach that user's sockets. Told to every joined member (before reviews 32 and 33), the
 * members heard of the removal of somebody who may never have been in the room, or again and again
 * of the "addition" of a member of long standing.
 */
import { describe, expect, it } from 'vitest';
import { createCodec } from '../../protocol/src/codec.js';
import type { RoomId, UserId } from '../../protocol/src/ids.js';
import { Encoding } from '../../protocol/src/version.js';
import type { RoomCommand } from '../actors/room/room-actor.js';
import type { RoomStore } from '../actors/room/room-store.js';
import type { ActorRef } from '../actors/runtime/index.js';
import { roomTopic } from '../domain/rooms/service.js';
import { createMemoryBus } from '../platform/bus/bus.js';
import { createLogger } from '../platform/logger.js';
import { Connection } from './connection.js';
import { testConnectionEnvironment, testPrincipal } from './connection-testing.js';
import { createHub } from './hub.js';
import { createRoomJoins } from './room-joins.js';
import { createRoomReads } from './room-reads.js';

const codec = createCodec();
const roomId = 'c0000000-0000-4000-8000-000000000032' as RoomId;
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A connection of `userId` that records the `room.member` pushes it gets, as `change:userId`. */
function recording(userId: UserId) {
  const memberPushes: string[] = [];
  const connection = new Connection(
    userId,
    testPrincipal(userId),
    Encoding.JSON,
    {
      kind: 'fastify-ws',
      send: (data) => {
        const decoded = codec.decodeServer(data, Encoding.JSON);
        if (decoded.ok && decoded.frame.t === 'room.member')
          memberPushes.push(`${decoded.frame.d.change}:${decoded.frame.d.userId}`);
        return true;
      },
      bufferedAmount: () => 0,
      close: () => {},
    },
    testConnectionEnvironment(codec),
  );
  return { connection, memberPushes };
}

/** One node's room joins over an in-memory bus; `members` is what the database says. */
function oneRoom() {
  const hub = createHub(codec);
  const bus = createMemoryBus();
  const members = new Set<UserId>();
  const room: ActorRef<RoomCommand> = {
    kind: 'room',
    id: roomId,
    tell: () => {},
    ask: async () => ({ lastSeq: 0 }) as never,
  };
  const joins = createRoomJoins({
    hub,
    bus,
    store: { messagesAfter: async () => [] } as unknown as RoomStore,
    reads: createRoomReads(),
    log: createLogger({ level: 'silent', pretty: false }),
    room: () => room,
    connectionsOf: (userId) => hub.connectionsOf(userId),
    isMember: async (userId) => members.has(userId),
  });
  /** A socket of `userId`, joined to the room when `join` (the user then a member). */
  const open = async (userId: UserId, join = true) => {
    const socket = recording(userId);
    hub.add(socket.connection);
    if (join) {
      members.add(userId);
      await joins.join(socket.connection, roomId, undefined);
    }
    return socket;
  };
  const announce = async (userId: UserId, change: 'added' | 'removed', userOnly: boolean) => {
    await bus.publish(roomTopic(roomId), {
      frame: { t: 'room.member', d: { roomId, userId, change } },
      ...(userOnly ? { userOnly: true as const } : {}),
    });
    await settle();
  };
  return { hub, members, open, announce };
}

describe('a removal announced again (review 32)', () => {
  it("reaches the removed user's own joined connections only, never the room's members", async () => {
    const { hub, members, open, announce } = oneRoom();
    const member = await open('a0000000-0000-4000-8000-000000000032' as UserId);
    const leaver = await open('b0000000-0000-4000-8000-000000000032' as UserId);
    const stranger = await open('d0000000-0000-4000-8000-000000000032' as UserId, false);

    // Somebody never in the room "leaves" it: nobody hears of it.
    await announce(stranger.connection.userId, 'removed', true);
    expect([member.memberPushes, stranger.memberPushes]).toEqual([[], []]);

    // A removal whose first announcement was lost: the removed user's joined socket is told and
    // taken out; the members are not told again.
    members.delete(leaver.connection.userId);
    await announce(leaver.connection.userId, 'removed', true);
    expect(leaver.memberPushes).toEqual([`removed:${leaver.connection.userId}`]);
    expect(hub.roomsOfConnection(leaver.connection)).toEqual([]);
    expect(member.memberPushes).toEqual([]);
    expect(hub.roomsOfConnection(member.connection)).toEqual([roomId]);
  });
});

describe('an addition announced again (review 33)', () => {
  it("reaches the added user's own joined connections only, and takes nobody out", async () => {
    const { hub, open, announce } = oneRoom();
    const member = await open('a0000000-0000-4000-8000-000000000033' as UserId);
    const added = await open('b0000000-0000-4000-8000-000000000033' as UserId);

    // Announced again (a POST for a member): the members hear nothing of it.
    await announce(added.connection.userId, 'added', true);
    expect(member.memberPushes).toEqual([]);
    expect(added.memberPushes).toEqual([`added:${added.connection.userId}`]);
    expect(hub.roomsOfConnection(added.connection)).toEqual([roomId]);

    // A real addition still reaches every joined connection.
    await announce(added.connection.userId, 'added', false);
    expect(member.memberPushes).toEqual([`added:${added.connection.userId}`]);
    expect(hub.roomsOfConnection(member.connection)).toEqual([roomId]);
  });
});
