/** Payments through the provider and the provider's webhook events (migration 0005). */
import { type Kysely, type Selectable, sql, type Transaction } from 'kysely';
import type { UserId } from '../../../protocol/src/ids.js';
import type { Database } from '../database.js';
import type { PaymentKind, PaymentStatus, PaymentsTable } from '../tables/ledger.table.js';

type Db = Kysely<Database> | Transaction<Database>;

export interface PaymentRow {
  readonly id: string;
  readonly userId: UserId;
  readonly kind: PaymentKind;
  readonly status: PaymentStatus;
  readonly amount: bigint;
  readonly currency: string;
  readonly instrument: string;
  readonly providerRef: string | null;
  readonly submittedAt: Date | null;
  /** When it was first handed to the provider (its call may have gone through); null: never sent. */
  readonly submitAttemptedAt: Date | null;
  readonly failureCode: string | null;
  readonly holdId: string | null;
  readonly transactionId: string | null;
  readonly reversalTransactionId: string | null;
  readonly createdAt: Date;
  readonly settledAt: Date | null;
}

const toPayment = (row: Selectable<PaymentsTable>): PaymentRow => ({
  id: row.id,
  userId: row.user_id,
  kind: row.kind,
  status: row.status,
  amount: BigInt(row.amount),
  currency: row.currency,
  instrument: row.instrument,
  providerRef: row.provider_ref,
  submittedAt: row.submitted_at,
  submitAttemptedAt: row.submit_attempted_at,
  failureCode: row.failure_code,
  holdId: row.hold_id,
  transactionId: row.transaction_id,
  reversalTransactionId: row.reversal_transaction_id,
  createdAt: row.created_at,
  settledAt: row.settled_at,
});

export async function insertPayment(
  trx: Transaction<Database>,
  payment: {
    /** Chosen by the caller when something must reference it before the insert; generated otherwise. */
    id?: string;
    userId: UserId;
    kind: PaymentKind;
    amount: bigint;
    currency: string;
    instrument: string;
    holdId: string | null;
  },
): Promise<PaymentRow> {
  const row = await trx
    .insertInto('payments')
    .values({
      ...(payment.id === undefined ? {} : { id: payment.id }),
      user_id: payment.userId,
      kind: payment.kind,
      amount: payment.amount.toString(),
      currency: payment.currency,
      instrument: payment.instrument,
      hold_id: payment.holdId,
      provider_ref: null,
      submitted_at: null,
      failure_code: null,
      transaction_id: null,
      reversal_transaction_id: null,
      settled_at: null,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
  return toPayment(row);
}

export async function findPayment(db: Db, id: string): Promise<PaymentRow | undefined> {
  const row = await db.selectFrom('payments').selectAll().where('id', '=', id).executeTakeFirst();
  return row === undefined ? undefined : toPayment(row);
}

/**
 * The sum of the user's top-ups in this currency still `pending` (requested, not yet credited nor
 * failed): what may still be credited to the wallet. Read through `payments_user_idx` (a user's own
 * payments).
 */
export async function pendingTopUpTotal(db: Db, userId: UserId, currency: string): Promise<bigint> {
  const row = await db
    .selectFrom('payments')
    .select(sql<string>`coalesce(sum(amount), 0)::text`.as('total'))
    .where('user_id', '=', userId)
    .where('currency', '=', currency)
    .where('kind', '=', 'top_up')
    .where('status', '=', 'pending')
    .executeTakeFirstOrThrow();
  return BigInt(row.total);
}

/**
 * The sum of every user's top-ups in this currency still `pending`: money that may still come in
 * from outside. Read through `payments_status_idx` (the pending rows only).
 */
export async function allPendingTopUpTotal(db: Db, currency: string): Promise<bigint> {
  const row = await db
    .selectFrom('payments')
    .select(sql<string>`coalesce(sum(amount), 0)::text`.as('total'))
    .where('status', '=', 'pending')
    .where('kind', '=', 'top_up')
    .where('currency', '=', currency)
    .executeTakeFirstOrThrow();
  return BigInt(row.total);
}

/**
 * Pending payments, oldest first, that waited since before `before` (the pending rows of
 * `payments_status_idx`):
 * - `submitted`: the provider accepted them (by `submitted_at`) and their outcome never arrived —
 *   webhooks given up by the provider, or held in a sandbox that restarted;
 * - `unsubmitted`: the provider never accepted them (by `created_at`) — their `payments.submit`
 *   task has not succeeded yet, or gave up while the database was down, so its exhausted handler
 *   could not settle them either.
 */
async function pendingPayments(
  db: Db,
  which: 'submitted' | 'unsubmitted',
  before: Date,
  limit: number,
  /** Payments left out (handled recently), so they cannot crowd out the others. */
  exceptIds: readonly string[],
): Promise<PaymentRow[]> {
  const since = which === 'submitted' ? 'submitted_at' : 'created_at';
  let query = db.selectFrom('payments').selectAll().where('status', '=', 'pending').where(since, '<', before);
  query =
    which === 'submitted'
      ? query.where('provider_ref', 'is not', null)
      : query.where('submitted_at', 'is', null);
  if (exceptIds.length > 0) query = query.where(idNotAmong(exceptIds));
  const rows = await query.orderBy(since).limit(limit).execute();
  return rows.map(toPayment);
}

export const stalePendingPayments = (
  db: Db,
  submittedBefore: Date,
  limit: number,
  exceptIds: readonly string[] = [],
) => pendingPayments(db, 'submitted', submittedBefore, limit, exceptIds);

export const unsubmittedPendingPayments = (
  db: Db,
  createdBefore: Date,
  limit: number,
  exceptIds: readonly string[] = [],
) => pendingPayments(db, 'unsubmitted', createdBefore, limit, exceptIds);

/**
 * Rows whose id is none of `ids`, sent as one array parameter (a list can outgrow 65,535 binds):
 * `uuid[]` for payments, `text[]` for provider events (whose ids are the provider's webhook ids).
 */
const idNotAmong = (ids: readonly string[], type: 'uuid' | 'text' = 'uuid') =>
  type === 'uuid'
    ? sql<boolean>`not (id = any(${[...ids]}::uuid[]))`
    : sql<boolean>`not (id = any(${[...ids]}::text[]))`;

/**
 * Withdrawals paid (`succeeded`) after `paidAfter` and before `paidBefore`, oldest paid first: their
 * bank may still return them (`payout.failed` after `payout.paid`), and the reconciler asks the
 * provider again in case that webhook was lost. Reads the partial index of migration 0018 (only
 * paid withdrawals, by `settled_at`), so a pass costs the rows inside the window, not the history.
 */
export async function paidWithdrawals(
  db: Db,
  paidAfter: Date,
  paidBefore: Date,
  limit: number,
  /**
   * Payments left out (asked recently), so they cannot crowd out the others. Sent as one array
   * parameter: with a window of days this list can outgrow PostgreSQL's 65,535 bind parameters.
   */
  exceptIds: readonly string[] = [],
): Promise<PaymentRow[]> {
  let query = db
    .selectFrom('payments')
    .selectAll()
    .where('kind', '=', 'withdrawal')
    .where('status', '=', 'succeeded')
    .where('settled_at', '>', paidAfter)
    .where('settled_at', '<', paidBefore);
  if (exceptIds.length > 0) {
    query = query.where(idNotAmong(exceptIds));
  }
  const rows = await query.orderBy('settled_at').orderBy('id').limit(limit).execute();
  return rows.map(toPayment);
}

/**
 * Top-ups requested after `createdAfter` that failed as `provider_unavailable` before `failedBefore`
 * without the provider ever answering (`submitted_at` null: their submit task gave up, every call
 * failed here), oldest first. A call that timed out may have gone through, so the reconciler asks
 * the provider whether it charged them (its webhook may be lost). Reads `payments_status_idx`
 * (status, created_at): the failed payments requested within the window, not the history.
 */
export async function unconfirmedFailedTopUps(
  db: Db,
  createdAfter: Date,
  failedBefore: Date,
  limit: number,
  /** Payments left out (asked recently), sent as one array parameter, as in `paidWithdrawals`. */
  exceptIds: readonly string[] = [],
): Promise<PaymentRow[]> {
  let query = db
    .selectFrom('payments')
    .selectAll()
    .where('status', '=', 'failed')
    .where('created_at', '>', createdAfter)
    .where('kind', '=', 'top_up')
    .where('failure_code', '=', 'provider_unavailable')
    .where('submitted_at', 'is', null)
    .where('settled_at', '<', failedBefore);
  if (exceptIds.length > 0) {
    query = query.where(idNotAmong(exceptIds));
  }
  const rows = await query.orderBy('created_at').orderBy('id').limit(limit).execute();
  return rows.map(toPayment);
}

/** Locks the payment row; taken before its hold and accounts by every payment operation. */
export async function lockPayment(trx: Transaction<Database>, id: string): Promise<PaymentRow | undefined> {
  const row = await trx
    .selectFrom('payments')
    .selectAll()
    .where('id', '=', id)
    .forUpdate()
    .executeTakeFirst();
  return row === undefined ? undefined : toPayment(row);
}

export async function updatePayment(
  trx: Db,
  id: string,
  changes: {
    status?: PaymentStatus;
    providerRef?: string;
    submittedAt?: Date;
    submitAttemptedAt?: Date;
    failureCode?: string | null;
    transactionId?: string;
    reversalTransactionId?: string;
    settledAt?: Date;
  },
): Promise<void> {
  await trx
    .updateTable('payments')
    .set({
      ...(changes.status === undefined ? {} : { status: changes.status }),
      ...(changes.providerRef === undefined ? {} : { provider_ref: changes.providerRef }),
      ...(changes.submittedAt === undefined ? {} : { submitted_at: changes.submittedAt }),
      ...(changes.submitAttemptedAt === undefined ? {} : { submit_attempted_at: changes.submitAttemptedAt }),
      ...(changes.failureCode === undefined ? {} : { failure_code: changes.failureCode }),
      ...(changes.transactionId === undefined ? {} : { transaction_id: changes.transactionId }),
      ...(changes.reversalTransactionId === undefined
        ? {}
        : { reversal_transaction_id: changes.reversalTransactionId }),
      ...(changes.settledAt === undefined ? {} : { settled_at: changes.settledAt }),
    })
    .where('id', '=', id)
    .execute();
}

/**
 * Claims a provider event id for this transaction: false when it was received before (a redelivery).
 * A concurrent twin waits here until the first commits, then finds it.
 */
export async function claimProviderEvent(
  trx: Transaction<Database>,
  event: { id: string; type: string; paymentId: string | null; payload?: Record<string, unknown> },
): Promise<boolean> {
  const row = await trx
    .insertInto('provider_events')
    .values({
      id: event.id,
      type: event.type,
      payment_id: null,
      outcome: 'received',
      payload: event.payload ?? null,
    })
    .onConflict((oc) => oc.column('id').doNothing())
    .returning('id')
    .executeTakeFirst();
  return row !== undefined;
}

/**
 * Locks a provider event that was received but not applied yet and returns its body; undefined when
 * there is none (unknown id, or already applied or ignored).
 */
export async function lockReceivedProviderEvent(
  trx: Transaction<Database>,
  id: string,
): Promise<Record<string, unknown> | undefined> {
  const row = await trx
    .selectFrom('provider_events')
    .select('payload')
    .where('id', '=', id)
    .where('outcome', '=', 'received')
    .forUpdate()
    .executeTakeFirst();
  return row === undefined || row.payload === null ? undefined : (row.payload as Record<string, unknown>);
}

/** What became of a provider event: `received` (not applied yet), its outcome, or undefined when unknown. */
export async function providerEventOutcome(db: Db, id: string): Promise<string | undefined> {
  const row = await db
    .selectFrom('provider_events')
    .select('outcome')
    .where('id', '=', id)
    .executeTakeFirst();
  return row?.outcome;
}

/**
 * Provider events recorded before `receivedBefore` and still `received` (never applied: their
 * `payments.apply-event` task ran out of retries, or is still retrying). Only rows with their body
 * (migration 0006), which is what the task applies. Oldest first. Without an index on `outcome`
 * this reads the table; almost every row leaves `received` within seconds.
 */
export async function unappliedProviderEvents(
  db: Db,
  receivedBefore: Date,
  limit: number,
  /** Events left out (re-queued recently), sent as one array parameter, as in `paidWithdrawals`. */
  exceptIds: readonly string[] = [],
): Promise<{ id: string; paymentId: string | null }[]> {
  let query = db
    .selectFrom('provider_events')
    .select(['id', sql<string | null>`payload -> 'data' ->> 'paymentId'`.as('payment_id')])
    .where('outcome', '=', 'received')
    .where('payload', 'is not', null)
    .where('received_at', '<', receivedBefore);
  if (exceptIds.length > 0) query = query.where(idNotAmong(exceptIds, 'text'));
  const rows = await query.orderBy('received_at').limit(limit).execute();
  return rows.map((row) => ({ id: row.id, paymentId: row.payment_id }));
}

export async function recordProviderEventOutcome(
  trx: Transaction<Database>,
  id: string,
  outcome: { paymentId: string | null; outcome: string },
): Promise<void> {
  await trx
    .updateTable('provider_events')
    .set({ payment_id: outcome.paymentId, outcome: outcome.outcome })
    .where('id', '=', id)
    .execute();
}

/**
 * Payments newest first, optionally of one status, after the payment `afterId` (keyset on
 * (created_at, id), compared in SQL so microsecond timestamps are exact). The admin list.
 */
export async function listPayments(
  db: Db,
  query: { status?: PaymentStatus; afterId?: string; limit: number },
): Promise<PaymentRow[]> {
  let select = db.selectFrom('payments').selectAll();
  if (query.status !== undefined) select = select.where('status', '=', query.status);
  if (query.afterId !== undefined) {
    const afterId = query.afterId;
    select = select.where(
      sql<boolean>`(created_at, id) < (select p.created_at, p.id from payments p where p.id = ${afterId})`,
    );
  }
  const rows = await select.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(query.limit).execute();
  return rows.map(toPayment);
}

/** The user whose payment a provider event concerns (for the wallet push after it was applied). */
export async function findUserOfProviderEvent(db: Db, eventId: string): Promise<UserId | undefined> {
  const row = await db
    .selectFrom('provider_events')
    .innerJoin('payments', 'payments.id', 'provider_events.payment_id')
    .select('payments.user_id')
    .where('provider_events.id', '=', eventId)
    .executeTakeFirst();
  return row === undefined ? undefined : (row.user_id as UserId);
}
