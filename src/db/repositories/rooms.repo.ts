/** Rooms, members and messages. Seqs are bigint in SQL and numbers here (far below 2^53). */
import { type InsertObject, type Kysely, type Selectable, sql, type Transaction } from 'kysely';
import type { RoomId, UserId } from '../../../protocol/src/ids.js';
import type { Database } from '../database.js';
import { preparedStatementMark } from '../prepared-statements.js';
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

/** The state of the contract whose job room this is (undefined: no contract names the room). */
export async function contractStateOfRoom(db: Db, roomId: RoomId): Promise<string | undefined> {
  const row = await db
    .selectFrom('contracts')
    .select('state')
    .where('room_id', '=', roomId)
    .executeTakeFirst();
  return row?.state;
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

/** Whether the user is a member (which implies that the room exists): one primary-key lookup. */
export async function isRoomMember(db: Db, roomId: RoomId, userId: UserId): Promise<boolean> {
  const row = await db
    .selectFrom('room_members')
    .select('room_id')
    .where('room_id', '=', roomId)
    .where('user_id', '=', userId)
    .executeTakeFirst();
  return row !== undefined;
}

/**
 * Locks the room's row and counts its members: additions to one room take turns, so the count
 * stays true until the commit.
 */
export async function lockRoomMemberCount(trx: Transaction<Database>, roomId: RoomId): Promise<number> {
  // NO KEY UPDATE: additions take turns, while inserts referencing the room (their foreign-key
  // checks take KEY SHARE) go on.
  await trx.selectFrom('rooms').select('id').where('id', '=', roomId).forNoKeyUpdate().execute();
  const row = await trx
    .selectFrom('room_members')
    .select((eb) => eb.fn.countAll<string>().as('members'))
    .where('room_id', '=', roomId)
    .executeTakeFirstOrThrow();
  return Number(row.members);
}

/**
 * Which of the (room, user) pairs are memberships, in one query: the gateway asks this once per
 * event-loop turn for all the joins and first sends that arrived in it (a reconnect storm of 10 000
 * joins is 20-odd queries, not 10 000). Keys of the answer are `memberKey(roomId, userId)`.
 */
export async function membershipsAmong(
  db: Db,
  pairs: readonly { readonly roomId: RoomId; readonly userId: UserId }[],
): Promise<Set<string>> {
  if (pairs.length === 0) return new Set();
  const rows = await db
    .selectFrom('room_members')
    .select(['room_id', 'user_id'])
    .where((eb) =>
      eb(
        eb.refTuple('room_id', 'user_id'),
        'in',
        pairs.map((p) => eb.tuple(p.roomId, p.userId)),
      ),
    )
    .execute();
  return new Set(rows.map((row) => memberKey(row.room_id, row.user_id)));
}

export const memberKey = (roomId: RoomId, userId: UserId): string => `${roomId}/${userId}`;

/**
 * Locks the users' rows until the transaction ends (in id order, so two transactions never wait
 * on each other crosswise): membership counts read after it stay true until the commit.
 *
 * FOR NO KEY UPDATE, not FOR UPDATE: it serializes the transactions that lock the same users all
 * the same, but does not wait for the FOR KEY SHARE a foreign key check takes. A keyed POST
 * /v1/rooms first claims its Idempotency-Key (a row referencing the creator: a key share on their
 * row); with FOR UPDATE, two such creations at once each held the share the other's lock waited
 * for, and answered 500 "deadlock detected" after long retries.
 */
export async function lockUsers(trx: Transaction<Database>, userIds: readonly UserId[]): Promise<void> {
  if (userIds.length === 0) return;
  await trx
    .selectFrom('users')
    .select('id')
    .where('id', 'in', [...userIds].sort())
    .orderBy('id')
    .forNoKeyUpdate()
    .execute();
}

/** How many rooms each of the users is a member of (users with none are absent). */
export async function roomCounts(db: Db, userIds: readonly UserId[]): Promise<Map<UserId, number>> {
  if (userIds.length === 0) return new Map();
  const rows = await db
    .selectFrom('room_members')
    .select(['user_id', (eb) => eb.fn.countAll<string>().as('rooms')])
    .where('user_id', 'in', userIds)
    .groupBy('user_id')
    .execute();
  return new Map(rows.map((row) => [row.user_id, Number(row.rooms)]));
}

export interface RoomSummaryRow {
  /** The room as its members see it (ownership is the gateway's business). */
  room: Omit<RoomRow, 'owner_epoch' | 'owner_node'>;
  lastMessage: MessageRow | undefined;
  unread: number;
  lastReadSeq: number;
  /** Keyset position of this row in the list: membership time in microseconds since the epoch. */
  joinedAtUs: string;
}

/** Where a page of `roomsOfUser` starts: after this (joined_at, room id), in list order. */
export interface RoomListCursor {
  readonly joinedAtUs: string;
  readonly roomId: string;
}

interface RoomSummarySql {
  id: RoomId;
  kind: RoomRow['kind'];
  title: string | null;
  created_by: UserId | null;
  direct_key: string | null;
  last_seq: string;
  created_at: Date;
  last_read_seq: string;
  joined_at_us: string;
  m_seq: string | null;
  m_sender_id: UserId | null;
  m_client_msg_id: string | null;
  m_body: string | null;
  m_meta: Record<string, unknown> | null;
  m_sent_at: Date | null;
}

/**
 * A page of the user's rooms with each room's last message and read mark, in ONE statement (the
 * last message through a lateral primary-key lookup), newest membership first. The order is by
 * (joined_at, room_id), which never changes, so paging visits every room once even while messages
 * arrive. joined_at is compared in whole microseconds (a JS Date would drop them).
 */
export async function roomsOfUser(
  db: Db,
  userId: UserId,
  page: { readonly after: RoomListCursor | undefined; readonly limit: number },
): Promise<RoomSummaryRow[]> {
  const joinedUs = sql`(extract(epoch from m.joined_at) * 1000000)::bigint`;
  const after =
    page.after === undefined
      ? sql``
      : sql`and (${joinedUs}, m.room_id) < (${page.after.joinedAtUs}::bigint, ${page.after.roomId}::uuid)`;
  const result = await sql<RoomSummarySql>`
    select r.id, r.kind, r.title, r.created_by, r.direct_key, r.last_seq, r.created_at,
           m.last_read_seq, ${joinedUs}::text as joined_at_us,
           lm.seq as m_seq, lm.sender_id as m_sender_id, lm.client_msg_id as m_client_msg_id,
           lm.body as m_body, lm.meta as m_meta, lm.sent_at as m_sent_at
      from room_members m
      join rooms r on r.id = m.room_id
      left join lateral (
        select x.seq, x.sender_id, x.client_msg_id, x.body, x.meta, x.sent_at
          from messages x
         where x.room_id = r.id and x.seq = r.last_seq
      ) lm on true
     where m.user_id = ${userId} ${after}
     order by m.joined_at desc, m.room_id desc
     limit ${page.limit}`.execute(db);
  return result.rows.map((row) => {
    const lastSeq = Number(row.last_seq);
    const lastReadSeq = Number(row.last_read_seq);
    return {
      room: {
        id: row.id,
        kind: row.kind,
        title: row.title,
        created_by: row.created_by,
        direct_key: row.direct_key,
        last_seq: row.last_seq,
        created_at: row.created_at,
      },
      lastMessage:
        row.m_seq === null
          ? undefined
          : {
              room_id: row.id,
              seq: Number(row.m_seq),
              sender_id: row.m_sender_id as UserId,
              client_msg_id: row.m_client_msg_id as string,
              body: row.m_body as string,
              meta: row.m_meta,
              sent_at: row.m_sent_at as Date,
            },
      unread: Math.max(0, lastSeq - lastReadSeq),
      lastReadSeq,
      joinedAtUs: row.joined_at_us,
    };
  });
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

/**
 * Thrown by the writes below when the room's `owner_epoch` is not the writer's any more: another
 * node took the room over (migration 0011). Nothing of the batch was stored.
 */
export class RoomFencedError extends Error {
  readonly code = 'ROOM_FENCED';
  constructor(readonly roomId: RoomId) {
    super('the room was taken over by another node; this writer is fenced off');
  }
}

/**
 * Thrown by the writes below when a sender of the batch is no longer a member of the room (a
 * removal the room actor has not heard of: its announcement lost, or still on its way). Nothing of
 * the batch was stored; the actor reads the members again and refuses those senders' messages.
 */
export class RoomSenderNotMemberError extends Error {
  readonly code = 'ROOM_SENDER_NOT_MEMBER';
  constructor(readonly roomId: RoomId) {
    super('a sender of this batch is not a member of the room; nothing was stored');
  }
}

/** Whether every one of `senderIds` is a member of the room (one index probe each). */
export async function allSendersMembers(
  db: Db,
  roomId: RoomId,
  senderIds: readonly UserId[],
): Promise<boolean> {
  const distinct = [...new Set(senderIds)];
  if (distinct.length === 0) return true;
  const row = await db
    .selectFrom('room_members')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .where('room_id', '=', roomId)
    .where('user_id', '=', sql<UserId>`any(${distinct}::uuid[])`)
    .executeTakeFirstOrThrow();
  return Number(row.n) === distinct.length;
}

/**
 * Takes the room over for `nodeId`: bumps its epoch, so from this commit on only writes carrying
 * the new epoch are accepted. Waits for a write of the previous owner that holds the room row, so
 * `highestSeq` read afterwards is final. undefined when the room does not exist.
 */
export async function acquireRoomOwnership(
  db: Db,
  roomId: RoomId,
  nodeId: string,
): Promise<{ epoch: number } | undefined> {
  const row = await db
    .updateTable('rooms')
    .set({ owner_epoch: sql<number>`owner_epoch + 1`, owner_node: nodeId })
    .where('id', '=', roomId)
    .returning('owner_epoch')
    .executeTakeFirst();
  return row === undefined ? undefined : { epoch: Number(row.owner_epoch) };
}

/**
 * Locks the room row if `epoch` is still the room's (transactions of the owner); fenced otherwise.
 * Held to the commit: a takeover waits for this transaction, and one that committed first is seen.
 */
export async function lockOwnedRoom(
  trx: Transaction<Database>,
  roomId: RoomId,
  epoch: number,
): Promise<void> {
  const row = await trx
    .selectFrom('rooms')
    .select('id')
    .where('id', '=', roomId)
    .where('owner_epoch', '=', epoch)
    .forNoKeyUpdate()
    .executeTakeFirst();
  if (row === undefined) throw new RoomFencedError(roomId);
}

export async function insertMessages(
  trx: Transaction<Database>,
  roomId: RoomId,
  epoch: number,
  messages: readonly NewMessage[],
): Promise<MessageRow[]> {
  if (messages.length === 0) return [];
  await lockOwnedRoom(trx, roomId, epoch);
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
 * Stores a batch that is believed new in one statement (one round trip, atomic), fenced by the
 * writer's epoch: the room row is locked only while its epoch is still `epoch` (a takeover
 * committed first is seen here: the row is re-read after the lock wait), and the INSERT takes its
 * rows only when the fence holds, so a deposed owner stores nothing (RoomFencedError). The room's
 * last_seq bump runs in the same statement. Any unique violation (a resend stored in an earlier
 * life of the room actor, or a seq another writer such as a contract's system message took) fails
 * the whole statement, so the caller can fall back to `insertMessages` after a lookup, leaving no gap.
 * A batch with a sender who is not a member of the room stores nothing (RoomSenderNotMemberError).
 */
export async function insertNewMessages(
  db: Db,
  roomId: RoomId,
  epoch: number,
  messages: readonly NewMessage[],
): Promise<MessageRow[]> {
  if (messages.length === 0) return [];
  const stored = await insertNewMessagesOfRooms(db, [{ roomId, epoch, messages }]);
  const rows = stored.get(roomId);
  if (rows === undefined) throw new RoomFencedError(roomId);
  if (rows.length === 0) throw new RoomSenderNotMemberError(roomId);
  return rows;
}

/** PostgreSQL's detail of a unique violation starts with the key: `Key (room_id, …)=(<uuid>, …)`. */
const ROOM_KEY_DETAIL = /^Key \(room_id,[^)]*\)=\(([0-9a-f-]{36})[,)]/;

/**
 * The room whose message a unique violation (23505) of a messages write names — both keys of the
 * table begin with room_id: (room_id, seq) and (room_id, sender_id, client_msg_id) — or undefined.
 */
export function roomOfUniqueViolation(error: unknown): RoomId | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const { code, detail } = error as { code?: unknown; detail?: unknown };
  if (code !== '23505' || typeof detail !== 'string') return undefined;
  return ROOM_KEY_DETAIL.exec(detail)?.[1] as RoomId | undefined;
}

/** One room's batch inside a node-wide write (`insertNewMessagesOfRooms`). */
export interface RoomBatch {
  readonly roomId: RoomId;
  readonly epoch: number;
  readonly messages: readonly NewMessage[];
}

/**
 * The hottest statement of the node: a prepared statement (src/db/prepared-statements.ts), so its
 * text is fixed and the batches arrive as one array per column. Explicit columns in and out.
 */
const insertNewMessagesStatement = (columns: {
  roomIds: string[];
  epochs: number[];
  seqs: number[];
  senderIds: string[];
  clientMsgIds: string[];
  bodies: string[];
  metas: (string | null)[];
}) => sql<Selectable<MessagesTable>>`${sql.raw(preparedStatementMark('insert_new_messages_of_rooms'))}
    with v(room_id, epoch, seq, sender_id, client_msg_id, body, meta) as (
      select * from unnest(${columns.roomIds}::uuid[], ${columns.epochs}::bigint[], ${columns.seqs}::bigint[],
        ${columns.senderIds}::uuid[], ${columns.clientMsgIds}::text[], ${columns.bodies}::text[], ${columns.metas}::jsonb[])
    ),
    wanted as (select room_id, epoch, max(seq) as last_seq from v group by room_id, epoch),
    fence as (
      select rooms.id, rooms.owner_epoch from rooms
      join wanted on wanted.room_id = rooms.id and wanted.epoch = rooms.owner_epoch
      order by rooms.id
      for no key update of rooms
    ), outsiders as (
      select distinct v.room_id from v join fence on fence.id = v.room_id
      where not exists (
        select 1 from room_members m where m.room_id = v.room_id and m.user_id = v.sender_id
      )
    ), inserted as (
      insert into messages (room_id, seq, sender_id, client_msg_id, body, meta)
      select v.room_id, v.seq, v.sender_id, v.client_msg_id, v.body, v.meta
      from v join fence on fence.id = v.room_id and fence.owner_epoch = v.epoch
      where v.room_id not in (select room_id from outsiders)
      returning room_id, seq, sender_id, client_msg_id, body, meta, sent_at
    ), bumped as (
      update rooms set last_seq = wanted.last_seq
      from wanted join fence on fence.id = wanted.room_id
      where rooms.id = wanted.room_id and rooms.last_seq < wanted.last_seq
        and wanted.room_id not in (select room_id from outsiders)
      returning rooms.id
    )
    select room_id, seq, sender_id, client_msg_id, body, meta, sent_at from inserted
    union all
    select room_id, null, null, null, null, null, null from outsiders`;

/**
 * The batches of several rooms, each believed new, in ONE statement (node-wide group commit): one
 * round trip and one commit for every room with pending sends. Each room is fenced by its own
 * epoch exactly as in `insertNewMessages`: a room whose epoch moved on stores nothing and is
 * missing from the answer (the caller fails it with RoomFencedError); the others are stored. The
 * room rows are locked in id order, so two such statements never wait on each other crosswise.
 * Any error (a unique violation in one room, a refused value) fails the whole statement and
 * stores nothing: the caller then writes each room on its own to learn whose it was.
 * At most one batch per room, and every batch non-empty.
 *
 * Every sender must still be a member of the room, checked in the same statement (one primary-key
 * probe of room_members per message, no extra round trip): a room with a sender who is not stores
 * nothing and is answered with an EMPTY list (the caller fails it with RoomSenderNotMemberError).
 * A removal whose announcement was lost therefore stops the removed user's sends at once, not
 * after the room actor's member refresh (review 21c).
 */
export async function insertNewMessagesOfRooms(
  db: Db,
  batches: readonly RoomBatch[],
): Promise<Map<RoomId, MessageRow[]>> {
  const stored = new Map<RoomId, MessageRow[]>();
  if (batches.length === 0) return stored;
  const columns = {
    roomIds: [] as string[],
    epochs: [] as number[],
    seqs: [] as number[],
    senderIds: [] as string[],
    clientMsgIds: [] as string[],
    bodies: [] as string[],
    metas: [] as (string | null)[],
  };
  for (const batch of batches) {
    for (const m of batch.messages) {
      columns.roomIds.push(batch.roomId);
      columns.epochs.push(batch.epoch);
      columns.seqs.push(m.seq);
      columns.senderIds.push(m.senderId);
      columns.clientMsgIds.push(m.clientMsgId);
      columns.bodies.push(m.body);
      columns.metas.push(m.meta === null ? null : JSON.stringify(m.meta));
    }
  }
  const result = await insertNewMessagesStatement(columns).execute(db);
  for (const row of result.rows) {
    if (row.seq === null) {
      // A room refused for a sender who is not a member (the `outsiders` rows): nothing stored.
      if (!stored.has(row.room_id)) stored.set(row.room_id, []);
      continue;
    }
    const message = toMessage(row);
    const list = stored.get(message.room_id);
    if (list === undefined) stored.set(message.room_id, [message]);
    else list.push(message);
  }
  return stored;
}

/** Each room's `last_seq` (rooms that do not exist are missing), in one query. */
export async function lastSeqsOfRooms(db: Db, roomIds: readonly RoomId[]): Promise<Map<RoomId, number>> {
  if (roomIds.length === 0) return new Map();
  const rows = await db
    .selectFrom('rooms')
    .select(['id', 'last_seq'])
    .where('id', '=', sql<RoomId>`any(${[...roomIds]}::uuid[])`)
    .execute();
  return new Map(rows.map((row) => [row.id, Number(row.last_seq)]));
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
