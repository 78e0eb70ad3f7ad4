/**
 * The ledger's core operations: post an n-entry journal transaction, and the two-phase hold
 * (create pending → post | void, at most once). Every operation:
 * - is one database transaction, retried whole on serialization failure or deadlock;
 * - locks the accounts it touches FOR UPDATE in ascending id order before checking funds;
 * - is idempotent by its operation key: a repeat with the same effect returns the first result
 *   (`replayed: true`), a repeat with another effect is CONFLICT.
 * Wallet, escrow and provider operations (wallet.ts, escrow.ts) are built from these.
 */
import type { Kysely, Transaction } from 'kysely';
import type { Database } from '../../db/database.js';
import { isUniqueViolation, withSerializationRetry } from '../../db/errors.js';
import {
  type AccountRow,
  findHold,
  findTransaction,
  findTransactionByExternalRef,
  findTransactionByOpKey,
  type HoldRow,
  insertHold,
  insertTransaction,
  lockAccounts,
  lockHold,
  type NewTransaction,
  resolveHold,
} from '../../db/repositories/ledger.repo.js';
import { insertOutboxEvent } from '../../db/repositories/outbox.repo.js';
import type { Clock } from '../../platform/clock.js';
import { AppError } from '../../platform/errors.js';
import type { Logger } from '../../platform/logger.js';
import {
  assertAmount,
  assertBalanced,
  balanceLimitReached,
  findBalanceOverflow,
  findShortfall,
  insufficientFunds,
  netDeltas,
  sameEffect,
} from './rules.js';

/** Settings of the payments domain (from config: CURRENCY, PLATFORM_FEE_BPS). */
export interface PaymentsSettings {
  /** ISO 4217 code of every wallet, escrow and fee account (default USD). */
  readonly currency: string;
  /** Platform fee on escrow payouts to workers, in basis points (1000 = 10 %). */
  readonly platformFeeBps: number;
}

/** The ports the payments domain uses. */
export interface PaymentsDeps {
  readonly db: Kysely<Database>;
  readonly clock: Clock;
  readonly settings: PaymentsSettings;
  /** Debug lines for retried transactions; optional so unit tests need none. */
  readonly log?: Logger | undefined;
}

export interface PostedTransaction {
  readonly transactionId: string;
  /** True when the operation key had already been applied and nothing new happened. */
  readonly replayed: boolean;
}

/**
 * Runs `work` in its own transaction, retried on serialization failure or deadlock. When the
 * transaction dies on a unique violation (a concurrent twin with the same key committed first),
 * `replay` is asked for the twin's result; undefined rethrows the violation.
 */
export async function runLedgerTransaction<T>(
  deps: Pick<PaymentsDeps, 'db' | 'log'>,
  work: (trx: Transaction<Database>) => Promise<T>,
  replay?: () => Promise<T | undefined>,
): Promise<T> {
  return withSerializationRetry(
    async () => {
      try {
        return await deps.db.transaction().execute(work);
      } catch (error) {
        if (replay !== undefined && isUniqueViolation(error)) {
          const result = await replay();
          if (result !== undefined) return result;
        }
        throw error;
      }
    },
    { onRetry: (error, attempt) => deps.log?.debug({ err: error, attempt }, 'ledger transaction retried') },
  );
}

/** `reason` of the CONFLICT for an operation key reused with another effect. */
export const OPERATION_KEY_REUSED = 'OPERATION_KEY_REUSED';

// The op key is internal (it embeds user ids and idempotency keys): it goes to the logs through the
// cause, never into the answer.
const keyReused = (opKey: string) =>
  new AppError('CONFLICT', 'this operation was already done with different details', {
    details: { reason: OPERATION_KEY_REUSED },
    cause: new Error(`operation key ${opKey} was already used for a different operation`),
  });

/** The first result of `txn.opKey`, if it had the same effect; CONFLICT if it had another. */
async function replayOf(db: Kysely<Database> | Transaction<Database>, txn: NewTransaction) {
  const existing = await findTransactionByOpKey(db, txn.opKey);
  if (existing === undefined) {
    // Another operation already recorded this outside event (I8): never a second transaction.
    if (txn.externalRef != null && (await findTransactionByExternalRef(db, txn.externalRef)) !== undefined) {
      throw new AppError('CONFLICT', 'this external event was already recorded', {
        details: { externalRef: txn.externalRef },
      });
    }
    return undefined;
  }
  // The memo is part of what was asked (a transfer's note, shown to its receiver): the same key with
  // another note is another operation, never a replay answered with a note that was not stored.
  if (
    existing.kind !== txn.kind ||
    !sameEffect(existing.entries, txn.entries) ||
    existing.memo !== (txn.memo ?? null)
  ) {
    throw keyReused(txn.opKey);
  }
  return { transactionId: existing.id, replayed: true } satisfies PostedTransaction;
}

function assertSameCurrency(
  accounts: ReadonlyMap<string, AccountRow>,
  ids: Iterable<string>,
  currency: string,
) {
  for (const id of ids) {
    const account = accounts.get(id);
    if (account === undefined) throw new AppError('NOT_FOUND', `ledger account ${id} does not exist`);
    if (account.currency !== currency) {
      throw new AppError('VALIDATION_FAILED', `account ${id} holds ${account.currency}, not ${currency}`);
    }
  }
}

/**
 * Posts a journal transaction inside the caller's transaction: replay check, sorted locks, funds
 * check, insert. For callers that own a larger transaction (escrow, the marketplace).
 */
export async function postTransactionIn(
  trx: Transaction<Database>,
  txn: NewTransaction,
  events: readonly OutboxEvent[] = [],
): Promise<PostedTransaction> {
  assertBalanced(txn.entries);
  const deltas = netDeltas(txn.entries);
  const accounts = await lockAccounts(trx, [...deltas.keys()].sort(compareIds));
  // After the locks: a twin that committed meanwhile is visible now (READ COMMITTED).
  const replayed = await replayOf(trx, txn);
  if (replayed !== undefined) return replayed;
  assertSameCurrency(accounts, deltas.keys(), txn.currency);
  const short = findShortfall(accounts, deltas);
  if (short !== undefined) throw insufficientFunds(short.shortfall, txn.currency);
  if (findBalanceOverflow(accounts, deltas) !== undefined) throw balanceLimitReached(txn.currency);
  const transactionId = await insertTransaction(trx, txn);
  await writeEvents(trx, transactionId, events);
  return { transactionId, replayed: false };
}

/** An outbox event written with the effect that causes it (only when the effect is new, never on a replay). */
export interface OutboxEvent {
  readonly type: PaymentsEvent;
  /** Ids and amounts (JSON numbers, ≤ 2^53 − 1); `transactionId` is added. */
  readonly payload: Readonly<Record<string, unknown>>;
}

/** Events of the payments domain (the Notifications issue turns them into notifications and receipts). */
export const PaymentsEvent = {
  transferReceived: 'transfer.received',
  escrowReleased: 'escrow.released',
  escrowRefunded: 'escrow.refunded',
  escrowSplit: 'escrow.split',
  paymentSucceeded: 'payment.succeeded',
  paymentFailed: 'payment.failed',
} as const;
export type PaymentsEvent = (typeof PaymentsEvent)[keyof typeof PaymentsEvent];

export async function writeEvents(
  trx: Transaction<Database>,
  transactionId: string | null,
  events: readonly OutboxEvent[],
): Promise<void> {
  for (const event of events) {
    await insertOutboxEvent(
      trx,
      event.type,
      transactionId === null ? { ...event.payload } : { ...event.payload, transactionId },
    );
  }
}

/** Posts a balanced n-entry journal transaction in its own database transaction. */
export async function postTransaction(
  deps: Pick<PaymentsDeps, 'db' | 'log'>,
  txn: NewTransaction,
  events: readonly OutboxEvent[] = [],
) {
  assertBalanced(txn.entries);
  return runLedgerTransaction(
    deps,
    (trx) => postTransactionIn(trx, txn, events),
    () => replayOf(deps.db, txn),
  );
}

/** Ledger ids are bigint identities (decimal strings): numeric order, the database's lock order. */
export function compareIds(a: string, b: string): number {
  const x = BigInt(a);
  const y = BigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

export interface NewHold {
  readonly opKey: string;
  /** Why the money is reserved (`withdrawal`, …); shown in histories. */
  readonly reason: string;
  readonly debitAccountId: string;
  readonly creditAccountId: string;
  readonly amount: bigint;
  readonly currency: string;
}

const sameHold = (hold: HoldRow, input: NewHold) =>
  hold.reason === input.reason &&
  hold.debitAccountId === input.debitAccountId &&
  hold.creditAccountId === input.creditAccountId &&
  hold.amount === input.amount &&
  hold.currency === input.currency;

async function holdReplay(db: Kysely<Database> | Transaction<Database>, input: NewHold) {
  const hold = await findHold(db, { opKey: input.opKey });
  if (hold === undefined) return undefined;
  if (!sameHold(hold, input)) throw keyReused(input.opKey);
  return { hold, replayed: true };
}

/**
 * Reserves `amount` on the debit account (its available balance drops now, its posted balance when
 * the hold is posted). INSUFFICIENT_FUNDS when the available balance does not cover it.
 */
export async function createHold(
  deps: Pick<PaymentsDeps, 'db' | 'log'>,
  input: NewHold,
): Promise<{ hold: HoldRow; replayed: boolean }> {
  assertHold(input);
  return runLedgerTransaction(
    deps,
    (trx) => createHoldIn(trx, input),
    () => holdReplay(deps.db, input),
  );
}

function assertHold(input: NewHold) {
  assertAmount(input.amount);
  if (input.debitAccountId === input.creditAccountId) {
    throw new AppError('VALIDATION_FAILED', 'a hold needs two different accounts');
  }
}

/** createHold inside the caller's transaction. */
export async function createHoldIn(
  trx: Transaction<Database>,
  input: NewHold,
): Promise<{ hold: HoldRow; replayed: boolean }> {
  assertHold(input);
  const accounts = await lockAccounts(trx, [input.debitAccountId, input.creditAccountId].sort(compareIds));
  const replayed = await holdReplay(trx, input);
  if (replayed !== undefined) return replayed;
  assertSameCurrency(accounts, [input.debitAccountId, input.creditAccountId], input.currency);
  const short = findShortfall(accounts, new Map([[input.debitAccountId, -input.amount]]));
  if (short !== undefined) throw insufficientFunds(short.shortfall, input.currency);
  return { hold: await insertHold(trx, input), replayed: false };
}

const holdNotFound = (holdId: string) => new AppError('NOT_FOUND', `hold ${holdId} does not exist`);

export interface PostHoldInput {
  readonly holdId: string;
  readonly kind?: NewTransaction['kind'];
  readonly externalRef?: string | null;
  readonly memo?: string | null;
  /** The contract the posting belongs to (a parked escrow share), shown in wallet histories. */
  readonly contractId?: string | null;
}

const holdPostKey = (holdId: string) => `hold:post:${holdId}`;

/**
 * Posts a pending hold inside the caller's transaction: the held amount moves from the debit to the
 * credit account in one journal transaction (kind `kind`, default `hold_post`). Posting a posted
 * hold returns its transaction; posting a voided one is CONFLICT.
 */
export async function postHoldIn(
  trx: Transaction<Database>,
  deps: Pick<PaymentsDeps, 'clock'>,
  input: PostHoldInput,
): Promise<PostedTransaction> {
  const opKey = holdPostKey(input.holdId);
  const hold = await lockHold(trx, input.holdId);
  if (hold === undefined) throw holdNotFound(input.holdId);
  const accounts = await lockAccounts(trx, [hold.debitAccountId, hold.creditAccountId].sort(compareIds));
  if (hold.status === 'posted') {
    const existing = await findTransactionByOpKey(trx, opKey);
    if (existing === undefined) throw new Error(`posted hold ${hold.id} has no posting`);
    return { transactionId: existing.id, replayed: true };
  }
  if (hold.status === 'voided') {
    throw new AppError('CONFLICT', 'the hold was voided', {
      details: { holdId: hold.id, status: hold.status },
    });
  }
  if (findBalanceOverflow(accounts, new Map([[hold.creditAccountId, hold.amount]])) !== undefined) {
    throw balanceLimitReached(hold.currency);
  }
  // Release the reservation first: the account CHECK (posted − pending ≥ 0) holds after each statement.
  await resolveHold(trx, hold.id, 'posted', deps.clock.now());
  const transactionId = await insertTransaction(trx, {
    opKey,
    kind: input.kind ?? 'hold_post',
    currency: hold.currency,
    holdId: hold.id,
    externalRef: input.externalRef ?? null,
    memo: input.memo ?? null,
    contractId: input.contractId ?? null,
    entries: [
      { accountId: hold.debitAccountId, amount: -hold.amount },
      { accountId: hold.creditAccountId, amount: hold.amount },
    ],
  });
  return { transactionId, replayed: false };
}

/** Posts a pending hold in its own transaction (see postHoldIn). */
export async function postHold(
  deps: Pick<PaymentsDeps, 'db' | 'log' | 'clock'>,
  input: PostHoldInput,
): Promise<PostedTransaction> {
  const replay = async () => {
    const existing = await findTransactionByOpKey(deps.db, holdPostKey(input.holdId));
    return existing === undefined ? undefined : { transactionId: existing.id, replayed: true };
  };
  return runLedgerTransaction(deps, (trx) => postHoldIn(trx, deps, input), replay);
}

/**
 * Voids a pending hold inside the caller's transaction (the reservation ends, nothing moves).
 * Voiding twice is a no-op; a posted hold is CONFLICT.
 */
export async function voidHoldIn(
  trx: Transaction<Database>,
  deps: Pick<PaymentsDeps, 'clock'>,
  input: { holdId: string },
): Promise<{ replayed: boolean }> {
  const hold = await lockHold(trx, input.holdId);
  if (hold === undefined) throw holdNotFound(input.holdId);
  if (hold.status === 'voided') return { replayed: true };
  if (hold.status === 'posted') {
    throw new AppError('CONFLICT', 'the hold was posted', {
      details: { holdId: hold.id, status: hold.status },
    });
  }
  await lockAccounts(trx, [hold.debitAccountId, hold.creditAccountId].sort(compareIds));
  await resolveHold(trx, hold.id, 'voided', deps.clock.now());
  return { replayed: false };
}

/** Voids a pending hold in its own transaction (see voidHoldIn). */
export async function voidHold(
  deps: Pick<PaymentsDeps, 'db' | 'log' | 'clock'>,
  input: { holdId: string },
): Promise<{ replayed: boolean }> {
  return runLedgerTransaction(deps, (trx) => voidHoldIn(trx, deps, input));
}

/** Kinds a reversal may undo: money movements outside escrow (escrow has its own lifecycle). */
const REVERSIBLE = new Set<NewTransaction['kind']>(['top_up', 'withdrawal', 'transfer', 'hold_post']);

export interface ReverseInput {
  readonly transactionId: string;
  readonly kind?: 'reversal' | 'withdrawal_reversal';
  readonly externalRef?: string | null;
  readonly memo?: string | null;
}

async function reversalOf(
  db: Kysely<Database> | Transaction<Database>,
  input: ReverseInput,
): Promise<NewTransaction> {
  const original = await findTransaction(db, input.transactionId);
  if (original === undefined)
    throw new AppError('NOT_FOUND', `transaction ${input.transactionId} does not exist`);
  if (!REVERSIBLE.has(original.kind)) {
    throw new AppError('VALIDATION_FAILED', `a ${original.kind} transaction cannot be reversed`);
  }
  return {
    opKey: `reverse:${original.id}`,
    kind: input.kind ?? 'reversal',
    currency: original.currency,
    externalRef: input.externalRef ?? null,
    contractId: original.contractId,
    initiatorId: original.initiatorId,
    memo: input.memo ?? `reverses ${original.id}`,
    entries: original.entries.map((entry) => ({ accountId: entry.accountId, amount: -entry.amount })),
  };
}

/** reverseTransaction inside the caller's transaction. */
export async function reverseTransactionIn(
  trx: Transaction<Database>,
  input: ReverseInput,
): Promise<PostedTransaction> {
  return postTransactionIn(trx, await reversalOf(trx, input));
}

/**
 * Corrects a posted transaction by a new one with every entry negated (the journal is append-only,
 * so nothing is edited). At most one reversal per transaction (its op key derives from the id).
 * INSUFFICIENT_FUNDS when an account has already spent what the reversal takes back.
 */
export async function reverseTransaction(
  deps: Pick<PaymentsDeps, 'db' | 'log'>,
  input: ReverseInput,
): Promise<PostedTransaction> {
  return postTransaction(deps, await reversalOf(deps.db, input));
}
