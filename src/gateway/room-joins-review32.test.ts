/**
 * Review 32: a DELETE of a room membership by somebody who is no member announces the removal again
 * (the retry of one whose first announcement failed must still take the removed user's sockets out
 * of the room). That announcement reached every joined member: they were told of the removal of
 * somebody who may never have been in the room. Now it reaches the removed user's own joined
 * connections alone (`userOnly`).
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

describe('a removal announced again (review 32)', () => {
  it("reaches the removed user's own joined connections only, never the room's members", async () => {
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
    const open = async (userId: UserId, join: boolean) => {
      const socket = recording(userId);
      hub.add(socket.connection);
      if (join) {
        members.add(userId);
        await joins.join(socket.connection, roomId, undefined);
      }
      return socket;
    };
    const member = await open('a0000000-0000-4000-8000-000000000032' as UserId, true);
    const leaver = await open('b0000000-0000-4000-8000-000000000032' as UserId, true);
    const stranger = await open('d0000000-0000-4000-8000-000000000032' as UserId, false);
    const removal = (userId: UserId) =>
      bus.publish(roomTopic(roomId), {
        frame: { t: 'room.member', d: { roomId, userId, change: 'removed' } },
        userOnly: true,
      });

    // Somebody never in the room "leaves" it: nobody hears of it.
    await removal(stranger.connection.userId);
    await settle();
    expect([member.memberPushes, stranger.memberPushes]).toEqual([[], []]);

    // A removal whose first announcement was lost: the removed user's joined socket is told and
    // taken out; the members are not told again.
    members.delete(leaver.connection.userId);
    await removal(leaver.connection.userId);
    await settle();
    expect(leaver.memberPushes).toEqual([`removed:${leaver.connection.userId}`]);
    expect(hub.roomsOfConnection(leaver.connection)).toEqual([]);
    expect(member.memberPushes).toEqual([]);
    expect(hub.roomsOfConnection(member.connection)).toEqual([roomId]);
  });
});
