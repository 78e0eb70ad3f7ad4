import { type Kysely, sql } from 'kysely';

/**
 * The reconciler's look for paid withdrawals a bank may still return (`paidWithdrawals`): partial,
 * so it holds only withdrawals in `succeeded`, in the order the query reads them (`settled_at`,
 * `id`); a pass reads the rows paid within PAYMENTS_PAYOUT_RETURN_WINDOW_S instead of every
 * succeeded payment ever made (`payments_status_idx` is by `created_at` and mixes in top-ups).
 * `if not exists`, as 0016: an operator may build it first with `create index concurrently` on a
 * large table (README "Upgrading").
 */
// Frozen once merged: change the schema with a new migration, never by editing this one.
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`create index if not exists payments_paid_withdrawals_idx on payments (settled_at, id) where kind = 'withdrawal' and status = 'succeeded'`.execute(
    db,
  );
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop index if exists payments_paid_withdrawals_idx`.execute(db);
}
