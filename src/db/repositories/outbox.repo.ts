/** The transactional outbox and the sent-email log. */
import { type Kysely, type Selectable, sql, type Transaction } from 'kysely';
import type { EmailId, OutboxEventId, UserId } from '../../../protocol/src/ids.js';
import { currentTraceId } from '../../platform/trace.js';
import type { Database } from '../database.js';
import type { EmailStatus, EmailsTable, OutboxEventsTable } from '../tables/outbox.table.js';

type Db = Kysely<Database> | Transaction<Database>;
export type OutboxEventRow = Selectable<OutboxEventsTable>;
export type EmailRow = Selectable<EmailsTable>;

export async function insertOutboxEvent(
  db: Db,
  type: string,
  payload: Record<string, unknown>,
): Promise<OutboxEventId> {
  // The action that caused the event (request or frame id), for the relay's and workers' log lines.
  const traceId = currentTraceId();
  const row = await db
    .insertInto('outbox_events')
    .values({ type, payload, published_at: null, trace_id: traceId ?? null })
    .returning('id')
    .executeTakeFirstOrThrow();
  return row.id;
}

/** The oldest unpublished events, up to `limit`. Read without a lock: see the relay. */
export function unpublishedEvents(db: Db, limit: number): Promise<OutboxEventRow[]> {
  return db
    .selectFrom('outbox_events')
    .selectAll()
    .where('published_at', 'is', null)
    .orderBy('created_at')
    .limit(limit)
    .execute();
}

/**
 * Published events still kept (retention prunes them after 7 days), by id after `after`: the pages
 * of a relay re-relaying the outbox after the task queues lost their data. Keyset on the primary
 * key: the order does not matter there, and no other index serves every published row.
 */
export function publishedEventsAfter(
  db: Db,
  after: OutboxEventId | undefined,
  limit: number,
): Promise<OutboxEventRow[]> {
  let query = db.selectFrom('outbox_events').selectAll().where('published_at', 'is not', null);
  if (after !== undefined) query = query.where('id', '>', after);
  return query.orderBy('id').limit(limit).execute();
}

/** Marks the events published; returns those this call marked (not published meanwhile by another). */
export async function markEventsPublished(
  db: Db,
  ids: readonly OutboxEventId[],
  at: Date,
): Promise<Set<OutboxEventId>> {
  if (ids.length === 0) return new Set();
  const rows = await db
    .updateTable('outbox_events')
    .set({ published_at: at })
    .where('id', 'in', ids)
    .where('published_at', 'is', null)
    .returning('id')
    .execute();
  return new Set(rows.map((row) => row.id));
}

export interface NewEmail {
  readonly idempotencyKey: string;
  readonly template: string;
  readonly userId: UserId | null;
  readonly to: string;
  readonly subject: string;
  readonly text: string;
  readonly html: string;
}

/** Inserts the email once per idempotency key; returns the stored row either way. */
export async function insertEmailOnce(db: Db, email: NewEmail): Promise<EmailRow> {
  await db
    .insertInto('emails')
    .values({
      idempotency_key: email.idempotencyKey,
      template: email.template,
      user_id: email.userId,
      to_address: email.to,
      subject: email.subject,
      text_body: email.text,
      html_body: email.html,
      status: 'pending',
      last_error: null,
      sent_at: null,
    })
    .onConflict((oc) => oc.column('idempotency_key').doNothing())
    .execute();
  return db
    .selectFrom('emails')
    .selectAll()
    .where('idempotency_key', '=', email.idempotencyKey)
    .executeTakeFirstOrThrow();
}

/**
 * New contents of a mail not sent yet, `pending` or `failed` (a fresh link for a retry); the row, or
 * undefined once it was sent (or kept in the outbox).
 */
export function rewritePendingEmail(
  db: Db,
  id: EmailId,
  content: { readonly subject: string; readonly text: string; readonly html: string },
): Promise<EmailRow | undefined> {
  return db
    .updateTable('emails')
    .set({ subject: content.subject, text_body: content.text, html_body: content.html })
    .where('id', '=', id)
    .where('status', 'in', ['pending', 'failed'])
    .returningAll()
    .executeTakeFirst();
}

export function findEmailByKey(db: Db, idempotencyKey: string): Promise<EmailRow | undefined> {
  return db.selectFrom('emails').selectAll().where('idempotency_key', '=', idempotencyKey).executeTakeFirst();
}

/**
 * Mails still `pending` that were stored before `createdBefore`, oldest first, after the keyset
 * `after` (`created_at`, `id`): the lost-mail sweep's pages. Reads the partial index of pending
 * mails (migration 0022).
 */
export function pendingEmailsBefore(
  db: Db,
  createdBefore: Date,
  after: { readonly createdAt: Date; readonly id: EmailId } | undefined,
  limit: number,
): Promise<Pick<EmailRow, 'id' | 'idempotency_key' | 'template' | 'user_id' | 'created_at'>[]> {
  let query = db
    .selectFrom('emails')
    .select(['id', 'idempotency_key', 'template', 'user_id', 'created_at'])
    .where('status', '=', 'pending')
    .where('created_at', '<', createdBefore);
  if (after !== undefined) {
    query = query.where(sql<boolean>`(created_at, id) > (${after.createdAt}, ${after.id}::uuid)`);
  }
  return query.orderBy('created_at').orderBy('id').limit(limit).execute();
}

/**
 * Records the outcome of an attempt. A failure (`pending` to retry, `failed` for good) only lands on
 * a mail not delivered yet (`pending` or `failed`): another run of the same mail (its key enqueued
 * again, an operator's retry) may have sent it meanwhile, and a `sent` mail recorded `failed` would
 * be sent again by a later retry. Only a delivery (`sent`, `outbox`) is recorded whatever the status.
 */
export async function recordEmailOutcome(
  db: Db,
  id: EmailId,
  outcome: { status: EmailStatus; at: Date; error?: string; clearBody?: boolean },
): Promise<void> {
  const delivered = outcome.status === 'sent' || outcome.status === 'outbox';
  let update = db
    .updateTable('emails')
    .set((eb) => ({
      status: outcome.status,
      attempts: eb('attempts', '+', 1),
      last_error: outcome.error ?? null,
      ...(delivered ? { sent_at: outcome.at } : {}),
      ...(outcome.clearBody ? { text_body: null, html_body: null } : {}),
    }))
    .where('id', '=', id);
  if (!delivered) update = update.where('status', 'in', ['pending', 'failed']);
  await update.execute();
}

export function listEmails(
  db: Db,
  after: { createdAt: string; id: string } | undefined,
  limit: number,
): Promise<EmailRow[]> {
  let query = db.selectFrom('emails').selectAll();
  if (after !== undefined) {
    query = query.where(
      sql<boolean>`(created_at, id) < (${after.createdAt}::timestamptz, ${after.id}::uuid)`,
    );
  }
  return query.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(limit).execute();
}
