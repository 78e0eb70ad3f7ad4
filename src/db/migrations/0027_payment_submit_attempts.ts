import { type Kysely, sql } from 'kysely';

/**
 * `payments.submit_attempted_at`: when the payment was first handed to the provider (its submit task
 * about to call it), null while it never was. `submitted_at` says only that the provider accepted it
 * (a call that timed out may have gone through all the same), so without this a payment never sent
 * could not be told from one whose call's outcome is unknown. A payment whose account an admin
 * locked before it was ever sent is failed instead (`account_locked`, a withdrawal's reservation
 * back in the wallet: src/domain/payments/payments.ts `submitPayment`); one sent before is left to
 * the provider. The payments still pending now are marked as sent: whether an older process called
 * the provider for them is unknown. Adding a nullable column without a default is instant; the
 * update reads the pending rows through `payments_status_idx`.
 */
// Frozen once merged: change the schema with a new migration, never by editing this one.
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table payments add column if not exists submit_attempted_at timestamptz`.execute(db);
  await sql`update payments set submit_attempted_at = coalesce(submitted_at, created_at)
    where status = 'pending' and submit_attempted_at is null`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`alter table payments drop column if exists submit_attempted_at`.execute(db);
}
