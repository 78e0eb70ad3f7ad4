/**
 * The ledger's rows (migration 0004). Money is JS `bigint` here and a decimal string on the wire to
 * PostgreSQL, so no amount ever passes through a float. The database maintains the cached balances
 * (entry trigger) and pending amounts (hold trigger); these functions never write them.
 */
import { type Kysely, type Selectable, sql, type Transaction } from 'kysely';
import type { UserId } from '../../../protocol/src/ids.js';
import type { Database } from '../database.js';
import type {
  EscrowStatus,
  LedgerAccountKind,
  LedgerAccountsTable,
  LedgerEscrowsTable,
  LedgerHoldStatus,
  LedgerHoldsTable,
  LedgerTransactionKind,
  LedgerTransactionsTable,
} from '../tables/ledger.table.js';

type Db = Kysely<Database> | Transaction<Database>;

export interface AccountRow {
  readonly id: string;
  readonly kind: LedgerAccountKind;
  readonly userId: UserId | null;
  readonly contractId: string | null;
  readonly currency: string;
  readonly posted: bigint;
  readonly pendingDebits: bigint;
  readonly pendingCredits: bigint;
  readonly version: bigint;
  readonly allowNegative: boolean;
}

const toAccount = (row: Selectable<LedgerAccountsTable>): AccountRow => ({
  id: row.id,
  kind: row.kind,
  userId: row.user_id,
  contractId: row.contract_id,
  currency: row.currency,
  posted: BigInt(row.posted),
  pendingDebits: BigInt(row.pending_debits),
  pendingCredits: BigInt(row.pending_credits),
  version: BigInt(row.version),
  allowNegative: row.allow_negative,
});

/** Where an account lives; one row per key (partial unique indexes). */
export type AccountKey =
  | { readonly kind: 'wallet'; readonly userId: UserId; readonly currency: string }
  | { readonly kind: 'escrow'; readonly contractId: string; readonly currency: string }
  | { readonly kind: 'platform_fees' | 'provider_clearing'; readonly currency: string };

const keyColumns = (key: AccountKey) => ({
  kind: key.kind,
  currency: key.currency,
  user_id: key.kind === 'wallet' ? key.userId : null,
  contract_id: key.kind === 'escrow' ? key.contractId : null,
  allow_negative: key.kind === 'provider_clearing',
});

/** One total order of account keys: every insert of several new accounts takes them in it. */
const keyOrder = (key: AccountKey) => {
  const columns = keyColumns(key);
  return `${columns.kind}|${columns.currency}|${columns.user_id ?? ''}|${columns.contract_id ?? ''}`;
};

/**
 * The accounts for these keys, created when missing (wallets are created lazily on first use).
 * Run it outside the operation's transaction where possible: an empty account left by a failed
 * operation is harmless. The rows are inserted in one order whatever the caller's (a transfer
 * names the sender first): two first transfers between the same new wallets in opposite directions
 * each inserted its first row and waited for the other's, and PostgreSQL failed one with a deadlock.
 */
export async function ensureAccounts(db: Db, keys: readonly AccountKey[]): Promise<AccountRow[]> {
  if (keys.length === 0) return [];
  const ordered = [...keys].sort((a, b) =>
    keyOrder(a) < keyOrder(b) ? -1 : keyOrder(a) > keyOrder(b) ? 1 : 0,
  );
  await db
    .insertInto('ledger_accounts')
    .values(ordered.map(keyColumns))
    .onConflict((oc) => oc.doNothing())
    .execute();
  const rows = await db
    .selectFrom('ledger_accounts')
    .selectAll()
    .where((eb) =>
      eb.or(
        keys.map((key) =>
          key.kind === 'wallet'
            ? eb.and([
                eb('kind', '=', 'wallet'),
                eb('user_id', '=', key.userId),
                eb('currency', '=', key.currency),
              ])
            : key.kind === 'escrow'
              ? eb.and([eb('kind', '=', 'escrow'), eb('contract_id', '=', key.contractId)])
              : eb.and([eb('kind', '=', key.kind), eb('currency', '=', key.currency)]),
        ),
      ),
    )
    .execute();
  const accounts = rows.map(toAccount);
  return keys.map((key) => {
    const found = accounts.find((a) =>
      key.kind === 'wallet'
        ? a.kind === 'wallet' && a.userId === key.userId && a.currency === key.currency
        : key.kind === 'escrow'
          ? a.kind === 'escrow' && a.contractId === key.contractId
          : a.kind === key.kind && a.currency === key.currency,
    );
    if (found === undefined) throw new Error(`ledger account ${key.kind} was not created`);
    return found;
  });
}

/** A user's wallet, or undefined when it was never used (callers show 0, never 404). */
export async function findWallet(db: Db, userId: UserId, currency: string): Promise<AccountRow | undefined> {
  const row = await db
    .selectFrom('ledger_accounts')
    .selectAll()
    .where('kind', '=', 'wallet')
    .where('user_id', '=', userId)
    .where('currency', '=', currency)
    .executeTakeFirst();
  return row === undefined ? undefined : toAccount(row);
}

/**
 * Locks the accounts FOR UPDATE in ascending id order (pgledger's rule: every transaction takes its
 * account locks in one global order, so two transfers in opposite directions cannot deadlock) and
 * returns them by id. The LockRows step runs above the sort, so rows are locked in that order.
 */
export async function lockAccounts(
  trx: Transaction<Database>,
  ids: readonly string[],
): Promise<Map<string, AccountRow>> {
  const unique = [...new Set(ids)];
  if (unique.length === 0) return new Map();
  const rows = await trx
    .selectFrom('ledger_accounts')
    .selectAll()
    .where('id', 'in', unique)
    .orderBy('id')
    .forUpdate()
    .execute();
  return new Map(rows.map((row) => [row.id, toAccount(row)]));
}

export interface TransactionRow {
  readonly id: string;
  readonly opKey: string;
  readonly kind: LedgerTransactionKind;
  readonly currency: string;
  readonly externalRef: string | null;
  readonly holdId: string | null;
  readonly contractId: string | null;
  readonly initiatorId: UserId | null;
  readonly memo: string | null;
  readonly createdAt: Date;
  /** The entries, ordered by id. */
  readonly entries: readonly { readonly accountId: string; readonly amount: bigint }[];
}

const toTransaction = (
  row: Selectable<LedgerTransactionsTable>,
  entries: readonly { account_id: string; amount: string }[],
): TransactionRow => ({
  id: row.id,
  opKey: row.op_key,
  kind: row.kind,
  currency: row.currency,
  externalRef: row.external_ref,
  holdId: row.hold_id,
  contractId: row.contract_id,
  initiatorId: row.initiator_id,
  memo: row.memo,
  createdAt: row.created_at,
  entries: entries.map((e) => ({ accountId: e.account_id, amount: BigInt(e.amount) })),
});

async function withEntries(db: Db, row: Selectable<LedgerTransactionsTable> | undefined) {
  if (row === undefined) return undefined;
  const entries = await db
    .selectFrom('ledger_entries')
    .select(['account_id', 'amount'])
    .where('transaction_id', '=', row.id)
    .orderBy('id')
    .execute();
  return toTransaction(row, entries);
}

export async function findTransactionByOpKey(db: Db, opKey: string): Promise<TransactionRow | undefined> {
  return withEntries(
    db,
    await db.selectFrom('ledger_transactions').selectAll().where('op_key', '=', opKey).executeTakeFirst(),
  );
}

export async function findTransactionByExternalRef(
  db: Db,
  externalRef: string,
): Promise<TransactionRow | undefined> {
  return withEntries(
    db,
    await db
      .selectFrom('ledger_transactions')
      .selectAll()
      .where('external_ref', '=', externalRef)
      .executeTakeFirst(),
  );
}

export async function findTransaction(db: Db, id: string): Promise<TransactionRow | undefined> {
  return withEntries(
    db,
    await db.selectFrom('ledger_transactions').selectAll().where('id', '=', id).executeTakeFirst(),
  );
}

export interface NewTransaction {
  readonly opKey: string;
  readonly kind: LedgerTransactionKind;
  readonly currency: string;
  readonly externalRef?: string | null;
  readonly holdId?: string | null;
  readonly contractId?: string | null;
  readonly initiatorId?: UserId | null;
  readonly memo?: string | null;
  /** Signed amounts; must sum to 0 (checked again by the database at commit). */
  readonly entries: readonly { readonly accountId: string; readonly amount: bigint }[];
}

/** Inserts a journal transaction and its entries; the accounts must already be locked by the caller. */
export async function insertTransaction(trx: Transaction<Database>, txn: NewTransaction): Promise<string> {
  const row = await trx
    .insertInto('ledger_transactions')
    .values({
      op_key: txn.opKey,
      kind: txn.kind,
      currency: txn.currency,
      external_ref: txn.externalRef ?? null,
      hold_id: txn.holdId ?? null,
      contract_id: txn.contractId ?? null,
      initiator_id: txn.initiatorId ?? null,
      memo: txn.memo ?? null,
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  await trx
    .insertInto('ledger_entries')
    .values(
      txn.entries.map((e) => ({
        transaction_id: row.id,
        account_id: e.accountId,
        amount: e.amount.toString(),
      })),
    )
    .execute();
  return row.id;
}

export interface HoldRow {
  readonly id: string;
  readonly opKey: string;
  readonly reason: string;
  readonly debitAccountId: string;
  readonly creditAccountId: string;
  readonly amount: bigint;
  readonly currency: string;
  readonly status: LedgerHoldStatus;
  readonly createdAt: Date;
  readonly resolvedAt: Date | null;
}

const toHold = (row: Selectable<LedgerHoldsTable>): HoldRow => ({
  id: row.id,
  opKey: row.op_key,
  reason: row.reason,
  debitAccountId: row.debit_account_id,
  creditAccountId: row.credit_account_id,
  amount: BigInt(row.amount),
  currency: row.currency,
  status: row.status,
  createdAt: row.created_at,
  resolvedAt: row.resolved_at,
});

export async function insertHold(
  trx: Transaction<Database>,
  hold: {
    opKey: string;
    reason: string;
    debitAccountId: string;
    creditAccountId: string;
    amount: bigint;
    currency: string;
  },
): Promise<HoldRow> {
  const row = await trx
    .insertInto('ledger_holds')
    .values({
      op_key: hold.opKey,
      reason: hold.reason,
      debit_account_id: hold.debitAccountId,
      credit_account_id: hold.creditAccountId,
      amount: hold.amount.toString(),
      currency: hold.currency,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
  return toHold(row);
}

export async function findHold(db: Db, by: { id: string } | { opKey: string }): Promise<HoldRow | undefined> {
  let query = db.selectFrom('ledger_holds').selectAll();
  query = 'id' in by ? query.where('id', '=', by.id) : query.where('op_key', '=', by.opKey);
  const row = await query.executeTakeFirst();
  return row === undefined ? undefined : toHold(row);
}

/** Locks the hold row (taken before its accounts, by every hold operation alike). */
export async function lockHold(trx: Transaction<Database>, id: string): Promise<HoldRow | undefined> {
  const row = await trx
    .selectFrom('ledger_holds')
    .selectAll()
    .where('id', '=', id)
    .forUpdate()
    .executeTakeFirst();
  return row === undefined ? undefined : toHold(row);
}

export async function resolveHold(
  trx: Transaction<Database>,
  id: string,
  status: 'posted' | 'voided',
  at: Date,
): Promise<void> {
  await trx
    .updateTable('ledger_holds')
    .set({ status, resolved_at: at })
    .where('id', '=', id)
    .where('status', '=', 'pending')
    .execute();
}

export interface EscrowRow {
  readonly contractId: string;
  readonly accountId: string;
  readonly hirerId: UserId;
  readonly workerId: UserId;
  readonly amount: bigint;
  readonly currency: string;
  readonly status: EscrowStatus;
  readonly holdTransactionId: string;
  readonly resolutionTransactionId: string | null;
  readonly createdAt: Date;
  readonly resolvedAt: Date | null;
}

const toEscrow = (row: Selectable<LedgerEscrowsTable>): EscrowRow => ({
  contractId: row.contract_id,
  accountId: row.account_id,
  hirerId: row.hirer_id,
  workerId: row.worker_id,
  amount: BigInt(row.amount),
  currency: row.currency,
  status: row.status,
  holdTransactionId: row.hold_transaction_id,
  resolutionTransactionId: row.resolution_transaction_id,
  createdAt: row.created_at,
  resolvedAt: row.resolved_at,
});

export async function findEscrow(db: Db, contractId: string): Promise<EscrowRow | undefined> {
  const row = await db
    .selectFrom('ledger_escrows')
    .selectAll()
    .where('contract_id', '=', contractId)
    .executeTakeFirst();
  return row === undefined ? undefined : toEscrow(row);
}

/** Locks the escrow row (taken before its accounts, by every escrow operation alike). */
export async function lockEscrow(
  trx: Transaction<Database>,
  contractId: string,
): Promise<EscrowRow | undefined> {
  const row = await trx
    .selectFrom('ledger_escrows')
    .selectAll()
    .where('contract_id', '=', contractId)
    .forUpdate()
    .executeTakeFirst();
  return row === undefined ? undefined : toEscrow(row);
}

export async function insertEscrow(
  trx: Transaction<Database>,
  escrow: {
    contractId: string;
    accountId: string;
    hirerId: UserId;
    workerId: UserId;
    amount: bigint;
    currency: string;
    holdTransactionId: string;
  },
): Promise<void> {
  await trx
    .insertInto('ledger_escrows')
    .values({
      contract_id: escrow.contractId,
      account_id: escrow.accountId,
      hirer_id: escrow.hirerId,
      worker_id: escrow.workerId,
      amount: escrow.amount.toString(),
      currency: escrow.currency,
      hold_transaction_id: escrow.holdTransactionId,
    })
    .execute();
}

export async function resolveEscrow(
  trx: Transaction<Database>,
  contractId: string,
  resolution: { status: Exclude<EscrowStatus, 'held'>; transactionId: string; at: Date },
): Promise<void> {
  await trx
    .updateTable('ledger_escrows')
    .set({
      status: resolution.status,
      resolution_transaction_id: resolution.transactionId,
      resolved_at: resolution.at,
    })
    .where('contract_id', '=', contractId)
    .where('status', '=', 'held')
    .execute();
}

/** The escrow move each ended contract state decided (the transition table's `escrow` effect). */
const MOVE_OF_ENDED_STATE = { completed: 'release', cancelled: 'refund', resolved: 'split' } as const;

/**
 * Escrows still `held` although their contract ended (completed, cancelled or resolved) before
 * `endedBefore`: their `payments.escrow` task has not moved the money — it gave up (a database
 * outage longer than its retries) or is still retrying. Oldest ended first, each with the move its
 * contract's state decided. The held escrows are read through their partial index
 * (`ledger_escrows_held_idx`, migration 0021), each joined to its contract by primary key.
 */
export async function unsettledEscrows(
  db: Db,
  endedBefore: Date,
  limit: number,
  /** Contracts left out (queued again recently), so they cannot crowd out the others. */
  exceptContractIds: readonly string[] = [],
): Promise<{ contractId: string; action: 'release' | 'refund' | 'split' }[]> {
  const { rows } = await sql<{ contract_id: string; state: keyof typeof MOVE_OF_ENDED_STATE }>`
    select e.contract_id, c.state
    from ledger_escrows e join contracts c on c.id = e.contract_id
    where e.status = 'held' and c.state in ('completed', 'cancelled', 'resolved')
      and c.updated_at < ${endedBefore}
      and not (e.contract_id = any(${[...exceptContractIds]}::uuid[]))
    order by c.updated_at, e.contract_id
    limit ${limit}`.execute(db);
  return rows.map((row) => ({ contractId: row.contract_id, action: MOVE_OF_ENDED_STATE[row.state] }));
}

/**
 * `reason`s of the pending holds that park money from outside (provider clearing) its wallet had no
 * room for (balance limit): a returned payout, a charged top-up.
 */
export const PARKED_CREDIT_REASON = { payoutReturn: 'payout_return', topUp: 'top_up_parked' } as const;

/**
 * Credits parked until their wallet has room (pending holds of a `PARKED_CREDIT_REASON`), oldest
 * first, with their operation keys. Read through their partial index (migration 0021), whose
 * predicate the literals below match.
 */
export async function parkedCreditHolds(
  db: Db,
  limit: number,
  /** Holds left out (tried recently), so they cannot crowd out the others. */
  exceptIds: readonly string[] = [],
): Promise<{ id: string; opKey: string }[]> {
  const { rows } = await sql<{ id: string; op_key: string }>`
    select id::text as id, op_key from ledger_holds
    where status = 'pending' and reason in ('payout_return', 'top_up_parked')
      and not (id = any(${[...exceptIds]}::bigint[]))
    order by id
    limit ${limit}`.execute(db);
  return rows.map((row) => ({ id: row.id, opKey: row.op_key }));
}

/**
 * `reason` of the pending holds that park a charged top-up received in another currency than the
 * wallet's (CURRENCY): from provider clearing to the user's wallet of that currency, never posted by
 * the reconciler (that would credit a currency the user's wallet is not in); an operator refunds it
 * at the provider and voids the hold.
 */
export const CURRENCY_PARKED_REASON = 'top_up_currency_parked';

/**
 * `reason` of the pending holds that park a charged top-up the provider reports for another amount
 * than the payment's (in its currency): what the provider says it took, from provider clearing to the
 * user's wallet, never posted by the reconciler (nobody asked for that amount); an operator refunds
 * it at the provider and voids the hold.
 */
export const AMOUNT_PARKED_REASON = 'top_up_amount_parked';

/** The reasons of the holds only an operator settles (refunded at the provider, then voided). */
export const OPERATOR_PARKED_REASONS = [CURRENCY_PARKED_REASON, AMOUNT_PARKED_REASON] as const;

/**
 * Top-ups parked for an operator (pending holds of an `OPERATOR_PARKED_REASONS` reason: another
 * currency or another amount than the payment's), oldest first, with what an operator needs. Read
 * through `ledger_holds_pending_idx` (the pending holds only).
 */
export async function currencyParkedHolds(
  db: Db,
  limit: number,
  /** Holds left out (reported recently). */
  exceptIds: readonly string[] = [],
): Promise<{ id: string; opKey: string; reason: string; amount: bigint; currency: string }[]> {
  const { rows } = await sql<{
    id: string;
    op_key: string;
    reason: string;
    amount: string;
    currency: string;
  }>`
    select id::text as id, op_key, reason, amount::text as amount, currency from ledger_holds
    where status = 'pending' and reason in (${sql.join(OPERATOR_PARKED_REASONS.map((r) => sql.lit(r)))})
      and not (id = any(${[...exceptIds]}::bigint[]))
    order by id
    limit ${limit}`.execute(db);
  return rows.map((row) => ({
    id: row.id,
    opKey: row.op_key,
    reason: row.reason,
    amount: BigInt(row.amount),
    currency: row.currency,
  }));
}

/**
 * What of an account's pending credits is parked for an operator (`OPERATOR_PARKED_REASONS`): money
 * the user will not get (it is refunded to the card), so not shown as theirs-to-come (`parked`).
 */
export async function operatorParkedCredits(db: Db, accountId: string): Promise<bigint> {
  const { rows } = await sql<{ total: string }>`
    select coalesce(sum(amount), 0)::text as total from ledger_holds
    where status = 'pending' and credit_account_id = ${accountId}
      and reason in (${sql.join(OPERATOR_PARKED_REASONS.map((r) => sql.lit(r)))})`.execute(db);
  return BigInt(rows[0]?.total ?? '0');
}

/**
 * Escrow shares parked until their wallet has room (pending holds of reason `escrow_payout_parked`,
 * from a resolved escrow's account to a party's wallet), oldest first, with their operation keys.
 * Read through `ledger_holds_pending_idx` (migration 0004: the pending holds only — withdrawals in
 * flight and parked money), so a pass never reads the holds of the past.
 */
export async function parkedEscrowShareHolds(
  db: Db,
  limit: number,
  /** Holds left out (tried recently), so they cannot crowd out the others. */
  exceptIds: readonly string[] = [],
): Promise<{ id: string; opKey: string }[]> {
  const { rows } = await sql<{ id: string; op_key: string }>`
    select id::text as id, op_key from ledger_holds
    where status = 'pending' and reason = 'escrow_payout_parked'
      and not (id = any(${[...exceptIds]}::bigint[]))
    order by id
    limit ${limit}`.execute(db);
  return rows.map((row) => ({ id: row.id, opKey: row.op_key }));
}

export interface WalletHistoryRow {
  readonly entryId: string;
  readonly transactionId: string;
  readonly kind: LedgerTransactionKind;
  /** Signed amount on this wallet (negative = money left it). */
  readonly amount: bigint;
  readonly balanceAfter: bigint;
  /** The other user: the other wallet of a transfer, the other party of an escrow; null for the provider. */
  readonly counterpartyId: UserId | null;
  readonly contractId: string | null;
  readonly memo: string | null;
  readonly createdAt: Date;
}

/**
 * A page of a wallet's entries, newest first, keyset-paged by entry id (ids grow with time within an
 * account, and the (account_id, id desc) index serves the order), `limit + 1` rows so the caller
 * knows whether there is more.
 */
export async function walletHistory(
  db: Db,
  accountId: string,
  page: { readonly beforeEntryId: string | undefined; readonly limit: number },
): Promise<WalletHistoryRow[]> {
  const before = page.beforeEntryId === undefined ? sql`` : sql`and e.id < ${page.beforeEntryId}::bigint`;
  const { rows } = await sql<{
    entry_id: string;
    transaction_id: string;
    kind: LedgerTransactionKind;
    amount: string;
    balance_after: string;
    counterparty_id: UserId | null;
    contract_id: string | null;
    memo: string | null;
    created_at: Date;
  }>`
    select e.id as entry_id, t.id as transaction_id, t.kind, e.amount::text, e.balance_after::text,
           t.contract_id, t.memo, t.created_at,
           case when t.contract_id is not null then
                  (select case when es.hirer_id = a.user_id then es.worker_id else es.hirer_id end
                   from ledger_escrows es where es.contract_id = t.contract_id)
                else
                  (select a2.user_id from ledger_entries e2 join ledger_accounts a2 on a2.id = e2.account_id
                   where e2.transaction_id = e.transaction_id and e2.account_id <> e.account_id
                     and a2.kind = 'wallet' order by e2.id limit 1)
           end as counterparty_id
    from ledger_entries e
    join ledger_transactions t on t.id = e.transaction_id
    join ledger_accounts a on a.id = e.account_id
    where e.account_id = ${accountId}::bigint ${before}
    order by e.id desc
    limit ${page.limit + 1}`.execute(db);
  return rows.map((row) => ({
    entryId: row.entry_id,
    transactionId: row.transaction_id,
    kind: row.kind,
    amount: BigInt(row.amount),
    balanceAfter: BigInt(row.balance_after),
    counterpartyId: row.counterparty_id,
    contractId: row.contract_id,
    memo: row.memo,
    createdAt: row.created_at,
  }));
}

/** Raw rows for the auditor: each query returns only violations, so a healthy ledger returns none. */
export const auditQueries = {
  /** I1: transactions whose entries do not sum to 0, or that have fewer than two entries. */
  unbalancedTransactions: (db: Db) =>
    sql<{ id: string; entries: string; total: string }>`
      select t.id, count(e.id)::text as entries, coalesce(sum(e.amount), 0)::text as total
      from ledger_transactions t left join ledger_entries e on e.transaction_id = t.id
      group by t.id having coalesce(sum(e.amount), 0) <> 0 or count(e.id) < 2`.execute(db),
  /** I2: the sum of all postings. */
  globalTotal: (db: Db) =>
    sql<{ total: string }>`select coalesce(sum(amount), 0)::text as total from ledger_entries`.execute(db),
  /** I5: cached balance or version that differ from the entries; last entry's recorded balance too. */
  staleAccounts: (db: Db) =>
    sql<{
      id: string;
      posted: string;
      sum: string;
      version: string;
      count: string;
      last_balance: string | null;
    }>`
      select a.id, a.posted::text, coalesce(s.sum, 0)::text as sum, a.version::text,
             coalesce(s.count, 0)::text as count, l.balance_after::text as last_balance
      from ledger_accounts a
      left join (select account_id, sum(amount) as sum, count(*) as count, max(account_version) as max_version
                 from ledger_entries group by account_id) s on s.account_id = a.id
      left join ledger_entries l on l.account_id = a.id and l.account_version = a.version
      where a.posted <> coalesce(s.sum, 0) or a.version <> coalesce(s.count, 0)
         or coalesce(s.max_version, 0) <> a.version or (a.version > 0 and l.balance_after is distinct from a.posted)`.execute(
      db,
    ),
  /** Cached pending amounts that differ from the pending holds. */
  stalePending: (db: Db) =>
    sql<{
      id: string;
      pending_debits: string;
      held_debits: string;
      pending_credits: string;
      held_credits: string;
    }>`
      select a.id, a.pending_debits::text, coalesce(d.sum, 0)::text as held_debits,
             a.pending_credits::text, coalesce(c.sum, 0)::text as held_credits
      from ledger_accounts a
      left join (select debit_account_id as id, sum(amount) as sum from ledger_holds where status = 'pending'
                 group by debit_account_id) d on d.id = a.id
      left join (select credit_account_id as id, sum(amount) as sum from ledger_holds where status = 'pending'
                 group by credit_account_id) c on c.id = a.id
      where a.pending_debits <> coalesce(d.sum, 0) or a.pending_credits <> coalesce(c.sum, 0)`.execute(db),
  /**
   * I3: accounts other than provider clearing with posted − pending debits below 0, or allowed to go
   * below 0 at all. By kind, not by the row's `allow_negative` flag: a wallet whose flag was set
   * passes the funds check (and the database CHECK), so trusting the flag hid the overdraft it allows.
   */
  negativeAvailable: (db: Db) =>
    sql<{ id: string; kind: string; available: string; allow_negative: string }>`
      select id, kind, (posted - pending_debits)::text as available, allow_negative::text as allow_negative
      from ledger_accounts
      where kind <> 'provider_clearing' and (allow_negative or posted - pending_debits < 0)`.execute(db),
  /** I6: holds whose status and posting transactions disagree (posted once ⇔ status posted). */
  inconsistentHolds: (db: Db) =>
    sql<{ id: string; status: string; postings: string; problem: string }>`
      select h.id, h.status, count(t.id)::text as postings,
             case when h.status = 'posted' and count(t.id) <> 1 then 'posted hold without exactly one posting'
                  when h.status <> 'posted' and count(t.id) > 0 then 'unposted hold with a posting'
                  else 'posting does not move the held amount between the hold''s accounts' end as problem
      from ledger_holds h left join ledger_transactions t on t.hold_id = h.id
      group by h.id
      having (h.status = 'posted' and count(t.id) <> 1) or (h.status <> 'posted' and count(t.id) > 0)
          or (h.status = 'posted' and not exists (
                select 1 from ledger_entries e, ledger_transactions tt
                where tt.hold_id = h.id and e.transaction_id = tt.id and e.account_id = h.debit_account_id
                  and e.amount = -h.amount)
              )`.execute(db),
  /**
   * I7: escrow accounts whose balance does not match their state: the amount while held (nothing
   * reserved); once resolved, exactly the shares still parked for a party's wallet (reserved by their
   * pending holds, so 0 once credited). Nothing is ever reserved for an escrow account.
   */
  inconsistentEscrows: (db: Db) =>
    sql<{ contract_id: string; status: string; amount: string; balance: string; pending: string }>`
      select e.contract_id, e.status, e.amount::text, a.posted::text as balance,
             (a.pending_debits + a.pending_credits)::text as pending
      from ledger_escrows e join ledger_accounts a on a.id = e.account_id
      where (e.status = 'held' and (a.posted <> e.amount or a.pending_debits <> 0))
         or (e.status <> 'held' and a.posted <> a.pending_debits)
         or a.pending_credits <> 0
         or exists (select 1 from ledger_holds h where h.debit_account_id = a.id and h.status = 'pending'
                    and h.reason <> 'escrow_payout_parked')`.execute(db),
  /** I7: escrow accounts with money but no escrow record (money stranded outside the lifecycle). */
  orphanEscrowAccounts: (db: Db) =>
    sql<{ id: string; contract_id: string; balance: string }>`
      select a.id, a.contract_id, a.posted::text as balance from ledger_accounts a
      where a.kind = 'escrow' and a.posted <> 0
        and not exists (select 1 from ledger_escrows e where e.account_id = a.id)`.execute(db),
  /** I8: an outside event recorded by more than one transaction (the unique index forbids it). */
  duplicateExternalRefs: (db: Db) =>
    sql<{ external_ref: string; count: string }>`
      select external_ref, count(*)::text as count from ledger_transactions
      where external_ref is not null group by external_ref having count(*) > 1`.execute(db),
  /** I9: entries whose account currency differs from their transaction's. */
  currencyMismatches: (db: Db) =>
    sql<{ entry_id: string; transaction_currency: string; account_currency: string }>`
      select e.id as entry_id, t.currency as transaction_currency, a.currency as account_currency
      from ledger_entries e join ledger_transactions t on t.id = e.transaction_id
      join ledger_accounts a on a.id = e.account_id where t.currency <> a.currency`.execute(db),
  /** I4: the triggers that make the journal append-only and balanced, missing or disabled. */
  guardTriggers: (db: Db) =>
    sql<{ name: string; enabled: string }>`
      select tgname as name, tgenabled::text as enabled from pg_trigger
      where tgname in ('ledger_transactions_append_only', 'ledger_transactions_no_truncate',
                       'ledger_entries_append_only', 'ledger_entries_no_truncate', 'ledger_entries_apply',
                       'ledger_entries_balanced', 'ledger_transactions_balanced', 'ledger_holds_guard',
                       'ledger_holds_pending', 'ledger_escrows_guard')`.execute(db),
  /** Totals by account kind (conservation: they sum to 0; −provider clearing = money in − money out). */
  totalsByKind: (db: Db) =>
    sql<{ kind: LedgerAccountKind; currency: string; posted: string }>`
      select kind, currency, sum(posted)::text as posted from ledger_accounts group by kind, currency`.execute(
      db,
    ),
};

/** Names of the guard triggers the auditor expects (all enabled). */
export const LEDGER_GUARD_TRIGGERS = [
  'ledger_transactions_append_only',
  'ledger_transactions_no_truncate',
  'ledger_entries_append_only',
  'ledger_entries_no_truncate',
  'ledger_entries_apply',
  'ledger_entries_balanced',
  'ledger_transactions_balanced',
  'ledger_holds_guard',
  'ledger_holds_pending',
  'ledger_escrows_guard',
] as const;
