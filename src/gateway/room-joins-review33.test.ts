/**
 * Review 33: a POST of a room membership for somebody who is a member already changes nothing but
 * announces the addition again (the retry of one whose first announcement failed, 503). That
 * announcement reached every joined member, who were told again and again of an "addition" of a
 * member of long standing. Now it is marked `userOnly`, as a removal announced again is: only the
 * added user's own joined connections hear it (and, an addition, none is taken out of the room).
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
const roomId = 'c0000000-0000-4000-8000-000000000033' as RoomId;
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

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

describe('an addition announced again (review 33)', () => {
  it("reaches the added user's own joined connections only, and takes nobody out", async () => {
    const hub = createHub(codec);
    const bus = createMemoryBus();
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
      isMember: async () => true,
    });
    const open = async (userId: UserId) => {
      const socket = recording(userId);
      hub.add(socket.connection);
      await joins.join(socket.connection, roomId, undefined);
      return socket;
    };
    const member = await open('a0000000-0000-4000-8000-000000000033' as UserId);
    const added = await open('b0000000-0000-4000-8000-000000000033' as UserId);
    const announce = (userOnly: boolean) =>
      bus.publish(roomTopic(roomId), {
        frame: { t: 'room.member', d: { roomId, userId: added.connection.userId, change: 'added' } },
        ...(userOnly ? { userOnly: true as const } : {}),
      });

    // Announced again (a POST for a member): the members hear nothing of it.
    await announce(true);
    await settle();
    expect(member.memberPushes).toEqual([]);
    expect(added.memberPushes).toEqual([`added:${added.connection.userId}`]);
    expect(hub.roomsOfConnection(added.connection)).toEqual([roomId]);

    // A real addition still reaches every joined connection.
    await announce(false);
    await settle();
    expect(member.memberPushes).toEqual([`added:${added.connection.userId}`]);
    expect(hub.roomsOfConnection(member.connection)).toEqual([roomId]);
  });
});
