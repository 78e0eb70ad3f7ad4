/**
 * The fencing epoch of a room against real PostgreSQL (migration 0011): once another node took a
 * room over, the previous owner cannot commit a single message, on either write path (the one
 * statement of new batches, the transaction after a duplicate), even when its write was issued
 * while the takeover waited for the row; the takeover waits for a write in flight instead.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RoomId, UserId } from '../../protocol/src/ids.js';
import { createRoomStore, RoomFencedError } from '../../src/actors/room/room-store.js';
import { addRoomMembers, insertRoom } from '../../src/db/repositories/rooms.repo.js';
import { insertUsers, openPaymentsTestDb, type PaymentsTestDb } from '../support/payments-db.js';
import { newMessage } from '../support/room-messages.js';

describe('room fencing epoch (real PostgreSQL)', () => {
  let t: PaymentsTestDb;
  let roomId: RoomId;
  let sender: UserId;

  beforeAll(async () => {
    t = await openPaymentsTestDb();
    [sender] = (await insertUsers(t.db, 1, 'fence')) as [UserId];
    const room = await insertRoom(t.db, {
      kind: 'group',
      title: 'fenced',
      createdBy: sender,
      directKey: null,
    });
    roomId = room.id;
    await addRoomMembers(t.db, roomId, [sender]);
  });
  afterAll(async () => {
    await t.close();
  });

  const message = (seq: number, id: string) => newMessage(sender, seq, id);
  const stored = async () =>
    (
      await t.db
        .selectFrom('messages')
        .select(['seq', 'client_msg_id'])
        .where('room_id', '=', roomId)
        .orderBy('seq')
        .execute()
    ).map((row) => `${row.seq}:${row.client_msg_id}`);

  it('refuses every write of a deposed owner and stores nothing of it; the new owner writes on', async () => {
    const nodeA = createRoomStore(t.db, 'node-a');
    const nodeB = createRoomStore(t.db, 'node-b');
    const a = await nodeA.acquire(roomId);
    expect(a).toEqual({ epoch: 1 });
    expect(await nodeA.insertNew(roomId, 1, [message(1, 'a1'), message(2, 'a2')])).toHaveLength(2);

    const b = await nodeB.acquire(roomId);
    expect(b).toEqual({ epoch: 2 });
    const owner = await t.db
      .selectFrom('rooms')
      .select(['owner_node', 'owner_epoch', 'last_seq'])
      .where('id', '=', roomId)
      .executeTakeFirstOrThrow();
    expect(owner).toMatchObject({ owner_node: 'node-b', last_seq: '2' });
    expect(Number(owner.owner_epoch)).toBe(2);

    await expect(nodeA.insertNew(roomId, 1, [message(3, 'a3')])).rejects.toBeInstanceOf(RoomFencedError);
    await expect(
      nodeA.insertChecked(roomId, 1, [{ senderId: sender, clientMsgId: 'a3' }], () => [message(3, 'a3')]),
    ).rejects.toBeInstanceOf(RoomFencedError);
    expect(await nodeB.insertNew(roomId, 2, [message(3, 'b3')])).toHaveLength(1);
    expect(await stored()).toEqual(['1:a1', '2:a2', '3:b3']);
    const after = await t.db
      .selectFrom('rooms')
      .select('last_seq')
      .where('id', '=', roomId)
      .executeTakeFirstOrThrow();
    expect(Number(after.last_seq)).toBe(3);
  });

  it('a takeover waits for the owner’s write in flight: that write commits, the next one is fenced', async () => {
    const nodeB = createRoomStore(t.db, 'node-b');
    const nodeC = createRoomStore(t.db, 'node-c');
    const epochB = 2;
    // Node b's write holds the room row inside a transaction that has not committed yet.
    let takeover: Promise<{ epoch: number } | undefined> | undefined;
    const inFlight = nodeB.insertChecked(roomId, epochB, [{ senderId: sender, clientMsgId: 'b4' }], () => {
      takeover = nodeC.acquire(roomId);
      return [message(4, 'b4')];
    });
    await expect(inFlight).resolves.toMatchObject({ inserted: [expect.objectContaining({ seq: 4 })] });
    expect(await takeover).toEqual({ epoch: 3 });
    expect(await nodeC.highestSeq(roomId)).toBe(4);
    await expect(nodeB.insertNew(roomId, epochB, [message(5, 'b5')])).rejects.toBeInstanceOf(RoomFencedError);
    expect(await nodeC.insertNew(roomId, 3, [message(5, 'c5')])).toHaveLength(1);
    expect(await stored()).toEqual(['1:a1', '2:a2', '3:b3', '4:b4', '5:c5']);
  });

  it('a room that does not exist cannot be taken over', async () => {
    const store = createRoomStore(t.db, 'node-a');
    expect(await store.acquire('00000000-0000-4000-8000-000000000000' as RoomId)).toBeUndefined();
  });
});
