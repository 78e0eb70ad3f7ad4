/**
 * Rooms review 33, on real PostgreSQL through the room service (no server): a POST of a room
 * membership for somebody who is a member already (a no-op) announced `room.member added` to every
 * joined member, at each repeat. It is now announced again to the added user's own connections alone
 * (`userOnly`, as a DELETE of a non-member is: review 32), at most every 5 s, and still after an
 * addition whose announcement failed (its 503 retried). The gateway side: room-joins-review33.test.ts.
 */
import type { Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RoomId, UserId } from '../../protocol/src/ids.js';
import type { Database } from '../../src/db/database.js';
import { addRoomMembers, insertRoom } from '../../src/db/repositories/rooms.repo.js';
import { addContactWithin } from '../../src/db/repositories/users.repo.js';
import { createRoomService, roomTopic } from '../../src/domain/rooms/service.js';
import { createMemoryBus } from '../../src/platform/bus/bus.js';
import type { RoomFramePayload } from '../../src/platform/bus/topics.js';
import { insertActor, openPaymentsTestDb, type PaymentsTestDb } from '../support/payments-db.js';

let testDb: PaymentsTestDb;
let db: Kysely<Database>;

beforeAll(async () => {
  testDb = await openPaymentsTestDb(2);
  db = testDb.db;
}, 60_000);

afterAll(async () => {
  await testDb?.close();
});

describe('a POST of a room membership for a member', () => {
  it('tells the members nothing; a real addition, and the retry of a failed one, still announce', async () => {
    const memory = createMemoryBus();
    let failPublish = false;
    const bus = {
      ...memory,
      publish: (async (topic, payload) => {
        if (failPublish) throw new Error('bus down');
        return memory.publish(topic, payload);
      }) as typeof memory.publish,
    };
    const rooms = createRoomService({ db, bus, maxRoomsPerUser: 10 });
    const [owner, member, newcomer] = await Promise.all(
      ['owner33', 'member33', 'newcomer33'].map(async (p) => (await insertActor(db, p, 'worker')).userId),
    );
    const roomId = (
      await insertRoom(db, { kind: 'group', title: 'g', createdBy: owner as UserId, directKey: null })
    ).id as RoomId;
    await addRoomMembers(db, roomId, [owner as UserId, member as UserId]);
    await addContactWithin(db, newcomer as UserId, owner as UserId, 100);
    await addContactWithin(db, member as UserId, owner as UserId, 100);
    const heard: RoomFramePayload[] = [];
    await memory.subscribe(roomTopic(roomId), (payload) => void heard.push(payload));
    const added = (userId: string, userOnly: boolean) => ({
      frame: { t: 'room.member', d: { roomId, userId, change: 'added' } },
      ...(userOnly ? { userOnly: true } : {}),
    });

    // A member adds themself, the owner adds a member: nothing changes. Before: two plain
    // `room.member added` frames, pushed to every joined member. Now one marked for the user alone
    // (the repeat within 5 s is not announced at all).
    await rooms.addMember(member as UserId, roomId, member as UserId);
    await rooms.addMember(owner as UserId, roomId, member as UserId);
    expect(heard.splice(0)).toEqual([added(member as string, true)]);

    // A real addition whose announcement failed answers 503 (stored); its retry, a no-op now,
    // announces it again to the newcomer's connections; a later real one reaches everyone.
    failPublish = true;
    await expect(rooms.addMember(owner as UserId, roomId, newcomer as UserId)).rejects.toThrow('bus down');
    failPublish = false;
    await rooms.addMember(owner as UserId, roomId, newcomer as UserId);
    expect(heard.splice(0)).toEqual([added(newcomer as string, true)]);
    await rooms.removeMember(newcomer as UserId, roomId, newcomer as UserId);
    await rooms.addMember(owner as UserId, roomId, newcomer as UserId);
    expect(heard.splice(0)).toEqual([
      { frame: { t: 'room.member', d: { roomId, userId: newcomer, change: 'removed' } } },
      added(newcomer as string, false),
    ]);
  });
});
