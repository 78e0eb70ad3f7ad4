/** Notifications, their per-type preferences and email digests (migration 0008). */
import { type Kysely, type Selectable, sql, type Transaction } from 'kysely';
import type { ContractId, NotificationId, OutboxEventId, RoomId, UserId } from '../../../protocol/src/ids.js';
import type { Database } from '../database.js';
import type {
  DigestStatus,
  EmailPreference,
  NotificationDigestsTable,
  NotificationsTable,
} from '../tables/notifications.table.js';
import type { OutboxEventRow } from './outbox.repo.js';
import type { KeysetCursor } from './users.repo.js';

type Db = Kysely<Database> | Transaction<Database>;
export type NotificationRow = Selectable<NotificationsTable>;
export type DigestRow = Selectable<NotificationDigestsTable>;

export function findOutboxEvent(db: Db, id: OutboxEventId): Promise<OutboxEventRow | undefined> {
  return db.selectFrom('outbox_events').selectAll().where('id', '=', id).executeTakeFirst();
}

/** Who made a contract transition (null for timers), by the version it produced. */
export async function contractTransitionActor(
  db: Db,
  contractId: ContractId,
  version: number,
): Promise<UserId | null | undefined> {
  const row = await db
    .selectFrom('contract_transitions')
    .select('actor_id')
    .where('contract_id', '=', contractId)
    .where('version', '=', version)
    .executeTakeFirst();
  return row?.actor_id;
}

export interface NewNotification {
  readonly userId: UserId;
  readonly eventId: string;
  readonly type: string;
  readonly title: string;
  readonly body: string;
  readonly data: Record<string, unknown>;
  readonly inApp: boolean;
  readonly traceId: string | null;
}

/** Inserts it unless (event, user) is stored already; `inserted` says which happened. */
export async function insertNotificationOnce(
  trx: Transaction<Database>,
  notification: NewNotification,
): Promise<{ row: NotificationRow; inserted: boolean }> {
  const inserted = await trx
    .insertInto('notifications')
    .values({
      user_id: notification.userId,
      event_id: notification.eventId,
      type: notification.type,
      title: notification.title,
      body: notification.body,
      data: notification.data,
      in_app: notification.inApp,
      digest_id: null,
      trace_id: notification.traceId,
      pushed_at: null,
      read_at: null,
    })
    .onConflict((oc) => oc.columns(['event_id', 'user_id']).doNothing())
    .returningAll()
    .executeTakeFirst();
  if (inserted !== undefined) return { row: inserted, inserted: true };
  const row = await findNotificationByKey(trx, notification.eventId, notification.userId);
  if (row === undefined) throw new Error('notification vanished after a conflicting insert');
  return { row, inserted: false };
}

export function findNotificationByKey(db: Db, eventId: string, userId: UserId) {
  return db
    .selectFrom('notifications')
    .selectAll()
    .where('event_id', '=', eventId)
    .where('user_id', '=', userId)
    .executeTakeFirst();
}

/**
 * Puts the notification into the user's open digest (opening one due at `dueAt` when none is
 * open) and returns that digest. The digest row stays locked until the transaction ends, so the
 * digest task (which locks it first) cannot close it between this attach and its commit.
 */
export async function attachToOpenDigest(
  trx: Transaction<Database>,
  notificationId: NotificationId,
  userId: UserId,
  dueAt: Date,
): Promise<DigestRow> {
  for (let attempt = 0; attempt < 5; attempt++) {
    await trx
      .insertInto('notification_digests')
      .values({ user_id: userId, due_at: dueAt, closed_at: null, email_key: null })
      .onConflict((oc) => oc.column('user_id').where('status', '=', 'open').doNothing())
      .execute();
    // FOR UPDATE re-checks `status` on the newest row version: a digest closed meanwhile is skipped.
    const digest = await trx
      .selectFrom('notification_digests')
      .selectAll()
      .where('user_id', '=', userId)
      .where('status', '=', 'open')
      .forUpdate()
      .executeTakeFirst();
    if (digest !== undefined) {
      await trx
        .updateTable('notifications')
        .set({ digest_id: digest.id })
        .where('id', '=', notificationId)
        .execute();
      return digest;
    }
  }
  throw new Error('no open digest after five attempts');
}

export async function markPushed(db: Db, id: NotificationId, at: Date): Promise<void> {
  await db.updateTable('notifications').set({ pushed_at: at }).where('id', '=', id).execute();
}

export function findDigest(db: Db, id: string): Promise<DigestRow | undefined> {
  return db.selectFrom('notification_digests').selectAll().where('id', '=', id).executeTakeFirst();
}

/**
 * Open digests whose `due_at` passed before `dueBefore`, oldest due first: their task should have
 * closed them, so it was lost (Redis lost its data, an operator cleaned it) or failed for good.
 * Reads the partial index of open digests (one per user with mail pending).
 */
export async function overdueOpenDigests(
  db: Db,
  dueBefore: Date,
  limit: number,
): Promise<{ id: string; dueAt: Date }[]> {
  const rows = await db
    .selectFrom('notification_digests')
    .select(['id', 'due_at'])
    .where('status', '=', 'open')
    .where('due_at', '<', dueBefore)
    .orderBy('due_at')
    .orderBy('id')
    .limit(limit)
    .execute();
  return rows.map((row) => ({ id: row.id, dueAt: row.due_at }));
}

export function lockDigest(trx: Transaction<Database>, id: string): Promise<DigestRow | undefined> {
  return trx
    .selectFrom('notification_digests')
    .selectAll()
    .where('id', '=', id)
    .forUpdate()
    .executeTakeFirst();
}

/**
 * What a digest mails, read with a bound: the digest's notifications of `types` whose data is a JSON
 * object, unread or of a `mailedEvenIfRead` type; at most `limit` of them, those of
 * `mailedEvenIfRead` types first, then oldest first (answered oldest first); and how many there
 * are in all (`total`, counted by the same statement). A digest can hold any number of rows (other
 * users' bids and transfers, a digest held open by an outage): they are counted, never all loaded.
 */
export async function mailableOfDigest(
  db: Db,
  digestId: string,
  options: {
    readonly types: readonly string[];
    readonly mailedEvenIfRead: readonly string[];
    readonly limit: number;
  },
): Promise<{ rows: NotificationRow[]; total: number }> {
  const { types, mailedEvenIfRead, limit } = options;
  if (types.length === 0 || limit <= 0) return { rows: [], total: 0 };
  const alwaysFirst =
    mailedEvenIfRead.length === 0
      ? sql<boolean>`false`
      : sql<boolean>`type in (${sql.join(mailedEvenIfRead)})`;
  const found = await db
    .selectFrom('notifications')
    .selectAll()
    .select(sql<string>`count(*) over ()`.as('total'))
    .where('digest_id', '=', digestId)
    .where('type', 'in', types)
    .where(sql<boolean>`jsonb_typeof(data) = 'object'`)
    .where((eb) =>
      mailedEvenIfRead.length === 0
        ? eb('read_at', 'is', null)
        : eb.or([eb('read_at', 'is', null), eb('type', 'in', mailedEvenIfRead)]),
    )
    .orderBy(alwaysFirst, 'desc')
    .orderBy('created_at')
    .orderBy('id')
    .limit(limit)
    .execute();
  const rows = found
    .map(({ total: _total, ...row }) => row as NotificationRow)
    .sort(
      (a, b) => a.created_at.getTime() - b.created_at.getTime() || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0),
    );
  return { rows, total: Number(found[0]?.total ?? 0) };
}

/**
 * The digest's notifications `mailableOfDigest` leaves out because no digest can carry them: a type
 * not among `known` (a newer build's, a removed one) or data that is no JSON object; unread or of a
 * `mailedEvenIfRead` type, at most `limit` (for the log lines naming them).
 */
export function unmailableOfDigest(
  db: Db,
  digestId: string,
  options: {
    readonly known: readonly string[];
    readonly mailedEvenIfRead: readonly string[];
    readonly limit: number;
  },
): Promise<NotificationRow[]> {
  const { known, mailedEvenIfRead, limit } = options;
  return db
    .selectFrom('notifications')
    .selectAll()
    .where('digest_id', '=', digestId)
    .where((eb) =>
      eb.or([
        ...(known.length === 0 ? [] : [eb('type', 'not in', known)]),
        eb(sql<string>`jsonb_typeof(data)`, '<>', 'object'),
      ]),
    )
    .where((eb) =>
      mailedEvenIfRead.length === 0
        ? eb('read_at', 'is', null)
        : eb.or([eb('read_at', 'is', null), eb('type', 'in', mailedEvenIfRead)]),
    )
    .orderBy('created_at')
    .orderBy('id')
    .limit(limit)
    .execute();
}

/**
 * The types of the notifications a closed digest's mail carried: those unread when it closed
 * (still unread, or read at or after `closed_at`) and those of `mailedEvenIfRead` types, as
 * `mailableOfDigest` chose them then. Empty for a digest that is open or unknown.
 */
export async function mailedTypesOfDigest(
  db: Db,
  digestId: string,
  mailedEvenIfRead: readonly string[] = [],
): Promise<string[]> {
  const rows = await db
    .selectFrom('notifications')
    .innerJoin('notification_digests', 'notification_digests.id', 'notifications.digest_id')
    .select('notifications.type')
    .distinct()
    .where('notifications.digest_id', '=', digestId)
    .where('notification_digests.closed_at', 'is not', null)
    .where((eb) =>
      eb.or([
        eb('notifications.read_at', 'is', null),
        eb('notifications.read_at', '>=', eb.ref('notification_digests.closed_at')),
        ...(mailedEvenIfRead.length === 0 ? [] : [eb('notifications.type', 'in', mailedEvenIfRead)]),
      ]),
    )
    .execute();
  return rows.map((row) => row.type);
}

export async function closeDigest(
  trx: Transaction<Database>,
  id: string,
  outcome: { status: Exclude<DigestStatus, 'open'>; at: Date; emailKey: string | null },
): Promise<void> {
  await trx
    .updateTable('notification_digests')
    .set({ status: outcome.status, closed_at: outcome.at, email_key: outcome.emailKey })
    .where('id', '=', id)
    .execute();
}

/**
 * Newest first, keyset-paginated on (created_at, id); only notifications shown in the app, and only
 * of `types` when given (the types this build can answer: see `countUnread`).
 */
export function listNotifications(
  db: Db,
  userId: UserId,
  query: {
    unread: boolean;
    after: KeysetCursor | undefined;
    limit: number;
    types?: readonly string[] | undefined;
  },
): Promise<NotificationRow[]> {
  let q = db.selectFrom('notifications').selectAll().where('user_id', '=', userId).where('in_app', '=', true);
  if (query.types !== undefined) q = q.where('type', 'in', query.types);
  if (query.unread) q = q.where('read_at', 'is', null);
  if (query.after !== undefined) {
    q = q.where(
      sql<boolean>`(created_at, id) < (${query.after.createdAt}::timestamptz, ${query.after.id}::uuid)`,
    );
  }
  return q.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(query.limit).execute();
}

/**
 * The user's unread notifications shown in the app, only of `types` when given: the badge must
 * count what the list shows, and a row of a type this build does not know (a newer build's during a
 * rolling deploy, or left after a rollback) is not listed.
 */
export async function countUnread(db: Db, userId: UserId, types?: readonly string[]): Promise<number> {
  let q = db
    .selectFrom('notifications')
    .select((eb) => eb.fn.countAll<string>().as('count'))
    .where('user_id', '=', userId)
    .where('in_app', '=', true)
    .where('read_at', 'is', null);
  if (types !== undefined) q = q.where('type', 'in', types);
  const row = await q.executeTakeFirstOrThrow();
  return Number(row.count);
}

/**
 * Marks the user's unread notifications read (those ids, or all shown in the app); returns the ids
 * changed. `upTo` bounds `all` to that notification and the older ones, in the list's order
 * (created_at, then id: ids are random UUIDs, so an id alone orders nothing); an `upTo` that is not
 * one of the user's notifications bounds it to nothing (the row comparison with no row is null).
 */
export async function markNotificationsRead(
  db: Db,
  userId: UserId,
  which: { ids: readonly NotificationId[] },
  at: Date,
): Promise<NotificationId[]> {
  const rows = await db
    .updateTable('notifications')
    .set({ read_at: at })
    .where('user_id', '=', userId)
    .where('in_app', '=', true)
    .where('read_at', 'is', null)
    .where('id', 'in', which.ids)
    .returning('id')
    .execute();
  return rows.map((row) => row.id);
}

/**
 * Marks all the user's unread notifications read (`upTo` bounds it as in `markNotificationsRead`)
 * in one statement, and answers only how many changed and the newest of them (in the list's order),
 * never their ids: a user with 100k unread notifications costs one row here, not 100k ids in memory.
 * `newest` is null when nothing changed.
 */
export async function markAllNotificationsRead(
  db: Db,
  userId: UserId,
  upTo: NotificationId | undefined,
  at: Date,
): Promise<{ updated: number; newest: NotificationId | null }> {
  const bound =
    upTo === undefined
      ? sql``
      : sql`and (created_at, id) <= (select b.created_at, b.id from notifications b
          where b.id = ${upTo}::uuid and b.user_id = ${userId}::uuid)`;
  const { rows } = await sql<{ updated: number; newest: NotificationId | null }>`
    with changed as (
      update notifications set read_at = ${at}
      where user_id = ${userId}::uuid and in_app and read_at is null ${bound}
      returning id, created_at
    )
    select (select count(*) from changed)::int as updated,
      (select id from changed order by created_at desc, id desc limit 1) as newest`.execute(db);
  const row = rows[0];
  return { updated: row?.updated ?? 0, newest: row?.newest ?? null };
}

export function listPreferences(db: Db, userId: UserId) {
  return db
    .selectFrom('notification_preferences')
    .select(['type', 'in_app', 'email'])
    .where('user_id', '=', userId)
    .execute();
}

export async function upsertPreferences(
  db: Db,
  userId: UserId,
  rows: readonly { type: string; inApp: boolean; email: EmailPreference }[],
  at: Date,
): Promise<void> {
  if (rows.length === 0) return;
  await db
    .insertInto('notification_preferences')
    .values(
      rows.map((r) => ({ user_id: userId, type: r.type, in_app: r.inApp, email: r.email, updated_at: at })),
    )
    .onConflict((oc) =>
      oc.columns(['user_id', 'type']).doUpdateSet((eb) => ({
        in_app: eb.ref('excluded.in_app'),
        email: eb.ref('excluded.email'),
        updated_at: eb.ref('excluded.updated_at'),
      })),
    )
    .execute();
}

/** The member's read mark, or undefined when they are not a member (any more). */
export async function memberReadSeq(db: Db, roomId: RoomId, userId: UserId): Promise<number | undefined> {
  const row = await db
    .selectFrom('room_members')
    .select('last_read_seq')
    .where('room_id', '=', roomId)
    .where('user_id', '=', userId)
    .executeTakeFirst();
  return row === undefined ? undefined : Number(row.last_read_seq);
}

/**
 * Messages of others after `afterSeq`: how many, the last seq, up to 3 sender names, and whether
 * more people wrote than those named (a 4th sender is looked for: three named alone are all).
 */
export async function unreadSummary(
  db: Db,
  roomId: RoomId,
  userId: UserId,
  afterSeq: number,
): Promise<{
  count: number;
  lastSeq: number;
  senders: string[];
  moreSenders: boolean;
  roomTitle: string | null;
}> {
  const totals = await db
    .selectFrom('messages')
    .select((eb) => [eb.fn.countAll<string>().as('count'), eb.fn.max('seq').as('last')])
    .where('room_id', '=', roomId)
    .where('seq', '>', afterSeq)
    .where('sender_id', '!=', userId)
    .executeTakeFirstOrThrow();
  const senders = await db
    .selectFrom('messages')
    .innerJoin('users', 'users.id', 'messages.sender_id')
    .select('users.username')
    .where('messages.room_id', '=', roomId)
    .where('messages.seq', '>', afterSeq)
    .where('messages.sender_id', '!=', userId)
    .groupBy('users.username')
    .orderBy(sql`min(messages.seq)`)
    .limit(4)
    .execute();
  const room = await db.selectFrom('rooms').select('title').where('id', '=', roomId).executeTakeFirst();
  return {
    count: Number(totals.count),
    lastSeq: Number(totals.last ?? afterSeq),
    senders: senders.slice(0, 3).map((s) => s.username),
    moreSenders: senders.length > 3,
    roomTitle: room?.title ?? null,
  };
}

/**
 * The key of unsubscribe links (migration 0017): `candidate` (base64url of 32 random bytes) becomes
 * it when there is none yet; every caller gets the one stored, whoever stored it first. Raw SQL: a
 * single-row table of this module, outside the typed schema.
 */
export async function unsubscribeKey(db: Db, candidate: string): Promise<string> {
  await sql`insert into notification_unsubscribe_keys (secret) values (${candidate}) on conflict do nothing`.execute(
    db,
  );
  const { rows } = await sql<{ secret: string }>`select secret from notification_unsubscribe_keys`.execute(
    db,
  );
  const secret = rows[0]?.secret;
  if (secret === undefined) throw new Error('no unsubscribe key after inserting one');
  return secret;
}
