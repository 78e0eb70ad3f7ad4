import { type Kysely, sql } from 'kysely';

/**
 * Payments through the provider (issue 11): a top-up (money in) or a withdrawal (money out) per row,
 * and every provider webhook event received, by its id, so each is applied at most once.
 * The money itself moves only in the ledger (0004); a payment row points at its hold (withdrawal),
 * its settling transaction and, for a payout that failed after it was paid, the reversal.
 */
const statements: readonly string[] = [
  `create table payments (
     id uuid primary key default gen_random_uuid(),
     user_id uuid not null references users (id),
     kind text not null check (kind in ('top_up', 'withdrawal')),
     status text not null default 'pending' check (status in ('pending', 'succeeded', 'failed')),
     amount bigint not null check (amount > 0),
     currency text not null check (currency ~ '^[A-Z]{3}$'),
     -- What the provider charges or pays: a card token (the sandbox's test card numbers) or a bank
     -- account identifier. Never a real card number: real providers hand out tokens for those.
     instrument text not null,
     -- Set once the provider accepted the call (its id for the charge or payout).
     provider_ref text unique,
     submitted_at timestamptz,
     failure_code text,
     hold_id bigint unique references ledger_holds (id),
     transaction_id bigint unique references ledger_transactions (id),
     reversal_transaction_id bigint unique references ledger_transactions (id),
     created_at timestamptz not null default now(),
     settled_at timestamptz,
     check ((kind = 'withdrawal') = (hold_id is not null)),
     check ((status = 'failed') = (failure_code is not null)),
     check ((status = 'pending') = (settled_at is null))
   )`,
  `create index payments_user_idx on payments (user_id, created_at desc, id desc)`,
  `create index payments_status_idx on payments (status, created_at desc, id desc)`,
  `create table provider_events (
     -- The webhook-id: a redelivered event finds its row and changes nothing.
     id text primary key,
     type text not null,
     payment_id uuid references payments (id),
     -- What applying it did: applied, or ignored with the reason (duplicate outcome, late failure, …).
     outcome text not null,
     received_at timestamptz not null default now()
   )`,
];

// Frozen once merged: change the schema with a new migration, never by editing this one.
export async function up(db: Kysely<unknown>): Promise<void> {
  for (const statement of statements) await sql.raw(statement).execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('provider_events').execute();
  await db.schema.dropTable('payments').execute();
}
