import { type Kysely, sql } from 'kysely';

/**
 * The double-entry ledger (issue 11). The database itself enforces what must never break, so a bug
 * in the code above it cannot corrupt money:
 * - every journal transaction sums to 0 and has at least two entries (deferred constraint triggers:
 *   checked at COMMIT, after all of a transaction's entries are in);
 * - journal transactions and entries are append-only (UPDATE, DELETE and TRUNCATE refused);
 *   corrections are new, reversing transactions;
 * - an account's cached `posted` balance and `version` are maintained by the entry trigger, in the
 *   same transaction as the entry, and each entry records the balance and version it produced;
 * - pending holds maintain the accounts' `pending_debits` / `pending_credits`, and a hold leaves
 *   `pending` at most once (to `posted` or `voided`); an escrow leaves `held` at most once;
 * - an account that may not go negative never has posted − pending debits below 0 (CHECK).
 * Amounts are integer minor units in `bigint`; one currency per account and per transaction.
 *
 * Statements run one by one: PGlite's query path takes a single statement per call.
 */
const statements: readonly string[] = [
  `create table ledger_accounts (
     id bigint generated always as identity primary key,
     kind text not null check (kind in ('wallet', 'escrow', 'platform_fees', 'provider_clearing')),
     user_id uuid references users (id),
     contract_id uuid,
     currency text not null check (currency ~ '^[A-Z]{3}$'),
     posted bigint not null default 0,
     pending_debits bigint not null default 0 check (pending_debits >= 0),
     pending_credits bigint not null default 0 check (pending_credits >= 0),
     version bigint not null default 0,
     -- Only provider clearing (the outside world) may go negative: its balance is −(money in − money out).
     allow_negative boolean not null default false,
     created_at timestamptz not null default now(),
     constraint ledger_accounts_wallet_owner check ((kind = 'wallet') = (user_id is not null)),
     constraint ledger_accounts_escrow_contract check ((kind = 'escrow') = (contract_id is not null)),
     constraint ledger_accounts_available check (allow_negative or posted - pending_debits >= 0)
   )`,
  `create unique index ledger_accounts_wallet_key on ledger_accounts (user_id, currency) where kind = 'wallet'`,
  `create unique index ledger_accounts_escrow_key on ledger_accounts (contract_id) where kind = 'escrow'`,
  `create unique index ledger_accounts_system_key on ledger_accounts (kind, currency)
     where kind in ('platform_fees', 'provider_clearing')`,

  `create table ledger_holds (
     id bigint generated always as identity primary key,
     op_key text not null unique,
     reason text not null,
     debit_account_id bigint not null references ledger_accounts (id),
     credit_account_id bigint not null references ledger_accounts (id),
     amount bigint not null check (amount > 0),
     currency text not null,
     status text not null default 'pending' check (status in ('pending', 'posted', 'voided')),
     created_at timestamptz not null default now(),
     resolved_at timestamptz,
     check (debit_account_id <> credit_account_id),
     check ((status = 'pending') = (resolved_at is null))
   )`,
  `create index ledger_holds_pending_idx on ledger_holds (debit_account_id) where status = 'pending'`,

  `create table ledger_transactions (
     id bigint generated always as identity primary key,
     -- The operation's idempotency key: a retried operation finds its transaction instead of repeating it.
     op_key text not null unique,
     kind text not null check (kind in ('top_up', 'withdrawal', 'withdrawal_reversal', 'transfer',
       'escrow_hold', 'escrow_release', 'escrow_refund', 'escrow_split', 'hold_post', 'reversal')),
     currency text not null check (currency ~ '^[A-Z]{3}$'),
     -- One outside event (a provider's event id) causes at most one transaction.
     external_ref text unique,
     -- The hold this transaction posted: a hold is posted at most once.
     hold_id bigint unique references ledger_holds (id),
     contract_id uuid,
     initiator_id uuid,
     memo text,
     created_at timestamptz not null default now()
   )`,
  `create index ledger_transactions_contract_idx on ledger_transactions (contract_id) where contract_id is not null`,

  `create table ledger_entries (
     id bigint generated always as identity primary key,
     transaction_id bigint not null references ledger_transactions (id),
     account_id bigint not null references ledger_accounts (id),
     -- Signed: positive raises the account's balance, negative lowers it.
     amount bigint not null check (amount <> 0),
     -- Set by the insert trigger from the account row: the version and balance this entry produced.
     account_version bigint not null,
     balance_after bigint not null,
     created_at timestamptz not null default now(),
     unique (account_id, account_version)
   )`,
  `create index ledger_entries_transaction_idx on ledger_entries (transaction_id)`,
  `create index ledger_entries_account_idx on ledger_entries (account_id, id desc)`,

  `create table ledger_escrows (
     contract_id uuid primary key,
     account_id bigint not null unique references ledger_accounts (id),
     hirer_id uuid not null references users (id),
     worker_id uuid not null references users (id),
     amount bigint not null check (amount > 0),
     currency text not null,
     status text not null default 'held' check (status in ('held', 'released', 'refunded', 'split')),
     hold_transaction_id bigint not null unique references ledger_transactions (id),
     resolution_transaction_id bigint unique references ledger_transactions (id),
     created_at timestamptz not null default now(),
     resolved_at timestamptz,
     check ((status = 'held') = (resolution_transaction_id is null)),
     check ((status = 'held') = (resolved_at is null))
   )`,

  `create table idempotency_keys (
     user_id uuid not null references users (id) on delete cascade,
     key text not null check (length(key) between 1 and 255),
     -- Method and route template: the same key on another endpoint is a different body (422).
     scope text not null,
     request_hash text not null,
     -- Null while the first request is in flight (a retry then answers 409).
     response_status integer,
     response_body jsonb,
     created_at timestamptz not null default now(),
     completed_at timestamptz,
     primary key (user_id, key),
     check ((response_status is null) = (completed_at is null))
   )`,
  `create index idempotency_keys_created_idx on idempotency_keys (created_at)`,

  // Append-only journal.
  `create function ledger_refuse_change() returns trigger language plpgsql as $$
   begin
     raise exception '% is append-only: % refused (post a reversing transaction instead)', TG_TABLE_NAME, TG_OP
       using errcode = 'restrict_violation';
   end $$`,
  `create trigger ledger_transactions_append_only before update or delete on ledger_transactions
     for each row execute function ledger_refuse_change()`,
  `create trigger ledger_transactions_no_truncate before truncate on ledger_transactions
     for each statement execute function ledger_refuse_change()`,
  `create trigger ledger_entries_append_only before update or delete on ledger_entries
     for each row execute function ledger_refuse_change()`,
  `create trigger ledger_entries_no_truncate before truncate on ledger_entries
     for each statement execute function ledger_refuse_change()`,

  // Each entry moves its account's cached balance and version in the same transaction, and records both.
  `create function ledger_apply_entry() returns trigger language plpgsql as $$
   declare
     txn_currency text;
     acct_currency text;
   begin
     select currency into txn_currency from ledger_transactions where id = NEW.transaction_id;
     update ledger_accounts set posted = posted + NEW.amount, version = version + 1
       where id = NEW.account_id
       returning posted, version, currency into NEW.balance_after, NEW.account_version, acct_currency;
     if acct_currency is null then
       raise exception 'ledger entry for unknown account %', NEW.account_id using errcode = 'foreign_key_violation';
     end if;
     if acct_currency <> txn_currency then
       raise exception 'ledger entry in % on a % account', txn_currency, acct_currency
         using errcode = 'check_violation';
     end if;
     return NEW;
   end $$`,
  `create trigger ledger_entries_apply before insert on ledger_entries
     for each row execute function ledger_apply_entry()`,

  // Balanced transactions, checked at COMMIT so the entries of one transaction may arrive in any order.
  `create function ledger_check_balanced(txn bigint) returns void language plpgsql as $$
   declare
     total numeric;
     n bigint;
   begin
     select coalesce(sum(amount), 0), count(*) into total, n from ledger_entries where transaction_id = txn;
     if total <> 0 or n < 2 then
       raise exception 'ledger transaction % is unbalanced (% entries summing to %)', txn, n, total
         using errcode = 'check_violation';
     end if;
   end $$`,
  `create function ledger_entry_balanced() returns trigger language plpgsql as $$
   begin perform ledger_check_balanced(NEW.transaction_id); return null; end $$`,
  `create function ledger_transaction_balanced() returns trigger language plpgsql as $$
   begin perform ledger_check_balanced(NEW.id); return null; end $$`,
  `create constraint trigger ledger_entries_balanced after insert on ledger_entries
     deferrable initially deferred for each row execute function ledger_entry_balanced()`,
  `create constraint trigger ledger_transactions_balanced after insert on ledger_transactions
     deferrable initially deferred for each row execute function ledger_transaction_balanced()`,

  // Holds: pending amounts follow the hold; a hold is resolved at most once and nothing else changes.
  `create function ledger_hold_guard() returns trigger language plpgsql as $$
   begin
     if TG_OP = 'DELETE' then
       raise exception 'ledger_holds rows are never deleted' using errcode = 'restrict_violation';
     end if;
     if TG_OP = 'INSERT' then
       if NEW.status <> 'pending' then
         raise exception 'a hold starts pending' using errcode = 'check_violation';
       end if;
       return NEW;
     end if;
     if OLD.status <> 'pending' then
       raise exception 'hold % is already %', OLD.id, OLD.status using errcode = 'restrict_violation';
     end if;
     if NEW.status = 'pending' or NEW.id <> OLD.id or NEW.op_key <> OLD.op_key or NEW.amount <> OLD.amount
        or NEW.debit_account_id <> OLD.debit_account_id or NEW.credit_account_id <> OLD.credit_account_id
        or NEW.currency <> OLD.currency or NEW.reason <> OLD.reason or NEW.created_at <> OLD.created_at then
       raise exception 'hold % may only move from pending to posted or voided', OLD.id
         using errcode = 'restrict_violation';
     end if;
     return NEW;
   end $$`,
  `create trigger ledger_holds_guard before insert or update or delete on ledger_holds
     for each row execute function ledger_hold_guard()`,
  `create function ledger_hold_pending() returns trigger language plpgsql as $$
   declare
     delta bigint := case when TG_OP = 'INSERT' then NEW.amount else -NEW.amount end;
   begin
     update ledger_accounts set pending_debits = pending_debits + delta where id = NEW.debit_account_id;
     update ledger_accounts set pending_credits = pending_credits + delta where id = NEW.credit_account_id;
     return null;
   end $$`,
  `create trigger ledger_holds_pending after insert or update on ledger_holds
     for each row execute function ledger_hold_pending()`,

  // Escrows: held → released | refunded | split, once; the row is never deleted.
  `create function ledger_escrow_guard() returns trigger language plpgsql as $$
   begin
     if TG_OP = 'DELETE' then
       raise exception 'ledger_escrows rows are never deleted' using errcode = 'restrict_violation';
     end if;
     if OLD.status <> 'held' then
       raise exception 'escrow of contract % is already %', OLD.contract_id, OLD.status
         using errcode = 'restrict_violation';
     end if;
     if NEW.status = 'held' or NEW.contract_id <> OLD.contract_id or NEW.account_id <> OLD.account_id
        or NEW.hirer_id <> OLD.hirer_id or NEW.worker_id <> OLD.worker_id or NEW.amount <> OLD.amount
        or NEW.currency <> OLD.currency or NEW.hold_transaction_id <> OLD.hold_transaction_id
        or NEW.created_at <> OLD.created_at then
       raise exception 'escrow of contract % may only be resolved', OLD.contract_id
         using errcode = 'restrict_violation';
     end if;
     return NEW;
   end $$`,
  `create trigger ledger_escrows_guard before update or delete on ledger_escrows
     for each row execute function ledger_escrow_guard()`,
];

// Frozen once merged: change the schema with a new migration, never by editing this one.
export async function up(db: Kysely<unknown>): Promise<void> {
  for (const statement of statements) await sql.raw(statement).execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of [
    'idempotency_keys',
    'ledger_escrows',
    'ledger_entries',
    'ledger_transactions',
    'ledger_holds',
    'ledger_accounts',
  ]) {
    await db.schema.dropTable(table).execute();
  }
  for (const fn of [
    'ledger_escrow_guard()',
    'ledger_hold_pending()',
    'ledger_hold_guard()',
    'ledger_transaction_balanced()',
    'ledger_entry_balanced()',
    'ledger_check_balanced(bigint)',
    'ledger_apply_entry()',
    'ledger_refuse_change()',
  ]) {
    await sql.raw(`drop function ${fn}`).execute(db);
  }
}
