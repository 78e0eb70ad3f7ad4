/**
 * Deletes of rows whose purpose has passed (src/domain/maintenance/retention.ts decides when). Each
 * deletes at most `limit` rows per call, so one call is a short transaction that holds few locks;
 * the caller repeats until a call deletes fewer.
 */
import { type Kysely, sql } from 'kysely';
import type { Database } from '../database.js';

type Db = Kysely<Database>;

const deleted = (result: { numAffectedRows?: bigint }) => Number(result.numAffectedRows ?? 0n);

/**
 * Published outbox events created before `before` (the relay never reads a published one again;
 * events are published within moments of their creation). By creation time: that column is indexed
 * (BRIN, migration 0014) and never changes, so publishing stays a HOT update.
 */
export async function prunePublishedOutboxEvents(db: Db, before: Date, limit: number): Promise<number> {
  return deleted(
    await sql`delete from outbox_events where id in (
      select id from outbox_events where created_at < ${before} and published_at is not null
      limit ${limit})`.execute(db),
  );
}

/** Idempotency keys created before `before` (a key is honoured for 24 h; a reuse after is new). */
export async function pruneIdempotencyKeysBatch(db: Db, before: Date, limit: number): Promise<number> {
  return deleted(
    await sql`delete from idempotency_keys where ctid in (
      select ctid from idempotency_keys where created_at < ${before} limit ${limit})`.execute(db),
  );
}

/** Verify and reset tokens that expired before `before` (used or not, they open nothing). */
export async function pruneExpiredEmailTokens(db: Db, before: Date, limit: number): Promise<number> {
  return deleted(
    await sql`delete from email_tokens where id in (
      select id from email_tokens where expires_at < ${before} limit ${limit})`.execute(db),
  );
}

/**
 * Mails created before `before` and settled: sent, failed for good, or kept in the outbox. A
 * `pending` mail is never pruned (its task may still send it).
 */
export async function pruneSettledEmails(db: Db, before: Date, limit: number): Promise<number> {
  return deleted(
    await sql`delete from emails where id in (
      select id from emails where created_at < ${before} and status <> 'pending'
      limit ${limit})`.execute(db),
  );
}
