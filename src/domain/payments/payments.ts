/**
 * Top-ups and withdrawals through the provider (issue 11 §3, §5, §6). A payment is:
 * 1. requested (REST, inside its idempotency transaction): a `pending` row; a withdrawal also
 *    reserves its amount in the wallet (a pending hold) at once, so INSUFFICIENT_FUNDS is synchronous;
 * 2. submitted (payments task): the provider is called with the payment id as its idempotency key,
 *    outside any DB transaction; its answer is recorded once. A worker killed before recording it
 *    calls again and gets the same answer: the database decides what already happened, not Redis;
 * 3. settled by the provider's webhook events, each applied in one transaction together with its
 *    event id (duplicates change nothing) by the pure decision table `decideProviderEvent`, which also
 *    covers late and out-of-order events.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Transaction } from 'kysely';
import type { UserId } from '../../../protocol/src/ids.js';
import type { Database } from '../../db/database.js';
import {
  AMOUNT_PARKED_REASON,
  CURRENCY_PARKED_REASON,
  ensureAccounts,
  findHold,
  lockAccounts,
  operatorParkedCredits,
  PARKED_CREDIT_REASON,
} from '../../db/repositories/ledger.repo.js';
import {
  allPendingTopUpTotal,
  claimProviderEvent,
  findPayment,
  insertPayment,
  lockPayment,
  lockReceivedProviderEvent,
  type PaymentRow,
  pendingTopUpTotal,
  recordProviderEventOutcome,
  updatePayment,
} from '../../db/repositories/payments.repo.js';
import { lockedAtShared } from '../../db/repositories/users.repo.js';
import type { PaymentKind, PaymentStatus } from '../../db/tables/ledger.table.js';
import { AppError, isAppError } from '../../platform/errors.js';
import {
  createHoldIn,
  type OutboxEvent,
  type PaymentsDeps,
  PaymentsEvent,
  postHoldIn,
  reverseTransactionIn,
  runLedgerTransaction,
  voidHoldIn,
  writeEvents,
} from './ledger.js';
import {
  PaymentFailureCode,
  type PaymentProvider,
  type ProviderAnswer,
  type ProviderEvent,
  ProviderEventBody,
  ProviderEventType,
} from './provider.js';
import {
  assertAmount,
  balanceLimitReached,
  MAX_AMOUNT,
  passesPlatformLimit,
  platformLimitReached,
} from './rules.js';
import { topUpIn } from './wallet.js';

/** What applying a provider event does to a payment. */
export type EventDecision =
  | { readonly action: 'credit' }
  | { readonly action: 'post-hold' }
  | { readonly action: 'void-hold' }
  | { readonly action: 'reverse' }
  | { readonly action: 'mark-failed' }
  | { readonly action: 'ignore'; readonly reason: string };

/**
 * The settlement rules, by payment kind, status and event type:
 * - top-up: a success credits the wallet — also after the payment was marked failed (a success after
 *   a timeout: the money was taken, so it is honoured), but not after it failed as
 *   `currency_mismatch` or `amount_mismatch` (its money is parked already); a failure fails a pending payment and is
 *   ignored after a success (the money stays; disputes are not modelled);
 * - withdrawal: paid posts the hold; failed before paid voids it; failed after paid reverses the
 *   payout (the money is back in the wallet); paid after failed is ignored (failed first means
 *   the hold was voided, the money never left).
 */
export function decideProviderEvent(
  payment: { kind: PaymentKind; status: PaymentStatus; failureCode?: string | null },
  type: ProviderEvent['type'],
): EventDecision {
  if (payment.kind === 'top_up') {
    if (type === ProviderEventType.CHARGE_SUCCEEDED) {
      if (payment.status === 'succeeded') return { action: 'ignore', reason: 'already succeeded' };
      if (payment.failureCode === PaymentFailureCode.CURRENCY_MISMATCH) {
        return { action: 'ignore', reason: 'already parked for its currency' };
      }
      return payment.failureCode === PaymentFailureCode.AMOUNT_MISMATCH
        ? { action: 'ignore', reason: 'already parked for its amount' }
        : { action: 'credit' };
    }
    if (type === ProviderEventType.CHARGE_FAILED) {
      return payment.status === 'pending'
        ? { action: 'mark-failed' }
        : { action: 'ignore', reason: `failure after ${payment.status}` };
    }
    return { action: 'ignore', reason: `${type} on a top-up` };
  }
  if (type === ProviderEventType.PAYOUT_PAID) {
    return payment.status === 'pending'
      ? { action: 'post-hold' }
      : { action: 'ignore', reason: `paid after ${payment.status}` };
  }
  if (type === ProviderEventType.PAYOUT_FAILED) {
    if (payment.status === 'pending') return { action: 'void-hold' };
    if (payment.status === 'succeeded') return { action: 'reverse' };
    return { action: 'ignore', reason: 'already failed' };
  }
  return { action: 'ignore', reason: `${type} on a withdrawal` };
}

const INSTRUMENT = /^[0-9A-Za-z]{4,34}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function assertInstrument(value: string, field: 'card' | 'bankAccount') {
  if (!INSTRUMENT.test(value)) {
    throw new AppError('VALIDATION_FAILED', `${field} must be 4-34 letters or digits`, {
      details: { errors: [{ path: `body.${field}`, message: 'must be 4-34 letters or digits' }] },
    });
  }
}

const paymentEvent = (
  payment: PaymentRow,
  status: 'succeeded' | 'failed',
  failureCode?: string,
  /** The money is parked (its wallet at the balance limit), not in the wallet yet. */
  parked?: true,
): OutboxEvent => ({
  type: status === 'succeeded' ? PaymentsEvent.paymentSucceeded : PaymentsEvent.paymentFailed,
  payload: {
    paymentId: payment.id,
    userId: payment.userId,
    kind: payment.kind,
    amount: Number(payment.amount),
    ...(failureCode === undefined ? {} : { failureCode }),
    ...(parked === undefined ? {} : { parked }),
  },
});

/**
 * The payment id a user's Idempotency-Key stands for, for good: SHA-256 of the user and the key, as
 * a UUID (version 8). A top-up or withdrawal requested under a key is that payment, so the same
 * request sent again after the key's record was forgotten (≥ 24 h) finds it (`paymentOfKeyIn`)
 * instead of charging or paying out a second time — as a transfer's key is bound in the ledger.
 */
export function paymentIdOfKey(userId: UserId, key: string): string {
  const hash = createHash('sha256').update(`payment\n${userId}\n${key}`).digest();
  hash[6] = ((hash[6] ?? 0) & 0x0f) | 0x80;
  hash[8] = ((hash[8] ?? 0) & 0x3f) | 0x80;
  const hex = hash.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * The payment `paymentId` (`paymentIdOfKey`) made earlier, when it is this same request (the user,
 * kind, amount and instrument): answered again, nothing new. Another request under the key is
 * IDEMPOTENCY_KEY_REUSED (422), as within the key's retention. Undefined when the key is new.
 */
export async function paymentOfKeyIn(
  trx: Transaction<Database>,
  paymentId: string,
  request: { userId: UserId; kind: PaymentRow['kind']; amount: bigint; instrument: string },
): Promise<PaymentRow | undefined> {
  const existing = await findPayment(trx, paymentId);
  if (existing === undefined) return undefined;
  if (
    existing.userId !== request.userId ||
    existing.kind !== request.kind ||
    existing.amount !== request.amount ||
    existing.instrument !== request.instrument
  ) {
    throw new AppError('IDEMPOTENCY_KEY_REUSED', 'this Idempotency-Key was used for another payment');
  }
  return existing;
}

/** Requests a top-up (money in) inside the caller's transaction: a pending payment. */
export async function requestTopUpIn(
  trx: Transaction<Database>,
  deps: Pick<PaymentsDeps, 'settings'>,
  /** `id`: the payment's id when chosen by the caller (`paymentIdOfKey`); generated otherwise. */
  input: { userId: UserId; amount: bigint; card: string; id?: string },
): Promise<PaymentRow> {
  assertAmount(input.amount);
  assertInstrument(input.card, 'card');
  // Refused now rather than charged and then not creditable (the credit checks again: see below).
  // The top-ups still pending count as already credited: two started at once while the balance is
  // just under the limit would otherwise both be charged, and the second not credited. So do the
  // credits parked for want of room (the wallet's pending credits): they are the user's already —
  // but not a top-up parked for an operator (another amount or currency than asked), which goes back
  // to the card, is not shown as `parked`, and would refuse top-ups until an operator voids it.
  // The wallet row is locked for the rest of the transaction, so one user's requests take turns.
  const currency = deps.settings.currency;
  const [wallet, clearing] = await ensureAccounts(trx, [
    { kind: 'wallet', userId: input.userId, currency },
    { kind: 'provider_clearing', currency },
  ]);
  if (wallet === undefined || clearing === undefined) throw new Error('accounts missing');
  const locked = (await lockAccounts(trx, [wallet.id])).get(wallet.id) ?? wallet;
  const pending = await pendingTopUpTotal(trx, input.userId, currency);
  const parked =
    locked.pendingCredits === 0n ? 0n : locked.pendingCredits - (await operatorParkedCredits(trx, wallet.id));
  if (locked.posted + parked + pending + input.amount > MAX_AMOUNT) {
    throw balanceLimitReached(currency, { pendingTopUps: pending });
  }
  // The platform's books too: all the money inside (−provider clearing, and what is parked to be
  // posted from it; as read now: that row is every payment's, so it is not locked) and every top-up
  // still pending must stay within what a bigint counts, or the credit would fail in the database
  // for good (rules.ts).
  const inside = clearing.pendingDebits - clearing.posted;
  if (passesPlatformLimit(inside, await allPendingTopUpTotal(trx, currency), input.amount)) {
    throw platformLimitReached(currency);
  }
  return insertPayment(trx, {
    ...(input.id === undefined ? {} : { id: input.id }),
    userId: input.userId,
    kind: 'top_up',
    amount: input.amount,
    currency: deps.settings.currency,
    instrument: input.card,
    holdId: null,
  });
}

/**
 * Requests a withdrawal (money out) inside the caller's transaction: the amount is reserved in the
 * wallet now (INSUFFICIENT_FUNDS with the shortfall otherwise) and the payment is pending.
 */
export async function requestWithdrawalIn(
  trx: Transaction<Database>,
  deps: Pick<PaymentsDeps, 'settings'>,
  /** `id`: the payment's id when chosen by the caller (`paymentIdOfKey`); generated otherwise. */
  input: { userId: UserId; amount: bigint; bankAccount: string; id?: string },
): Promise<PaymentRow> {
  assertAmount(input.amount);
  assertInstrument(input.bankAccount, 'bankAccount');
  const currency = deps.settings.currency;
  const [clearing, wallet] = await ensureAccounts(trx, [
    { kind: 'provider_clearing', currency },
    { kind: 'wallet', userId: input.userId, currency },
  ]);
  if (clearing === undefined || wallet === undefined) throw new Error('accounts missing');
  // The id is chosen here so the hold (which the row must reference from the start) carries it.
  const id = input.id ?? randomUUID();
  const { hold } = await createHoldIn(trx, {
    opKey: `payment:hold:${id}`,
    reason: 'withdrawal',
    debitAccountId: wallet.id,
    creditAccountId: clearing.id,
    amount: input.amount,
    currency,
  });
  return insertPayment(trx, {
    id,
    userId: input.userId,
    kind: 'withdrawal',
    amount: input.amount,
    currency,
    instrument: input.bankAccount,
    holdId: hold.id,
  });
}

/** A user's own payment; another user's is NOT_FOUND (nothing revealed). */
export async function getPayment(
  deps: Pick<PaymentsDeps, 'db'>,
  userId: UserId,
  paymentId: string,
): Promise<PaymentRow> {
  const payment = await findPayment(deps.db, paymentId);
  if (payment === undefined || payment.userId !== userId) throw new AppError('NOT_FOUND', 'no such payment');
  return payment;
}

/**
 * The payments task: submits a pending payment to the provider once. Returns what happened; throws
 * when the provider could not be reached (the task retries with backoff; the provider call is
 * idempotent by payment id, so a retry cannot charge or pay twice).
 */
export async function submitPayment(
  deps: PaymentsDeps,
  provider: PaymentProvider,
  paymentId: string,
): Promise<'submitted' | 'declined' | 'already-done'> {
  const payment = await findPayment(deps.db, paymentId);
  if (payment === undefined) throw new AppError('NOT_FOUND', `payment ${paymentId} does not exist`);
  if (payment.status !== 'pending' || payment.submittedAt !== null) return 'already-done';
  if (payment.submitAttemptedAt === null) {
    const gate = await sendOnceIn(deps, paymentId);
    if (gate !== 'send') return gate;
  }
  const answer: ProviderAnswer =
    payment.kind === 'top_up'
      ? await provider.charge({
          paymentId: payment.id,
          amount: payment.amount,
          currency: payment.currency,
          card: payment.instrument,
        })
      : await provider.payout({
          paymentId: payment.id,
          amount: payment.amount,
          currency: payment.currency,
          bankAccount: payment.instrument,
        });
  return runLedgerTransaction(deps, async (trx) => {
    const locked = await lockPayment(trx, paymentId);
    if (locked === undefined || locked.submittedAt !== null) return 'already-done';
    const now = deps.clock.now();
    if (answer.accepted) {
      // A webhook may have settled it already (it can overtake this answer); keep its status.
      await updatePayment(trx, paymentId, { providerRef: answer.providerRef, submittedAt: now });
      return 'submitted';
    }
    if (locked.status !== 'pending') return 'already-done';
    if (locked.holdId !== null) await voidHoldIn(trx, deps, { holdId: locked.holdId });
    await updatePayment(trx, paymentId, {
      submittedAt: now,
      status: 'failed',
      failureCode: answer.failureCode,
      settledAt: now,
    });
    await writeEvents(trx, null, [paymentEvent(locked, 'failed', answer.failureCode)]);
    return 'declined';
  });
}

/**
 * Before a payment is first handed to the provider: marked as sent (`submit_attempted_at`; its call
 * may go through whatever this task learns of it), unless its account was locked meanwhile — a
 * request that committed just before an admin's lock (the lock waited for it) was still charged or
 * paid out, though a locked account moves no money. Such a payment is never sent: it fails as
 * `account_locked`, a withdrawal's reservation voided (the money back in the wallet). The user's row
 * is read FOR SHARE, so a lock landing now waits for this transaction: the payment was sent before
 * the lock (left to the provider, as one already in flight) or is failed here. A payment sent once is
 * never failed for a lock: the provider may have acted, and is asked again by its id.
 */
async function sendOnceIn(
  deps: PaymentsDeps,
  paymentId: string,
): Promise<'send' | 'declined' | 'already-done'> {
  return runLedgerTransaction(deps, async (trx) => {
    const locked = await lockPayment(trx, paymentId);
    if (locked === undefined || locked.status !== 'pending' || locked.submittedAt !== null)
      return 'already-done';
    if (locked.submitAttemptedAt !== null) return 'send';
    const now = deps.clock.now();
    if ((await lockedAtShared(trx, locked.userId)) == null) {
      await updatePayment(trx, paymentId, { submitAttemptedAt: now });
      return 'send';
    }
    if (locked.holdId !== null) await voidHoldIn(trx, deps, { holdId: locked.holdId });
    const code = PaymentFailureCode.ACCOUNT_LOCKED;
    await updatePayment(trx, paymentId, { status: 'failed', failureCode: code, settledAt: now });
    await writeEvents(trx, null, [paymentEvent(locked, 'failed', code)]);
    deps.log?.warn(
      { paymentId, kind: locked.kind, amount: Number(locked.amount) },
      'payment not sent to the provider: its account was locked before it was',
    );
    return 'declined';
  });
}

const isBalanceLimit = (error: unknown): boolean =>
  isAppError(error) && error.code === 'CONFLICT' && error.details?.reason === 'BALANCE_LIMIT';

export type EventOutcome = 'applied' | 'duplicate' | `ignored: ${string}`;

/**
 * Applies one verified provider event exactly once: the event id is claimed, the payment locked,
 * the decision applied to the ledger and the payment, in one transaction. A redelivered event is
 * `duplicate` and changes nothing; an event that does not fit (unknown payment, other amount, late
 * outcome) is recorded as ignored and changes no money.
 */
export async function applyProviderEvent(deps: PaymentsDeps, event: ProviderEvent): Promise<EventOutcome> {
  return runLedgerTransaction(deps, async (trx): Promise<EventOutcome> => {
    const claimed = await claimProviderEvent(trx, {
      id: event.id,
      type: event.type,
      paymentId: null,
      payload: { ...event },
    });
    if (!claimed) return 'duplicate';
    return applyClaimedEventIn(trx, deps, event);
  });
}

/**
 * Records a verified provider event as received, inside the caller's transaction, without applying
 * it (the webhook endpoint, which leaves the application to a `payments` task). False when the
 * event id was received before: a redelivery, nothing to do.
 */
export async function receiveProviderEventIn(
  trx: Transaction<Database>,
  event: ProviderEvent,
): Promise<boolean> {
  return claimProviderEvent(trx, { id: event.id, type: event.type, paymentId: null, payload: { ...event } });
}

/**
 * Applies an event recorded by `receiveProviderEventIn` exactly once (the `payments` task): its row
 * is locked and applied only while still `received`, and the outcome written in the same
 * transaction as the money moved — a task run twice (a worker killed after the commit, a redelivered
 * task) finds it done and answers `duplicate`.
 */
export async function applyReceivedProviderEvent(deps: PaymentsDeps, eventId: string): Promise<EventOutcome> {
  return runLedgerTransaction(deps, async (trx): Promise<EventOutcome> => {
    const stored = await lockReceivedProviderEvent(trx, eventId);
    if (stored === undefined) return 'duplicate';
    // Written from a checked event, but a jsonb row can be changed behind our back: a row that is
    // no longer an event is refused (the task fails, the row stays `received` for an operator).
    const event = ProviderEventBody.safeParse(stored);
    if (!event.success) {
      throw new AppError('INTERNAL', `stored provider event ${eventId} is not a provider event`, {
        cause: event.error,
      });
    }
    return applyClaimedEventIn(trx, deps, event.data);
  });
}

/** The effect of an event whose id this transaction holds (claimed or locked while `received`). */
async function applyClaimedEventIn(
  trx: Transaction<Database>,
  deps: PaymentsDeps,
  event: ProviderEvent,
): Promise<EventOutcome> {
  // An id that is not a UUID would abort the transaction in the query: check it first.
  const payment = UUID.test(event.data.paymentId) ? await lockPayment(trx, event.data.paymentId) : undefined;
  const finish = async (outcome: EventOutcome) => {
    await recordProviderEventOutcome(trx, event.id, { paymentId: payment?.id ?? null, outcome });
    return outcome;
  };
  if (payment === undefined) return finish('ignored: unknown payment');
  // A charge reported in another currency than the payment's (its amount converted) or for another
  // amount is money taken all the same: the credit below parks it for an operator. Any other outcome
  // in another currency or of another amount changes nothing (a payout is not posted, voided or
  // reversed on figures that are not the payment's), but it is said loudly: the payment may stay
  // pending until an operator settles it with the provider.
  // A failed charge is the exception: it moved no money, so a pending top-up fails whatever amount
  // or currency it names (it used to be ignored: the top-up stayed pending for good, counted as
  // coming against the balance limit). A success that arrives later is handled as after any
  // failure (credited, or parked for an operator when its own figures differ).
  const sameCurrency = event.data.currency === payment.currency;
  const sameAmount = sameCurrency && BigInt(event.data.amount) === payment.amount;
  const decision = decideProviderEvent(payment, event.type);
  if (!sameAmount && decision.action === 'mark-failed') {
    deps.log?.warn(
      {
        paymentId: payment.id,
        webhookId: event.id,
        amount: event.data.amount,
        currency: event.data.currency,
        paymentAmount: Number(payment.amount),
        paymentCurrency: payment.currency,
      },
      "top-up failure for another amount or currency than the payment's: failed all the same (no money moved)",
    );
  }
  if (!sameAmount && decision.action !== 'credit' && decision.action !== 'mark-failed') {
    if (decision.action !== 'ignore') {
      deps.log?.error(
        {
          paymentId: payment.id,
          kind: payment.kind,
          status: payment.status,
          webhookId: event.id,
          type: event.type,
          amount: event.data.amount,
          currency: event.data.currency,
          paymentAmount: Number(payment.amount),
          paymentCurrency: payment.currency,
        },
        "provider event for another amount or currency than the payment's: ignored, check the payment with the provider",
      );
    }
    return finish('ignored: amount or currency differs from the payment');
  }
  const now = deps.clock.now();
  const failureCode = event.data.failureCode ?? PaymentFailureCode.PAYOUT_FAILED;
  switch (decision.action) {
    case 'ignore':
      return finish(`ignored: ${decision.reason}`);
    case 'credit': {
      // Credited only in the wallet's currency (CURRENCY), and only as the money the provider says
      // it took: a charge reported in another currency than the payment's, or a payment made before
      // CURRENCY changed, is never credited as if it were the wallet's currency (a silent 1:1
      // conversion). It is parked in the currency received and the payment fails, for an operator.
      // Likewise a charge of another amount than the payment's, in its currency: crediting what the
      // provider took would hand the user spendable money nobody asked for (an over-charge they may
      // dispute, or a provider's error it may correct), and crediting the payment's amount would
      // record money that was not taken. It is parked as taken (the ledger follows the provider's
      // account), the payment fails as `amount_mismatch`, and an operator refunds it.
      if (!sameCurrency || payment.currency !== deps.settings.currency || !sameAmount) {
        const byCurrency = !sameCurrency || payment.currency !== deps.settings.currency;
        await parkForOperatorIn(trx, payment, {
          amount: BigInt(event.data.amount),
          currency: event.data.currency,
          by: byCurrency ? 'currency' : 'amount',
        });
        const code = byCurrency ? PaymentFailureCode.CURRENCY_MISMATCH : PaymentFailureCode.AMOUNT_MISMATCH;
        await updatePayment(trx, payment.id, { status: 'failed', failureCode: code, settledAt: now });
        await writeEvents(trx, null, [paymentEvent(payment, 'failed', code)]);
        deps.log?.error(
          {
            paymentId: payment.id,
            webhookId: event.id,
            amount: event.data.amount,
            chargedCurrency: event.data.currency,
            paymentAmount: Number(payment.amount),
            paymentCurrency: payment.currency,
            walletCurrency: deps.settings.currency,
          },
          byCurrency
            ? "top-up charged in another currency than the wallet's: not credited, parked for an operator to refund"
            : "top-up charged for another amount than the payment's: not credited, parked for an operator to refund",
        );
        return finish('applied');
      }
      // The limit is checked before any write, so the transaction is still usable when it refuses.
      const posted = await topUpIn(trx, {
        opKey: `payment:credit:${payment.id}`,
        userId: payment.userId,
        amount: payment.amount,
        currency: payment.currency,
        externalRef: event.id,
      }).catch((error: unknown) => {
        if (isBalanceLimit(error)) return undefined;
        throw error;
      });
      if (posted === undefined) {
        // Credited in the meantime up to the limit (a transfer, an escrow payout, a returned payout
        // since the top-up started): the money was taken, so it is the user's. It is parked in the
        // ledger and the payment succeeds; the reconciler credits it once the wallet has room.
        await parkCreditIn(trx, 'topUp', payment);
        await updatePayment(trx, payment.id, { status: 'succeeded', failureCode: null, settledAt: now });
        await writeEvents(trx, null, [paymentEvent(payment, 'succeeded', undefined, true)]);
        deps.log?.warn(
          { paymentId: payment.id, amount: Number(payment.amount) },
          'top-up parked: the wallet is at its balance limit; credited once it has room',
        );
        return finish('applied');
      }
      await updatePayment(trx, payment.id, {
        status: 'succeeded',
        failureCode: null,
        transactionId: posted.transactionId,
        settledAt: now,
      });
      await writeEvents(trx, posted.transactionId, [paymentEvent(payment, 'succeeded')]);
      return finish('applied');
    }
    case 'post-hold': {
      if (payment.holdId === null) throw new Error(`withdrawal ${payment.id} has no hold`);
      const posted = await postHoldIn(trx, deps, {
        holdId: payment.holdId,
        kind: 'withdrawal',
        externalRef: event.id,
      });
      await updatePayment(trx, payment.id, {
        status: 'succeeded',
        transactionId: posted.transactionId,
        settledAt: now,
      });
      await writeEvents(trx, posted.transactionId, [paymentEvent(payment, 'succeeded')]);
      return finish('applied');
    }
    case 'void-hold': {
      if (payment.holdId === null) throw new Error(`withdrawal ${payment.id} has no hold`);
      await voidHoldIn(trx, deps, { holdId: payment.holdId });
      await updatePayment(trx, payment.id, { status: 'failed', failureCode, settledAt: now });
      await writeEvents(trx, null, [paymentEvent(payment, 'failed', failureCode)]);
      return finish('applied');
    }
    case 'reverse': {
      if (payment.transactionId === null) throw new Error(`paid withdrawal ${payment.id} has no transaction`);
      // The limit is checked before any write, so the transaction is still usable when it refuses.
      const reversal = await reverseTransactionIn(trx, {
        transactionId: payment.transactionId,
        kind: 'withdrawal_reversal',
        externalRef: event.id,
      }).catch((error: unknown) => {
        if (isBalanceLimit(error)) return undefined;
        throw error;
      });
      if (reversal === undefined) {
        // The wallet was filled up to its limit since the payout: the returned money is parked in
        // the ledger (a pending hold from provider clearing to the wallet) and the event applied,
        // rather than refused on every reconcile pass for good. The reconciler posts it into the
        // wallet once there is room (`postParkedCredit`).
        await parkCreditIn(trx, 'payoutReturn', payment);
        await updatePayment(trx, payment.id, { status: 'failed', failureCode, settledAt: now });
        await writeEvents(trx, null, [paymentEvent(payment, 'failed', failureCode, true)]);
        deps.log?.warn(
          { paymentId: payment.id, amount: Number(payment.amount) },
          'returned payout parked: the wallet is at its balance limit; credited once it has room',
        );
        return finish('applied');
      }
      // `settledAt` is when the payment reached its status: the return, not the payout it undid
      // (kept, it read as failed at the instant it was paid).
      await updatePayment(trx, payment.id, {
        status: 'failed',
        failureCode,
        reversalTransactionId: reversal.transactionId,
        settledAt: now,
      });
      await writeEvents(trx, reversal.transactionId, [paymentEvent(payment, 'failed', failureCode)]);
      return finish('applied');
    }
    case 'mark-failed': {
      const code = event.data.failureCode ?? PaymentFailureCode.CARD_DECLINED;
      await updatePayment(trx, payment.id, { status: 'failed', failureCode: code, settledAt: now });
      await writeEvents(trx, null, [paymentEvent(payment, 'failed', code)]);
      return finish('applied');
    }
  }
}

type ParkedKind = keyof typeof PARKED_CREDIT_REASON;

const PARKED_KEY_PREFIX = { payoutReturn: 'payment:return:', topUp: 'payment:parked-credit:' } as const;

const parkedKey = (kind: ParkedKind, paymentId: string) => `${PARKED_KEY_PREFIX[kind]}${paymentId}`;

/** The payment a parked credit's hold belongs to (from its operation key), or undefined. */
export function paymentOfParkedKey(opKey: string): string | undefined {
  for (const prefix of Object.values(PARKED_KEY_PREFIX)) {
    if (opKey.startsWith(prefix)) return opKey.slice(prefix.length);
  }
  return undefined;
}

/**
 * Parks money from outside for a wallet that has no room for it (balance limit): a pending hold from
 * provider clearing (which holds the money) to the wallet, so the ledger records it — the wallet's
 * pending credits, the clearing account's pending debits, both checked by the audit — without taking
 * the wallet's balance past 2^53 − 1. Once per payment (its key). The reconciler posts it into the
 * wallet once it has room (`postParkedCredit`).
 */
async function parkCreditIn(
  trx: Transaction<Database>,
  kind: ParkedKind,
  payment: PaymentRow,
): Promise<void> {
  const [clearing, wallet] = await ensureAccounts(trx, [
    { kind: 'provider_clearing', currency: payment.currency },
    { kind: 'wallet', userId: payment.userId, currency: payment.currency },
  ]);
  if (clearing === undefined || wallet === undefined) throw new Error('accounts missing');
  await createHoldIn(trx, {
    opKey: parkedKey(kind, payment.id),
    reason: PARKED_CREDIT_REASON[kind],
    debitAccountId: clearing.id,
    creditAccountId: wallet.id,
    amount: payment.amount,
    currency: payment.currency,
  });
}

/** The operation key of a top-up's money parked for its currency (`parkForOperatorIn`). */
export const currencyParkedKey = (paymentId: string) => `payment:currency-parked:${paymentId}`;

/** The operation key of a top-up's money parked for its amount (`parkForOperatorIn`). */
export const amountParkedKey = (paymentId: string) => `payment:amount-parked:${paymentId}`;

/**
 * Parks a charged top-up that is not credited — its currency is not the wallet's, or its amount is
 * not the payment's: a pending hold of what the provider says it took, in that currency, from
 * provider clearing to the user's wallet of that currency. The ledger thus records the money the
 * provider holds for the user (clearing and wallet of that currency, checked by the audit) without
 * crediting anything the user can spend; the reconciler reports it every pass (it never posts it)
 * until an operator refunds it and voids the hold (`voidParkedTopUpIn`).
 */
async function parkForOperatorIn(
  trx: Transaction<Database>,
  payment: PaymentRow,
  taken: { amount: bigint; currency: string; by: 'currency' | 'amount' },
): Promise<void> {
  const { currency } = taken;
  const [clearing, wallet] = await ensureAccounts(trx, [
    { kind: 'provider_clearing', currency },
    { kind: 'wallet', userId: payment.userId, currency },
  ]);
  if (clearing === undefined || wallet === undefined) throw new Error('accounts missing');
  await createHoldIn(trx, {
    opKey: taken.by === 'currency' ? currencyParkedKey(payment.id) : amountParkedKey(payment.id),
    reason: taken.by === 'currency' ? CURRENCY_PARKED_REASON : AMOUNT_PARKED_REASON,
    debitAccountId: clearing.id,
    creditAccountId: wallet.id,
    amount: taken.amount,
    currency,
  });
}

/** What `voidParkedTopUpIn` voided. */
export interface VoidedParkedTopUp {
  readonly payment: PaymentRow;
  readonly holdId: string;
  readonly amount: bigint;
  readonly currency: string;
}

/**
 * The operator's end of a top-up parked for its currency or amount (`currency_mismatch`,
 * `amount_mismatch`), once they refunded the charge at the provider: its hold is voided (the ledger
 * keeps it, `voided` with its instant; nothing was ever posted, so nothing moves), and it is no
 * longer reported. NOT_FOUND for an unknown payment; CONFLICT (`reason`) for a payment that is not
 * such a top-up (`NOT_PARKED`) or whose hold is voided already (`ALREADY_VOIDED`).
 */
export async function voidParkedTopUpIn(
  trx: Transaction<Database>,
  deps: Pick<PaymentsDeps, 'clock'>,
  paymentId: string,
): Promise<VoidedParkedTopUp> {
  const payment = UUID.test(paymentId) ? await lockPayment(trx, paymentId) : undefined;
  if (payment === undefined) throw new AppError('NOT_FOUND', 'no such payment');
  const opKey =
    payment.kind !== 'top_up' || payment.status !== 'failed'
      ? undefined
      : payment.failureCode === PaymentFailureCode.CURRENCY_MISMATCH
        ? currencyParkedKey(payment.id)
        : payment.failureCode === PaymentFailureCode.AMOUNT_MISMATCH
          ? amountParkedKey(payment.id)
          : undefined;
  const hold = opKey === undefined ? undefined : await findHold(trx, { opKey });
  if (hold === undefined) {
    throw new AppError('CONFLICT', 'this payment is not a top-up parked for an operator', {
      details: { reason: 'NOT_PARKED', status: payment.status, kind: payment.kind },
    });
  }
  if (hold.status !== 'pending') {
    throw new AppError('CONFLICT', 'the parked top-up was settled already', {
      details: { reason: 'ALREADY_VOIDED', status: hold.status },
    });
  }
  await voidHoldIn(trx, deps, { holdId: hold.id });
  return { payment, holdId: hold.id, amount: hold.amount, currency: hold.currency };
}

/**
 * Posts a parked credit into its wallet (the reconciler, every pass): `posted` (the payment now names
 * its transaction: a top-up's credit, a returned payout's reversal), `parked` while the wallet still
 * has no room, `gone` when nothing is parked for this payment (posted meanwhile).
 */
export async function postParkedCredit(
  deps: Pick<PaymentsDeps, 'db' | 'clock' | 'log'>,
  paymentId: string,
): Promise<'posted' | 'parked' | 'gone'> {
  return runLedgerTransaction(deps, async (trx) => {
    const payment = await lockPayment(trx, paymentId);
    if (payment === undefined) return 'gone';
    const kind: ParkedKind = payment.kind === 'top_up' ? 'topUp' : 'payoutReturn';
    const hold = await findHold(trx, { opKey: parkedKey(kind, paymentId) });
    if (hold === undefined || hold.status !== 'pending') return 'gone';
    const posted = await postHoldIn(trx, deps, {
      holdId: hold.id,
      kind: kind === 'topUp' ? 'top_up' : 'withdrawal_reversal',
      memo: kind === 'topUp' ? `top-up ${payment.id}` : `returned payout of payment ${payment.id}`,
    }).catch((error: unknown) => {
      if (isBalanceLimit(error)) return undefined;
      throw error;
    });
    if (posted === undefined) return 'parked';
    await updatePayment(
      trx,
      payment.id,
      kind === 'topUp'
        ? { transactionId: posted.transactionId }
        : { reversalTransactionId: posted.transactionId },
    );
    return 'posted';
  });
}

/**
 * For a payments task that exhausted its retries before the provider ever accepted the payment: the
 * payment fails (`provider_unavailable`) and a withdrawal's reservation ends. A success that still
 * arrives later for a top-up is honoured (decideProviderEvent).
 */
export async function failUnsubmittedPayment(deps: PaymentsDeps, paymentId: string): Promise<boolean> {
  return runLedgerTransaction(deps, async (trx) => {
    const payment = await lockPayment(trx, paymentId);
    if (payment === undefined || payment.status !== 'pending' || payment.submittedAt !== null) return false;
    if (payment.holdId !== null) await voidHoldIn(trx, deps, { holdId: payment.holdId });
    const now = deps.clock.now();
    const code = PaymentFailureCode.PROVIDER_UNAVAILABLE;
    await updatePayment(trx, payment.id, { status: 'failed', failureCode: code, settledAt: now });
    await writeEvents(trx, null, [paymentEvent(payment, 'failed', code)]);
    return true;
  });
}
