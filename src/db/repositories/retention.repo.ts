/**
 * Deletes of rows whose purpose has passed (src/domain/maintenance/retention.ts decides when). Each
 * deletes at most `limit` rows per call, so one call is a short transaction that holds few locks;
 * the caller repeats until a call deletes fewer.
 */
import { type Kysely, sql, type Transaction } from 'kysely';
import type { SessionId } from '../../../protocol/src/ids.js';
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
export async function pruneIdempotencyKeys(db: Db, before: Date, limit: number): Promise<number> {
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

/**
 * Forgets the successor pair sealed into refresh tokens spent before `before`. The pair is handed
 * out again only within the reuse grace (REFRESH_REUSE_GRACE_S, at most 60 s); a spent token
 * presented after it is reuse whether the pair is there or not (src/domain/auth/service.ts
 * `refresh`), so past the grace the column only keeps a live token pair, encrypted, for nothing.
 * Returns how many rows were cleared (rows stay: reuse detection reads them until they expire).
 */
export async function clearSpentRefreshSuccessors(db: Db, before: Date, limit: number): Promise<number> {
  return deleted(
    await sql`update refresh_tokens set successor_sealed = null where id in (
      select id from refresh_tokens where spent_at < ${before} and successor_sealed is not null
      limit ${limit})`.execute(db),
  );
}

/**
 * Refresh tokens (and console credentials, rows of the same table) that expired before `before`.
 * Presented later, an unknown token is refused exactly as an expired one is ('invalid refresh
 * token'); what goes with the row is reuse detection for it: a spent token presented again after
 * its row is gone no longer revokes its session (its successors, if any, stay valid).
 */
export async function pruneExpiredRefreshTokens(db: Db, before: Date, limit: number): Promise<number> {
  return deleted(
    await sql`delete from refresh_tokens where id in (
      select id from refresh_tokens where expires_at < ${before} limit ${limit})`.execute(db),
  );
}

/**
 * Sessions that ended before `before` (past their absolute expiry, or revoked: the `least(…)` is
 * the expression of sessions_ended_idx, migration 0015), with their refresh tokens (ON DELETE
 * CASCADE), except each user's newest session: `deviceHistory` (sessions.repo.ts) reads "has this
 * user had a session before" from these rows, and a user left with none would get no new-login
 * notice for the next login from an unknown device.
 *
 * Deleting a session that was never revoked fires the revocation trigger (migration 0012, `when
 * old.revoked_at is null`; revoked ones fire nothing): one `auth_revocations` row each, which every
 * node reads and holds for an access token's lifetime. `before` MUST lie further back than the
 * longest access token lifetime (a day): then no token of these sessions can still be valid, the
 * rows would tell no node anything, and they are deleted again in the same transaction, before any
 * poll can see them (a first run over a year of expired sessions would otherwise hand every node
 * up to a million rows at once). Hence `trx`: its own transaction, committed by the caller.
 */
export async function pruneEndedSessions(
  trx: Transaction<Database>,
  before: Date,
  limit: number,
): Promise<number> {
  const { rows } = await sql<{ id: SessionId }>`delete from sessions where id in (
      select s.id from sessions s
      where least(s.absolute_expires_at, coalesce(s.revoked_at, 'infinity'::timestamptz)) < ${before}
        and exists (select 1 from sessions newer where newer.user_id = s.user_id
          and (newer.created_at, newer.id) > (s.created_at, s.id))
      limit ${limit})
    returning id`.execute(trx);
  if (rows.length > 0) {
    await sql`delete from auth_revocations where xid = pg_current_xact_id()
      and session_id in (${sql.join(rows.map((row) => row.id))})`.execute(trx);
  }
  return rows.length;
}
