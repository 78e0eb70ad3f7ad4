/** Rooms, members and messages. Seqs are bigint in SQL and numbers here (far below 2^53). */
import { type InsertObject, type Kysely, type Selectable, sql, type Transaction } from 'kysely';
import type { RoomId, UserId } from '../../../protocol/src/ids.js';
import type { Database } from '../database.js';
import type { MessagesTable, RoomsTable } from '../tables/rooms.table.js';

type Db = Kysely<Database> | Transaction<Database>;
export type RoomRow = Selectable<RoomsTable>;
export type MessageRow = Omit<Selectable<MessagesTable>, 'seq'> & { seq: number };

const toMessage = (row: Selectable<MessagesTable>): MessageRow => ({ ...row, seq: Number(row.seq) });

export async function insertRoom(
  db: Db,
  room: { kind: RoomRow['kind']; title: string | null; createdBy: UserId; directKey: string | null },
): Promise<RoomRow> {
  return db
    .insertInto('rooms')
    .values({ kind: room.kind, title: room.title, created_by: room.createdBy, direct_key: room.directKey })
    .returningAll()
    .executeTakeFirstOrThrow();
}

export async function addRoomMembers(db: Db, roomId: RoomId, userIds: readonly UserId[]): Promise<void> {
  if (userIds.length === 0) return;
  await db
    .insertInto('room_members')
    .values(userIds.map((userId) => ({ room_id: roomId, user_id: userId, last_read_seq: 0 })))
    .onConflict((oc) => oc.columns(['room_id', 'user_id']).doNothing())
    .execute();
}

export async function removeRoomMember(db: Db, roomId: RoomId, userId: UserId): Promise<boolean> {
  const result = await db
    .deleteFrom('room_members')
    .where('room_id', '=', roomId)
    .where('user_id', '=', userId)
    .executeTakeFirst();
  return Number(result.numDeletedRows) > 0;
}

export const findRoom = (db: Db, id: RoomId) =>
  db.selectFrom('rooms').selectAll().where('id', '=', id).executeTakeFirst();

export const findDirectRoom = (db: Db, directKey: string) =>
  db.selectFrom('rooms').selectAll().where('direct_key', '=', directKey).executeTakeFirst();

export async function roomMembers(
  db: Db,
  roomId: RoomId,
): Promise<{ userId: UserId; lastReadSeq: number }[]> {
  const rows = await db
    .selectFrom('room_members')
    .select(['user_id', 'last_read_seq'])
    .where('room_id', '=', roomId)
    .execute();
  return rows.map((row) => ({ userId: row.user_id, lastReadSeq: Number(row.last_read_seq) }));
}

export interface RoomSummaryRow {
  room: RoomRow;
  lastMessage: MessageRow | undefined;
  unread: number;
  lastReadSeq: number;
}

/** The user's rooms, most recently active first, with the last message and the unread count. */
export async function roomsOfUser(db: Db, userId: UserId): Promise<RoomSummaryRow[]> {
  const rows = await db
    .selectFrom('room_members as m')
    .innerJoin('rooms as r', 'r.id', 'm.room_id')
    .selectAll('r')
    .select('m.last_read_seq')
    .where('m.user_id', '=', userId)
    .orderBy('r.last_seq', 'desc')
    .orderBy('r.created_at', 'desc')
    .limit(500)
    .execute();
  const summaries: RoomSummaryRow[] = [];
  for (const row of rows) {
    const { last_read_seq, ...room } = row;
    const lastSeq = Number(room.last_seq);
    const last =
      lastSeq > 0
        ? await db
            .selectFrom('messages')
            .selectAll()
            .where('room_id', '=', room.id)
            .where('seq', '=', lastSeq)
            .executeTakeFirst()
        : undefined;
    summaries.push({
      room,
      lastMessage: last === undefined ? undefined : toMessage(last),
      unread: Math.max(0, lastSeq - Number(last_read_seq)),
      lastReadSeq: Number(last_read_seq),
    });
  }
  return summaries;
}

/** Newest first, below `beforeSeq` when given. */
export async function messagesBefore(
  db: Db,
  roomId: RoomId,
  beforeSeq: number | undefined,
  limit: number,
): Promise<MessageRow[]> {
  let query = db.selectFrom('messages').selectAll().where('room_id', '=', roomId);
  if (beforeSeq !== undefined) query = query.where('seq', '<', beforeSeq);
  return (await query.orderBy('seq', 'desc').limit(limit).execute()).map(toMessage);
}

/** Oldest first, after `sinceSeq`: the gap a resuming receiver missed. */
export async function messagesAfter(
  db: Db,
  roomId: RoomId,
  sinceSeq: number,
  limit: number,
): Promise<MessageRow[]> {
  return (
    await db
      .selectFrom('messages')
      .selectAll()
      .where('room_id', '=', roomId)
      .where('seq', '>', sinceSeq)
      .orderBy('seq')
      .limit(limit)
      .execute()
  ).map(toMessage);
}

/** Messages already stored under these (sender, client message id) pairs. */
export async function findMessagesByClientIds(
  db: Db,
  roomId: RoomId,
  pairs: readonly { senderId: UserId; clientMsgId: string }[],
): Promise<MessageRow[]> {
  if (pairs.length === 0) return [];
  const rows = await db
    .selectFrom('messages')
    .selectAll()
    .where('room_id', '=', roomId)
    .where((eb) =>
      eb.or(
        pairs.map((p) => eb.and([eb('sender_id', '=', p.senderId), eb('client_msg_id', '=', p.clientMsgId)])),
      ),
    )
    .execute();
  return rows.map(toMessage);
}

export interface NewMessage {
  readonly seq: number;
  readonly senderId: UserId;
  readonly clientMsgId: string;
  readonly body: string;
  readonly meta: Record<string, unknown> | null;
}

/** One multi-row INSERT and the room's last_seq, in the caller's transaction. */
const messageRows = (roomId: RoomId, messages: readonly NewMessage[]): InsertObject<Database, 'messages'>[] =>
  messages.map((m) => ({
    room_id: roomId,
    seq: m.seq,
    sender_id: m.senderId,
    client_msg_id: m.clientMsgId,
    body: m.body,
    meta: m.meta === null ? null : sql`${JSON.stringify(m.meta)}::jsonb`,
  }));

export async function insertMessages(
  trx: Transaction<Database>,
  roomId: RoomId,
  messages: readonly NewMessage[],
): Promise<MessageRow[]> {
  if (messages.length === 0) return [];
  const rows = await trx
    .insertInto('messages')
    .values(messageRows(roomId, messages))
    .returningAll()
    .execute();
  const lastSeq = Math.max(...messages.map((m) => m.seq));
  await trx
    .updateTable('rooms')
    .set({ last_seq: lastSeq })
    .where('id', '=', roomId)
    .where('last_seq', '<', lastSeq)
    .execute();
  return rows.map(toMessage);
}

/**
 * Stores a batch that is believed new in one statement (one round trip, atomic): the INSERT and
 * the room's last_seq bump run as data-modifying CTEs. Any unique violation (a resend stored in an
 * earlier life of the room actor, or a seq another writer took) fails the whole statement, so the
 * caller can fall back to `findMessagesByClientIds` + `insertMessages` without leaving a gap.
 */
export async function insertNewMessages(
  db: Db,
  roomId: RoomId,
  messages: readonly NewMessage[],
): Promise<MessageRow[]> {
  if (messages.length === 0) return [];
  const lastSeq = Math.max(...messages.map((m) => m.seq));
  const rows = await db
    .with('inserted', (qb) => qb.insertInto('messages').values(messageRows(roomId, messages)).returningAll())
    .with('bumped', (qb) =>
      qb
        .updateTable('rooms')
        .set({ last_seq: lastSeq })
        .where('id', '=', roomId)
        .where('last_seq', '<', lastSeq)
        .returning('id'),
    )
    .selectFrom('inserted')
    .selectAll()
    .execute();
  return rows.map(toMessage);
}

export async function highestSeq(db: Db, roomId: RoomId): Promise<number> {
  const row = await db
    .selectFrom('messages')
    .select((eb) => eb.fn.max('seq').as('max'))
    .where('room_id', '=', roomId)
    .executeTakeFirst();
  return Number(row?.max ?? 0);
}

/** Read marks only move forward. */
export async function markRead(db: Db, roomId: RoomId, userId: UserId, seq: number): Promise<void> {
  await db
    .updateTable('room_members')
    .set({ last_read_seq: seq })
    .where('room_id', '=', roomId)
    .where('user_id', '=', userId)
    .where('last_read_seq', '<', seq)
    .execute();
}
