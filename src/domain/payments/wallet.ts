/**
 * Wallet operations: balances, transfers between users, money in (top-up) and out (withdrawal) through
 * the provider clearing account. Wallets are created on first use; a user who never used one has a
 * balance of 0 (never NOT_FOUND).
 */
import type { Transaction } from 'kysely';
import type { UserId } from '../../../protocol/src/ids.js';
import type { Database } from '../../db/database.js';
import {
  ensureAccounts,
  findWallet,
  type HoldRow,
  type NewTransaction,
  operatorParkedCredits,
} from '../../db/repositories/ledger.repo.js';
import { AppError } from '../../platform/errors.js';
import {
  createHold,
  type OutboxEvent,
  type PaymentsDeps,
  PaymentsEvent,
  type PostedTransaction,
  postHold,
  postTransaction,
  postTransactionIn,
  voidHold,
} from './ledger.js';
import { assertAmount, availableOf } from './rules.js';

export interface WalletBalance {
  readonly currency: string;
  /** posted − pending debits: what the user can spend now. */
  readonly available: bigint;
  /** Reserved by pending holds (withdrawals in flight). */
  readonly pending: bigint;
  readonly posted: bigint;
}

export async function walletBalance(
  deps: Pick<PaymentsDeps, 'db' | 'settings'>,
  userId: UserId,
): Promise<WalletBalance> {
  const currency = deps.settings.currency;
  const wallet = await findWallet(deps.db, userId, currency);
  if (wallet === undefined) return { currency, available: 0n, pending: 0n, posted: 0n };
  return { currency, available: availableOf(wallet), pending: wallet.pendingDebits, posted: wallet.posted };
}

/**
 * The balance and the money parked for the user (`parked`): credits their wallet had no room for
 * under the balance limit — a charged top-up, a returned payout, an escrow share — kept in the ledger
 * as pending credits of the wallet and added by the reconciler once it has room. Not in `posted` nor
 * `available` until then. A top-up parked for an operator (to be refunded) is not counted.
 */
export async function walletBalanceWithParked(
  deps: Pick<PaymentsDeps, 'db' | 'settings'>,
  userId: UserId,
): Promise<WalletBalance & { readonly parked: bigint }> {
  const currency = deps.settings.currency;
  const first = await findWallet(deps.db, userId, currency);
  if (first === undefined) return { currency, available: 0n, pending: 0n, posted: 0n, parked: 0n };
  const view = (wallet: typeof first, parked: bigint) => ({
    currency,
    available: availableOf(wallet),
    pending: wallet.pendingDebits,
    posted: wallet.posted,
    parked,
  });
  if (first.pendingCredits === 0n) return view(first, 0n);
  // Every hold crediting a wallet parks money for it (withdrawals' holds debit the wallet), but a
  // top-up parked for an operator (another currency or amount than asked) is refunded to the card,
  // never added: not shown as coming. The wallet row and those holds are read in ONE snapshot: read
  // apart, a top-up parked for an operator between the two reads was subtracted without having been
  // counted, and `parked` came out negative (GET /v1/wallet answered 500, its schema says ≥ 0).
  return deps.db
    .transaction()
    .setIsolationLevel('repeatable read')
    .setAccessMode('read only')
    .execute(async (trx) => {
      const wallet = (await findWallet(trx, userId, currency)) ?? first;
      return view(
        wallet,
        wallet.pendingCredits === 0n
          ? 0n
          : wallet.pendingCredits - (await operatorParkedCredits(trx, wallet.id)),
      );
    });
}

const walletKey = (userId: UserId, currency: string) => ({ kind: 'wallet', userId, currency }) as const;

/**
 * `transfer` inside the caller's transaction (e.g. together with its idempotency key). The two
 * wallets are created in user-id order, so two such transactions cannot deadlock creating them.
 */
export async function transferIn(
  trx: Transaction<Database>,
  deps: Pick<PaymentsDeps, 'settings'>,
  input: TransferInput,
): Promise<PostedTransaction> {
  assertTransfer(input);
  const currency = deps.settings.currency;
  const ids = [input.fromUserId, input.toUserId].sort();
  const wallets = await ensureAccounts(
    trx,
    ids.map((userId) => walletKey(userId, currency)),
  );
  const from = wallets.find((w) => w.userId === input.fromUserId);
  const to = wallets.find((w) => w.userId === input.toUserId);
  if (from === undefined || to === undefined) throw new Error('wallets missing');
  return postTransactionIn(trx, transferTransaction(input, currency, from.id, to.id), transferEvents(input));
}

export interface TransferInput {
  readonly opKey: string;
  readonly fromUserId: UserId;
  readonly toUserId: UserId;
  readonly amount: bigint;
  readonly memo?: string | null;
}

function assertTransfer(input: TransferInput) {
  assertAmount(input.amount);
  if (input.fromUserId === input.toUserId) {
    throw new AppError('VALIDATION_FAILED', 'a transfer needs two different users', {
      details: { errors: [{ path: 'body.toUserId', message: 'must not be your own id' }] },
    });
  }
}

const transferTransaction = (
  input: TransferInput,
  currency: string,
  fromId: string,
  toId: string,
): NewTransaction => ({
  opKey: input.opKey,
  kind: 'transfer',
  currency,
  initiatorId: input.fromUserId,
  memo: input.memo ?? null,
  entries: [
    { accountId: fromId, amount: -input.amount },
    { accountId: toId, amount: input.amount },
  ],
});

const transferEvents = (input: TransferInput): OutboxEvent[] => [
  {
    type: PaymentsEvent.transferReceived,
    payload: { fromUserId: input.fromUserId, toUserId: input.toUserId, amount: Number(input.amount) },
  },
];

/**
 * Moves `amount` from one user's wallet to another's at once. INSUFFICIENT_FUNDS (with the
 * shortfall) when the sender's available balance does not cover it.
 */
export async function transfer(deps: PaymentsDeps, input: TransferInput): Promise<PostedTransaction> {
  assertTransfer(input);
  const currency = deps.settings.currency;
  const [from, to] = await ensureAccounts(deps.db, [
    walletKey(input.fromUserId, currency),
    walletKey(input.toUserId, currency),
  ]);
  if (from === undefined || to === undefined) throw new Error('wallets missing');
  return postTransaction(deps, transferTransaction(input, currency, from.id, to.id), transferEvents(input));
}

/**
 * Money in: the provider confirmed `amount` for the user. Provider clearing (the outside world, the
 * only account that goes negative) pays the wallet. `externalRef` (the provider's event or payment
 * id) makes a second confirmation of the same payment a no-op.
 */
export interface TopUpInput {
  readonly opKey: string;
  readonly userId: UserId;
  readonly amount: bigint;
  readonly externalRef?: string | null;
}

const topUpTransaction = (
  input: TopUpInput,
  currency: string,
  clearingId: string,
  walletId: string,
): NewTransaction => ({
  opKey: input.opKey,
  kind: 'top_up',
  currency,
  externalRef: input.externalRef ?? null,
  initiatorId: input.userId,
  entries: [
    { accountId: clearingId, amount: -input.amount },
    { accountId: walletId, amount: input.amount },
  ],
});

export async function topUp(deps: PaymentsDeps, input: TopUpInput): Promise<PostedTransaction> {
  assertAmount(input.amount);
  const currency = deps.settings.currency;
  const [clearing, wallet] = await ensureAccounts(deps.db, [
    { kind: 'provider_clearing', currency },
    walletKey(input.userId, currency),
  ]);
  if (clearing === undefined || wallet === undefined) throw new Error('accounts missing');
  return postTransaction(deps, topUpTransaction(input, currency, clearing.id, wallet.id));
}

/**
 * topUp inside the caller's transaction (the webhook that settles a payment), in the currency of the
 * money received — the payment's, as the provider reported it — never the process's configured one
 * by default: the caller checks that it is the wallet's (CURRENCY) before crediting, and parks it
 * otherwise (payments.ts), since a credit in another currency would be a silent conversion.
 */
export async function topUpIn(
  trx: Transaction<Database>,
  input: TopUpInput & { readonly currency: string },
): Promise<PostedTransaction> {
  assertAmount(input.amount);
  const currency = input.currency;
  const [clearing, wallet] = await ensureAccounts(trx, [
    { kind: 'provider_clearing', currency },
    walletKey(input.userId, currency),
  ]);
  if (clearing === undefined || wallet === undefined) throw new Error('accounts missing');
  return postTransactionIn(trx, topUpTransaction(input, currency, clearing.id, wallet.id));
}

/**
 * Money out, phase one: reserves `amount` in the user's wallet for a payout (a pending hold towards
 * provider clearing). INSUFFICIENT_FUNDS when it is not available.
 */
export async function startWithdrawal(
  deps: PaymentsDeps,
  input: { opKey: string; userId: UserId; amount: bigint },
): Promise<{ hold: HoldRow; replayed: boolean }> {
  assertAmount(input.amount);
  const currency = deps.settings.currency;
  const [wallet, clearing] = await ensureAccounts(deps.db, [
    walletKey(input.userId, currency),
    { kind: 'provider_clearing', currency },
  ]);
  if (clearing === undefined || wallet === undefined) throw new Error('accounts missing');
  return createHold(deps, {
    opKey: input.opKey,
    reason: 'withdrawal',
    debitAccountId: wallet.id,
    creditAccountId: clearing.id,
    amount: input.amount,
    currency,
  });
}

/** Phase two, the provider paid out: the reserved amount leaves the wallet (once). */
export function completeWithdrawal(
  deps: PaymentsDeps,
  input: { holdId: string; externalRef?: string | null },
): Promise<PostedTransaction> {
  return postHold(deps, { holdId: input.holdId, kind: 'withdrawal', externalRef: input.externalRef ?? null });
}

/** Phase two, the payout failed before any money left: the reservation ends (once). */
export function failWithdrawal(
  deps: PaymentsDeps,
  input: { holdId: string },
): Promise<{ replayed: boolean }> {
  return voidHold(deps, input);
}
