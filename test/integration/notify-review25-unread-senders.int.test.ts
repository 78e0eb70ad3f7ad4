/**
 * Review 25: the `messages.unread` notification names up to three senders and says "and others"
 * only when more people wrote. Exactly three senders were told as "a, b, c and others": the
 * summary read at most three names, so three could not be told from more. Real PostgreSQL; the
 * bus and task queue the service is handed are not what is checked here.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RoomId, UserId } from '../../protocol/src/ids.js';
import { addRoomMembers, insertRoom } from '../../src/db/repositories/rooms.repo.js';
import { checkUnreadRoom, type NotificationsDeps } from '../../src/domain/notifications/service.js';
import { systemClock } from '../../src/platform/clock.js';
import { createLogger } from '../../src/platform/logger.js';
import { insertActor, openPaymentsTestDb, type PaymentsTestDb } from '../support/payments-db.js';

let testDb: PaymentsTestDb;
beforeAll(async () => {
  testDb = await openPaymentsTestDb(2);
});
afterAll(async () => {
  await testDb.close();
});

/** The body of the notification stored for a reader of a room where `writers` wrote in turn. */
async function unreadBody(writers: number): Promise<string> {
  const { db } = testDb;
  const reader = (await insertActor(db, 'reader')).userId;
  const senders: UserId[] = [];
  for (let i = 0; i < writers; i++) senders.push((await insertActor(db, `writer${i}`)).userId);
  const room = await insertRoom(db, { kind: 'group', title: 'Team', createdBy: reader, directKey: null });
  const roomId = room.id as RoomId;
  await addRoomMembers(db, roomId, [reader, ...senders]);
  const rows = Array.from({ length: 5 }, (_, i) => ({
    room_id: roomId,
    seq: i + 1,
    sender_id: senders[i % writers] as UserId,
    client_msg_id: randomUUID(),
    body: `message ${i + 1}`,
    meta: null,
  }));
  await db.insertInto('messages').values(rows).execute();
  await db.updateTable('rooms').set({ last_seq: 5 }).where('id', '=', roomId).execute();
  const deps: NotificationsDeps = {
    db,
    bus: { publish: async () => undefined } as unknown as NotificationsDeps['bus'],
    clock: systemClock,
    log: createLogger({ level: 'silent', pretty: false }),
    tasks: { enqueue: async () => undefined },
    isOnline: async () => false,
    settings: { digestMs: 60_000, unreadAfterMs: 60_000, currency: 'USD' },
  };
  expect(await checkUnreadRoom(deps, { roomId, userId: reader, readSeq: 0 })).toBe('stored');
  const stored = await db
    .selectFrom('notifications')
    .select('body')
    .where('user_id', '=', reader)
    .executeTakeFirstOrThrow();
  const names = await db.selectFrom('users').select(['id', 'username']).where('id', 'in', senders).execute();
  const byId = new Map(names.map((row) => [row.id, row.username]));
  // Written as the senders' order of first message, for the assertions to read.
  return senders.reduce((text, id, i) => text.replace(byId.get(id) ?? '?', `w${i}`), stored.body);
}

describe('messages.unread names its senders', () => {
  it('names exactly three senders without "and others"', async () => {
    expect(await unreadBody(3)).toBe('5 new messages from w0, w1, w2 in Team.');
  });

  it('adds "and others" when a fourth person wrote', async () => {
    expect(await unreadBody(4)).toBe('5 new messages from w0, w1, w2 and others in Team.');
  });
});
