/**
 * The ledger's pure rules: amounts, fees, available balances and the funds check. No I/O, so each
 * is unit-tested without a database (rules.test.ts). Amounts are integer minor units as `bigint`.
 */
import { AppError } from '../../platform/errors.js';

/** Largest amount the API accepts: JSON carries integers exactly up to 2^53 − 1. */
export const MAX_AMOUNT = BigInt(Number.MAX_SAFE_INTEGER);

/** Basis points in 100 %. */
export const BPS_SCALE = 10_000n;

/** Refuses amounts that are not positive integers ≤ 2^53 − 1 (VALIDATION_FAILED). */
export function assertAmount(amount: bigint, field = 'amount'): void {
  if (amount <= 0n || amount > MAX_AMOUNT) {
    throw new AppError(
      'VALIDATION_FAILED',
      `${field} must be a positive integer of minor units up to 2^53 - 1`,
      {
        details: { field },
      },
    );
  }
}

/**
 * The platform fee of a payout: `amount × bps / 10 000` rounded half up, so that fee + net equals
 * the amount exactly (the net is what is left, never rounded on its own).
 */
export function splitFee(amount: bigint, feeBps: number): { fee: bigint; net: bigint } {
  if (!Number.isInteger(feeBps) || feeBps < 0 || feeBps > 10_000) {
    throw new RangeError(`fee must be 0..10000 basis points, got ${feeBps}`);
  }
  if (amount < 0n) throw new RangeError('amount must not be negative');
  const fee = (amount * BigInt(feeBps) + BPS_SCALE / 2n) / BPS_SCALE;
  return { fee, net: amount - fee };
}

/** What an account can spend now: posted minus what pending holds already reserve. */
export const availableOf = (account: { posted: bigint; pendingDebits: bigint }): bigint =>
  account.posted - account.pendingDebits;

export interface FundsAccount {
  readonly id: string;
  readonly kind: string;
  readonly currency: string;
  readonly posted: bigint;
  readonly pendingDebits: bigint;
  readonly allowNegative: boolean;
}

/**
 * The first account that a change would take below 0 available, with how much is missing; undefined
 * when every account covers its part. `deltas` are net signed amounts per account id (a new hold is
 * a negative delta on its debit account).
 */
export function findShortfall(
  accounts: ReadonlyMap<string, FundsAccount>,
  deltas: ReadonlyMap<string, bigint>,
): { account: FundsAccount; shortfall: bigint } | undefined {
  for (const [id, delta] of deltas) {
    const account = accounts.get(id);
    if (account === undefined) throw new Error(`account ${id} was not locked`);
    if (account.allowNegative || delta >= 0n) continue;
    const after = availableOf(account) + delta;
    if (after < 0n) return { account, shortfall: -after };
  }
  return undefined;
}

/**
 * The first account a change would take above MAX_AMOUNT posted, or undefined. Balances are JSON
 * integers at the API, exact only up to 2^53 − 1: a wallet credited past that could not be shown
 * (GET /v1/wallet would fail) and anyone could do that to anyone by transfers. Accounts that may go
 * negative (provider clearing) are the platform's own and never shown, so only credits to the
 * others are capped — but not the platform's fee account either: never shown, never spent, it only
 * grows, and capped it refused every release and split with a fee once full (the escrow held for
 * good, every worker unpaid). With the sandbox's free money about ten escrows of 2^53 − 1 filled it.
 */
export function findBalanceOverflow(
  accounts: ReadonlyMap<string, FundsAccount>,
  deltas: ReadonlyMap<string, bigint>,
): FundsAccount | undefined {
  for (const [id, delta] of deltas) {
    const account = accounts.get(id);
    if (account === undefined) throw new Error(`account ${id} was not locked`);
    if (account.allowNegative || account.kind === 'platform_fees') continue;
    if (delta > 0n && account.posted + delta > MAX_AMOUNT) return account;
  }
  return undefined;
}

/** CONFLICT: the credit would take a balance above 2^53 − 1 minor units (details.reason BALANCE_LIMIT). */
export function balanceLimitReached(currency: string, counted?: { pendingTopUps: bigint }): AppError {
  return new AppError('CONFLICT', 'the receiving balance would exceed 2^53 - 1 minor units', {
    details: {
      reason: 'BALANCE_LIMIT',
      limit: Number(MAX_AMOUNT),
      currency,
      // A top-up's start counts the top-ups still pending as credited: said, so a refusal of a
      // balance that reads well under the limit is understood.
      ...(counted === undefined ? {} : { pendingTopUps: Number(counted.pendingTopUps) }),
    },
  });
}

/**
 * The most money (minor units of one currency) the platform holds from outside: provider clearing
 * records −(money in − money out) in a PostgreSQL bigint, −2^63 at most. Each wallet is capped at
 * 2^53 − 1, but wallets, escrows and the fee account together were not: with the sandbox's free
 * money, 1 024 accounts topped up to their cap (a few thousand requests from one address) took
 * provider clearing past what a bigint holds, and from then on every top-up's credit failed in the
 * database (`bigint out of range`): each user's top-up charged and pending for good, its task failing
 * on every reconcile pass. Half of bigint's range, so what comes in without a top-up's start
 * counting it (a success after a failure, a returned payout, top-ups started together) still fits.
 */
export const PLATFORM_MONEY_LIMIT = 2n ** 62n;

/** Whether taking in `amount` more passes PLATFORM_MONEY_LIMIT (`inside`: −provider clearing). */
export const passesPlatformLimit = (inside: bigint, pendingTopUps: bigint, amount: bigint): boolean =>
  inside + pendingTopUps + amount > PLATFORM_MONEY_LIMIT;

/** CONFLICT: the platform takes in no more money in this currency now (details.reason PLATFORM_LIMIT). */
export function platformLimitReached(currency: string): AppError {
  return new AppError('CONFLICT', 'the platform cannot take in more money in this currency now', {
    details: { reason: 'PLATFORM_LIMIT', currency },
  });
}

/** INSUFFICIENT_FUNDS with the shortfall (minor units, exact as a JSON integer) and the currency. */
export function insufficientFunds(shortfall: bigint, currency: string): AppError {
  return new AppError('INSUFFICIENT_FUNDS', 'the available balance does not cover the amount', {
    details: { shortfall: Number(shortfall), currency },
  });
}

/** Net signed amount per account of a list of entries (an account may appear more than once). */
export function netDeltas(entries: readonly { accountId: string; amount: bigint }[]): Map<string, bigint> {
  const deltas = new Map<string, bigint>();
  for (const entry of entries)
    deltas.set(entry.accountId, (deltas.get(entry.accountId) ?? 0n) + entry.amount);
  return deltas;
}

/**
 * Refuses a journal transaction that cannot be posted: fewer than two entries, a zero or oversized
 * leg, or legs that do not sum to 0. The database checks the sum again at COMMIT.
 */
export function assertBalanced(entries: readonly { accountId: string; amount: bigint }[]): void {
  if (entries.length < 2) throw new AppError('VALIDATION_FAILED', 'a transaction needs at least two entries');
  let total = 0n;
  for (const entry of entries) {
    if (entry.amount === 0n) throw new AppError('VALIDATION_FAILED', 'an entry of 0 moves nothing');
    if (entry.amount > MAX_AMOUNT || entry.amount < -MAX_AMOUNT) {
      throw new AppError('VALIDATION_FAILED', 'an entry exceeds 2^53 - 1 minor units');
    }
    total += entry.amount;
  }
  if (total !== 0n) throw new AppError('VALIDATION_FAILED', `entries sum to ${total}, not 0`);
}

/** Whether two entry lists move the same amounts on the same accounts (an idempotent replay). */
export function sameEffect(
  a: readonly { accountId: string; amount: bigint }[],
  b: readonly { accountId: string; amount: bigint }[],
): boolean {
  const da = netDeltas(a);
  const db = netDeltas(b);
  if (da.size !== db.size) return false;
  for (const [id, amount] of da) if (db.get(id) !== amount) return false;
  return true;
}

/** The legs of an escrow payout: to the worker (net of fee), the fee, and back to the hirer. */
export interface EscrowPayout {
  readonly toWorker: bigint;
  readonly fee: bigint;
  readonly toHirer: bigint;
}

/**
 * How a held escrow of `held` is paid out when the worker gets `workerShare` (all of it on release,
 * none on refund, a part on a split): the fee is taken from the worker's share only, and the three
 * legs always sum to `held` exactly.
 */
export function planEscrowPayout(held: bigint, workerShare: bigint, feeBps: number): EscrowPayout {
  if (workerShare < 0n || workerShare > held) {
    throw new AppError('VALIDATION_FAILED', 'the worker share must be between 0 and the held amount');
  }
  const { fee, net } = splitFee(workerShare, feeBps);
  return { toWorker: net, fee, toHirer: held - workerShare };
}
