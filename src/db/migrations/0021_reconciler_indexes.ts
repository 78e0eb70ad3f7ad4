import { type Kysely, sql } from 'kysely';

/**
 * The payments reconciler's looks added in review 16 and 17 (src/domain/payments/reconciler.ts,
 * steps 5 and 6), each served by a partial index that holds only the rows its WHERE clause can match:
 * - `unsettledEscrows`: escrows still `held` (one per contract in progress; an escrow leaves `held`
 *   once, within seconds of its contract ending), so a pass reads those instead of every escrow
 *   ever made and joins each to its contract by primary key;
 * - `overdueAutoApprovals`: contracts `delivered` (awaiting the hirer), in the order the query reads
 *   them (`auto_approve_at`, `id`), instead of every contract ever made;
 * - `parkedCreditHolds`: returned payouts and charged top-ups parked while their wallet was at its
 *   balance limit (pending holds of those reasons; almost always none), instead of every hold.
 * `if not exists`, as 0016 and 0018: an operator may build them first with
 * `create index concurrently` on a large table (README "Upgrading").
 */
// Frozen once merged: change the schema with a new migration, never by editing this one.
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`create index if not exists ledger_escrows_held_idx on ledger_escrows (contract_id) where status = 'held'`.execute(
    db,
  );
  await sql`create index if not exists contracts_delivered_auto_approve_idx on contracts (auto_approve_at, id) where state = 'delivered'`.execute(
    db,
  );
  await sql`create index if not exists ledger_holds_parked_credits_idx on ledger_holds (id) where status = 'pending' and reason in ('payout_return', 'top_up_parked')`.execute(
    db,
  );
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop index if exists ledger_holds_parked_credits_idx`.execute(db);
  await sql`drop index if exists contracts_delivered_auto_approve_idx`.execute(db);
  await sql`drop index if exists ledger_escrows_held_idx`.execute(db);
}
