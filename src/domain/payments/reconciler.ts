/**
 * Payments reconciliation: nothing the provider or our own tasks left unfinished stays pending for
 * good (a top-up never credited, a withdrawal's money reserved forever), and a paid withdrawal its
 * bank returned is credited back even when that news was lost. Each pass of a worker process looks
 * for, oldest first, what has waited longer than `afterMs`:
 * 1. pending payments the provider accepted whose outcome never arrived (webhooks given up on while
 *    our endpoint was down, or held in a sandbox that restarted): the provider is asked to send the
 *    outcome again. The events carry their original ids, so whatever was applied meanwhile is a
 *    duplicate the webhook drops;
 * 2. pending payments never submitted (their `payments.submit` task ran out of retries while the
 *    database was down, so its exhausted handler could not settle them either): their submit task is
 *    queued again through the outbox, keyed by the payment id — a no-op while it still waits or
 *    retries, a fresh budget when it failed. Submitting again is the designed idempotent path: the
 *    provider answers the same payment id the same way and its events are applied once by their ids;
 * 3. provider events recorded but never applied (their `payments.apply-event` task ran out of
 *    retries): their apply task is queued again the same way, keyed by the event id; the event row,
 *    locked while `received`, makes applying once-only. This needs nothing from the provider, and
 *    covers events of payments no longer pending (a payout failing after it was paid).
 * 4. withdrawals paid within `payoutReturnWindowMs` (PAYMENTS_PAYOUT_RETURN_WINDOW_S) and longer
 *    than `afterMs` ago: the provider is asked again, as in 1, because the bank may have returned
 *    the money (`payout.failed` after `payout.paid`) and that webhook may be lost; without this the
 *    returned money would never reach the wallet again. Applying the failure reverses the payout
 *    (`decideProviderEvent`: refund to the wallet, ledger reversal); a paid payout's `payout.paid`
 *    sent again is a duplicate. Back-off, so a real provider is not asked every pass for days: a
 *    payment asked at age a (since it was paid) is not asked again before age 2a — about ten asks
 *    over a week from an `afterMs` of ten minutes. Kept in this process's memory: after a restart
 *    each is asked once more early, which is harmless.
 * 5. contracts whose escrow should have moved longer than `afterMs` ago and has not, because the
 *    task that moves it gave up (a database outage longer than its retries) and nothing else would
 *    enqueue it again — the outbox event that did was published:
 *    - ended (completed, cancelled, resolved) with the escrow still held: the worker never paid, or
 *      the hirer never refunded. Its `payments.escrow` task is queued again;
 *    - delivered past `auto_approve_at`: approved by the clock (the hirer can no longer ask for
 *      changes or dispute), but never completed, so the escrow never released. Its
 *      `contracts.auto-approve` task (keyed by the delivery's version) is queued again.
 *    Both through the outbox (`contract.requeued`, carrying only the contract and what to queue),
 *    keyed as the first task: a no-op while that one waits or retries, a fresh budget when it failed.
 *    The escrow row moves the money once, and the timer completes the contract once, whatever runs.
 * 6. money from outside parked because its wallet was at its balance limit when the event was
 *    applied — a bank's return of a paid payout, a charged top-up whose wallet filled up meanwhile
 *    (`applyReceivedProviderEvent`: a pending hold from provider clearing to the wallet, so the
 *    ledger holds the money, rather than an event refused, or a top-up asked about, on every pass):
 *    each is posted into the wallet once it has room (the user spent or withdrew), else left parked
 *    until the next pass. Likewise a party's share of an escrow resolved while their wallet was at
 *    the limit (`escrow.ts`: kept in the escrow account under a pending hold to the wallet, so the
 *    contract settles rather than its escrow task failing every pass). Each credited wallet's owner
 *    is told (`announce`: `wallet.changed` to their sockets), as for every other balance change.
 * 7. top-ups charged in another currency than the wallet's or for another amount than the
 *    payment's (`currency_mismatch`, `amount_mismatch`: parked as taken, never credited): never
 *    posted, only reported — a warning per pass and `currencyParked` — until an operator refunds
 *    the charge and voids the hold (`POST /v1/admin/payments/:id/void-parked`).
 * 8. top-ups failed as `provider_unavailable` without the provider ever answering (their submit task
 *    gave up: every call failed or timed out here), requested within `unconfirmedTopUpWindowMs` (a
 *    week) and failed longer than `afterMs` ago: a call that timed out may have gone through, and if
 *    that charge's webhook is lost for good the money taken is never credited (a withdrawal in that
 *    state stays pending and is submitted again, 2). The provider is asked, `unconfirmed`, whether it
 *    charged them — never to charge now: a charge it made is reported and credited once (a success
 *    after a failure is honoured, `decideProviderEvent`; its events keep their ids, so the lost
 *    webhook arriving later is a duplicate), one it never took stays failed. Asked at doubling ages
 *    since the failure, as in 4, and once more afterMs before the window closes.
 * Each of 1-3 and 5-7 is looked at at most once per `afterMs` by each process. A task that keeps
 * failing for a permanent reason (an event row that no longer parses) is thus retried every
 * `afterMs` and logs its error each time, for an operator.
 */
import type { Kysely } from 'kysely';
import type { Database } from '../../db/database.js';
import { overdueAutoApprovals } from '../../db/repositories/contracts.repo.js';
import {
  currencyParkedHolds,
  parkedCreditHolds,
  parkedEscrowShareHolds,
  unsettledEscrows,
} from '../../db/repositories/ledger.repo.js';
import { insertOutboxEvent } from '../../db/repositories/outbox.repo.js';
import {
  findPayment,
  type PaymentRow,
  paidWithdrawals,
  stalePendingPayments,
  unappliedProviderEvents,
  unconfirmedFailedTopUps,
  unsubmittedPendingPayments,
} from '../../db/repositories/payments.repo.js';
import type { Logger } from '../../platform/logger.js';
import type { CancelTimer, Timers } from '../../platform/timers.js';
import { contractOfParkedEscrowKey, postParkedEscrowShare } from './escrow.js';
import { amountParkedKey, currencyParkedKey, paymentOfParkedKey, postParkedCredit } from './payments.js';
import { queueApplyIn, queueSubmitIn } from './payments-service.js';
import type { PaymentProvider } from './provider.js';
import type { AnnounceWalletChange } from './wallet-service.js';

const OPERATOR_PARKED_PREFIXES = [currencyParkedKey(''), amountParkedKey('')];
const paymentOfCurrencyParkedKey = (opKey: string) => {
  const prefix = OPERATOR_PARKED_PREFIXES.find((p) => opKey.startsWith(p));
  return prefix === undefined ? null : opKey.slice(prefix.length);
};

/** Rows looked at per kind and run (oldest first); the rest wait for the next run. */
const BATCH = 100;

/**
 * How long after it was requested a top-up failed as `provider_unavailable` is asked about (8): a
 * provider keeps its charges and retries their webhooks for days (three at Stripe); a week of asks
 * also covers our endpoint or the provider's resend being down over a long weekend.
 */
export const UNCONFIRMED_TOP_UP_WINDOW_MS = 7 * 24 * 3_600_000;

/**
 * When a payment asked about at `now` is due again: asked at age a (since `since`), not again before
 * age 2a. The doubling may step over the window's end (the last ask then anywhere in its second
 * half): one last ask is due `afterMs` before the window closes, and none after it.
 */
function nextAsk(now: number, since: number, windowEnd: number, afterMs: number): number {
  const lastAsk = windowEnd - afterMs;
  const due = now + Math.max(now - since, afterMs);
  if (due <= lastAsk) return due;
  return lastAsk > now ? lastAsk : windowEnd;
}

/** What one pass did. */
export interface ReconcileRun {
  /** Accepted payments whose outcome the provider was asked to send again. */
  readonly asked: number;
  /** Paid withdrawals the provider was asked about again (a bank return whose webhook was lost). */
  readonly askedPaid: number;
  /** Payments never submitted whose `payments.submit` task was queued again. */
  readonly resubmitted: number;
  /** Provider events never applied whose `payments.apply-event` task was queued again. */
  readonly requeued: number;
  /** Ended contracts whose escrow was still held: their `payments.escrow` task queued again. */
  readonly escrowsRequeued: number;
  /** Delivered contracts past their auto-approve instant: their timer task queued again. */
  readonly autoApprovalsRequeued: number;
  /** Top-ups failed as `provider_unavailable` the provider was asked about (did it charge them?). */
  readonly askedUnconfirmed: number;
  /** Parked credits (returned payouts, charged top-ups whose wallet was at its limit) now credited. */
  readonly parkedPosted: number;
  /**
   * Top-ups parked for their currency (not the wallet's) or amount (not the payment's) reported
   * again, waiting for an operator.
   */
  readonly currencyParked: number;
}

/**
 * Outbox event that queues a contract's overdue task again (an escrow move, an auto-approve timer).
 * A `contract.` event, so the relay enqueues its task (event-tasks.ts) under the id of the first
 * one; it names no party to notify and no room message, so nobody is told anything again.
 */
export const CONTRACT_TASK_REQUEUED = 'contract.requeued';

export interface PaymentReconciler {
  /** One pass. */
  readonly runOnce: () => Promise<ReconcileRun>;
  readonly stop: () => Promise<void>;
}

/** Ids looked at within the last `afterMs`, left out of the next queries (not skipped after them). */
function recentlySeen(afterMs: number) {
  const seenAt = new Map<string, number>();
  return {
    prune: (now: number) => {
      for (const [id, at] of seenAt) if (now - at >= afterMs) seenAt.delete(id);
    },
    ids: () => [...seenAt.keys()],
    has: (id: string) => seenAt.has(id),
    add: (id: string, now: number) => void seenAt.set(id, now),
    forget: (id: string) => void seenAt.delete(id),
  };
}

/**
 * Ids asked about, each with the time before which it is not asked again; left out of the next
 * queries until then. Entries leave once due, so it holds at most the window's paid withdrawals.
 */
function askedUntil() {
  const dueAt = new Map<string, number>();
  return {
    prune: (now: number) => {
      for (const [id, at] of dueAt) if (at <= now) dueAt.delete(id);
    },
    ids: () => [...dueAt.keys()],
    has: (id: string) => dueAt.has(id),
    add: (id: string, due: number) => void dueAt.set(id, due),
    forget: (id: string) => void dueAt.delete(id),
  };
}

const resendRequest = (payment: PaymentRow, unconfirmed?: true) =>
  payment.kind === 'top_up'
    ? {
        kind: 'top_up' as const,
        paymentId: payment.id,
        amount: payment.amount,
        currency: payment.currency,
        card: payment.instrument,
        ...(unconfirmed === undefined ? {} : { unconfirmed }),
      }
    : {
        kind: 'withdrawal' as const,
        paymentId: payment.id,
        amount: payment.amount,
        currency: payment.currency,
        bankAccount: payment.instrument,
      };

export function startPaymentReconciler(deps: {
  readonly db: Kysely<Database>;
  readonly provider: Pick<PaymentProvider, 'resendOutcome'>;
  readonly timers: Timers;
  readonly log: Pick<Logger, 'info' | 'warn'>;
  /** PAYMENTS_RECONCILE_AFTER_S in ms: how long a payment or an event may wait for its outcome. */
  readonly afterMs: number;
  /**
   * PAYMENTS_PAYOUT_RETURN_WINDOW_S in ms: how long after a withdrawal was paid its bank may still
   * return it; 0 = paid withdrawals are never asked about again.
   */
  readonly payoutReturnWindowMs: number;
  /**
   * How long after it was requested a top-up failed as `provider_unavailable` is asked about (8);
   * UNCONFIRMED_TOP_UP_WINDOW_MS by default, 0 = never.
   */
  readonly unconfirmedTopUpWindowMs?: number;
  /**
   * Tells a user's sockets their balance changed (`wallet.changed` over the bus), after parked money
   * was credited to their wallet. Optional so tests of other steps need none.
   */
  readonly announce?: AnnounceWalletChange;
}): PaymentReconciler {
  const asked = recentlySeen(deps.afterMs);
  const askedPaid = askedUntil();
  const askedUnconfirmed = askedUntil();
  const unconfirmedWindowMs = deps.unconfirmedTopUpWindowMs ?? UNCONFIRMED_TOP_UP_WINDOW_MS;
  const resubmitted = recentlySeen(deps.afterMs);
  const requeued = recentlySeen(deps.afterMs);
  const escrowsRequeued = recentlySeen(deps.afterMs);
  const autoApprovalsRequeued = recentlySeen(deps.afterMs);
  const parkedTried = recentlySeen(deps.afterMs);
  const currencyReported = recentlySeen(deps.afterMs);
  // The ledger's clock is this process's timers (the same instant as the queries' cut-offs).
  const ledger = { db: deps.db, clock: { now: () => new Date(deps.timers.now()) } };
  let cancel: CancelTimer | undefined;
  let running: Promise<ReconcileRun> | undefined;
  let stopped = false;

  /** 1. Asks the provider again about accepted payments whose outcome never came. */
  const askProvider = async (now: number): Promise<number> => {
    // Those asked about within afterMs are left out of the query, not skipped after it: a hundred
    // payments that never settle (a credit the balance cap refuses) must not hide the newer ones.
    const stale = await stalePendingPayments(deps.db, new Date(now - deps.afterMs), BATCH, asked.ids());
    let count = 0;
    for (const payment of stale) {
      if (asked.has(payment.id)) continue;
      asked.add(payment.id, now);
      try {
        await deps.provider.resendOutcome(resendRequest(payment));
        count += 1;
        deps.log.info(
          { paymentId: payment.id, kind: payment.kind },
          'asked the provider to resend a lost outcome',
        );
      } catch (error) {
        deps.log.warn(
          { err: error, paymentId: payment.id },
          'provider did not take the resend; next run retries',
        );
        asked.forget(payment.id);
      }
    }
    return count;
  };

  /** 4. Asks the provider again about paid withdrawals its bank may have returned since. */
  const askAboutPaid = async (now: number): Promise<number> => {
    if (deps.payoutReturnWindowMs <= 0) return 0;
    // Left out of the query while backed off, as in 1: the oldest cannot hide the newer ones.
    const paid = await paidWithdrawals(
      deps.db,
      new Date(now - deps.payoutReturnWindowMs),
      new Date(now - deps.afterMs),
      BATCH,
      askedPaid.ids(),
    );
    let count = 0;
    for (const payment of paid) {
      if (askedPaid.has(payment.id) || payment.settledAt === null) continue;
      const age = now - payment.settledAt.getTime();
      const windowEnd = payment.settledAt.getTime() + deps.payoutReturnWindowMs;
      askedPaid.add(payment.id, nextAsk(now, payment.settledAt.getTime(), windowEnd, deps.afterMs));
      try {
        await deps.provider.resendOutcome(resendRequest(payment));
        count += 1;
        deps.log.info(
          { paymentId: payment.id, paidAgoS: Math.round(age / 1000) },
          'asked the provider again about a paid withdrawal (a bank return may be lost)',
        );
      } catch (error) {
        deps.log.warn(
          { err: error, paymentId: payment.id },
          'provider did not take the resend; next run retries',
        );
        askedPaid.forget(payment.id);
      }
    }
    return count;
  };

  /** 8. Asks the provider whether it charged top-ups failed as `provider_unavailable`. */
  const askAboutUnconfirmed = async (now: number): Promise<number> => {
    if (unconfirmedWindowMs <= 0) return 0;
    // Left out of the query while backed off, as in 1: the oldest cannot hide the newer ones.
    const failed = await unconfirmedFailedTopUps(
      deps.db,
      new Date(now - unconfirmedWindowMs),
      new Date(now - deps.afterMs),
      BATCH,
      askedUnconfirmed.ids(),
    );
    let count = 0;
    for (const payment of failed) {
      if (askedUnconfirmed.has(payment.id) || payment.settledAt === null) continue;
      const windowEnd = payment.createdAt.getTime() + unconfirmedWindowMs;
      askedUnconfirmed.add(payment.id, nextAsk(now, payment.settledAt.getTime(), windowEnd, deps.afterMs));
      try {
        await deps.provider.resendOutcome(resendRequest(payment, true));
        count += 1;
        deps.log.info(
          { paymentId: payment.id, failedAgoS: Math.round((now - payment.settledAt.getTime()) / 1000) },
          'asked the provider whether it charged a top-up failed as provider_unavailable',
        );
      } catch (error) {
        deps.log.warn(
          { err: error, paymentId: payment.id },
          'provider did not take the resend; next run retries',
        );
        askedUnconfirmed.forget(payment.id);
      }
    }
    return count;
  };

  /** 2. Queues the submit task again for payments the provider never accepted. */
  const resubmit = async (now: number): Promise<number> => {
    const unsubmitted = await unsubmittedPendingPayments(
      deps.db,
      new Date(now - deps.afterMs),
      BATCH,
      resubmitted.ids(),
    );
    if (unsubmitted.length === 0) return 0;
    await deps.db.transaction().execute(async (trx) => {
      for (const payment of unsubmitted) await queueSubmitIn(trx, payment);
    });
    for (const payment of unsubmitted) {
      resubmitted.add(payment.id, now);
      deps.log.info(
        { paymentId: payment.id, kind: payment.kind },
        'payment never submitted: its submit task queued again',
      );
    }
    return unsubmitted.length;
  };

  /** 3. Queues the apply task again for provider events recorded and never applied. */
  const requeueApply = async (now: number): Promise<number> => {
    const unapplied = await unappliedProviderEvents(
      deps.db,
      new Date(now - deps.afterMs),
      BATCH,
      requeued.ids(),
    );
    if (unapplied.length === 0) return 0;
    await deps.db.transaction().execute(async (trx) => {
      for (const event of unapplied)
        await queueApplyIn(trx, { eventId: event.id, paymentId: event.paymentId });
    });
    for (const event of unapplied) {
      requeued.add(event.id, now);
      deps.log.info(
        { webhookId: event.id, paymentId: event.paymentId },
        'provider event never applied: its apply task queued again',
      );
    }
    return unapplied.length;
  };

  /** 5. Queues the escrow task again for ended contracts whose escrow is still held. */
  const requeueEscrows = async (now: number): Promise<number> => {
    const unsettled = await unsettledEscrows(
      deps.db,
      new Date(now - deps.afterMs),
      BATCH,
      escrowsRequeued.ids(),
    );
    if (unsettled.length === 0) return 0;
    await deps.db.transaction().execute(async (trx) => {
      for (const escrow of unsettled) {
        await insertOutboxEvent(trx, CONTRACT_TASK_REQUEUED, {
          contractId: escrow.contractId,
          escrow: escrow.action,
        });
      }
    });
    for (const escrow of unsettled) {
      escrowsRequeued.add(escrow.contractId, now);
      deps.log.warn(
        { contractId: escrow.contractId, action: escrow.action },
        'contract ended with its escrow still held: its escrow task queued again',
      );
    }
    return unsettled.length;
  };

  /** 5. Queues the auto-approve timer again for delivered contracts approved by the clock. */
  const requeueAutoApprovals = async (now: number): Promise<number> => {
    const overdue = await overdueAutoApprovals(
      deps.db,
      new Date(now - deps.afterMs),
      BATCH,
      autoApprovalsRequeued.ids(),
    );
    if (overdue.length === 0) return 0;
    await deps.db.transaction().execute(async (trx) => {
      for (const contract of overdue) {
        await insertOutboxEvent(trx, CONTRACT_TASK_REQUEUED, {
          contractId: contract.contractId,
          version: contract.version,
          autoApproveAt: contract.autoApproveAt.toISOString(),
        });
      }
    });
    for (const contract of overdue) {
      autoApprovalsRequeued.add(contract.contractId, now);
      deps.log.warn(
        { contractId: contract.contractId, version: contract.version },
        'delivery past its auto-approve instant still not completed: its timer task queued again',
      );
    }
    return overdue.length;
  };

  /** 6. Credits parked money whose wallet has room now, and tells its owner's sockets. */
  const postParked = async (now: number): Promise<number> => {
    const parked = await parkedCreditHolds(deps.db, BATCH, parkedTried.ids());
    let count = 0;
    const credited: string[] = [];
    try {
      for (const hold of parked) {
        parkedTried.add(hold.id, now);
        const paymentId = paymentOfParkedKey(hold.opKey);
        if (paymentId === undefined) continue;
        const outcome = await postParkedCredit(ledger, paymentId);
        if (outcome === 'posted') {
          count += 1;
          const payment = await findPayment(deps.db, paymentId);
          if (payment !== undefined) credited.push(payment.userId);
          deps.log.info({ paymentId }, 'parked credit posted to its wallet');
        } else if (outcome === 'parked') {
          deps.log.warn({ paymentId }, 'credit still parked: its wallet is at its balance limit');
        }
      }
      // Escrow shares parked for a party whose wallet was at the limit when the contract settled.
      const shares = await parkedEscrowShareHolds(deps.db, BATCH, parkedTried.ids());
      for (const hold of shares) {
        parkedTried.add(hold.id, now);
        const { outcome, userId } = await postParkedEscrowShare(ledger, hold.id);
        const contractId = contractOfParkedEscrowKey(hold.opKey);
        if (outcome === 'posted') {
          count += 1;
          if (userId !== undefined) credited.push(userId);
          deps.log.info({ contractId, holdId: hold.id }, 'parked escrow share posted to its wallet');
        } else if (outcome === 'parked') {
          deps.log.warn(
            { contractId, holdId: hold.id },
            'escrow share still parked: its wallet is at its balance limit',
          );
        }
      }
    } finally {
      // Those credited before a failure are told too.
      deps.announce?.(credited);
    }
    return count;
  };

  /** 7. Reports top-ups parked for their currency: an operator must refund them. */
  const reportCurrencyParked = async (now: number): Promise<number> => {
    const parked = await currencyParkedHolds(deps.db, BATCH, currencyReported.ids());
    for (const hold of parked) {
      currencyReported.add(hold.id, now);
      deps.log.warn(
        {
          holdId: hold.id,
          paymentId: paymentOfCurrencyParkedKey(hold.opKey),
          reason: hold.reason,
          amount: Number(hold.amount),
          currency: hold.currency,
        },
        "top-up charged in another currency than the wallet's or for another amount than asked, parked: refund it at the provider, then POST /v1/admin/payments/:id/void-parked",
      );
    }
    return parked.length;
  };

  const pass = async (): Promise<ReconcileRun> => {
    const now = deps.timers.now();
    for (const seen of [
      asked,
      resubmitted,
      requeued,
      askedPaid,
      askedUnconfirmed,
      escrowsRequeued,
      autoApprovalsRequeued,
      parkedTried,
      currencyReported,
    ]) {
      seen.prune(now);
    }
    // Each part on its own: one failing (the provider down) must not hold back the others.
    const settle = (part: string, run: Promise<number>) =>
      run.catch((error: unknown) => {
        deps.log.warn({ err: error, part }, 'payments reconciliation step failed; next run retries');
        return 0;
      });
    return {
      requeued: await settle('apply-event', requeueApply(now)),
      resubmitted: await settle('submit', resubmit(now)),
      asked: await settle('resend', askProvider(now)),
      askedPaid: await settle('resend-paid', askAboutPaid(now)),
      askedUnconfirmed: await settle('resend-unconfirmed', askAboutUnconfirmed(now)),
      escrowsRequeued: await settle('escrow', requeueEscrows(now)),
      autoApprovalsRequeued: await settle('auto-approve', requeueAutoApprovals(now)),
      parkedPosted: await settle('parked-credits', postParked(now)),
      currencyParked: await settle('currency-parked', reportCurrencyParked(now)),
    };
  };

  const runOnce = (): Promise<ReconcileRun> => {
    const next = (running ?? Promise.resolve()).then(pass, pass);
    running = next;
    return next;
  };

  const schedule = () => {
    if (stopped) return;
    // Often enough that a lost outcome waits about afterMs, at most once a minute.
    cancel = deps.timers.schedule(Math.min(60_000, Math.max(1_000, deps.afterMs / 2)), () => {
      runOnce()
        .catch((error: unknown) =>
          deps.log.warn({ err: error }, 'payments reconciliation failed; next run retries'),
        )
        .finally(schedule);
    });
  };
  schedule();

  return {
    runOnce,
    stop: async () => {
      stopped = true;
      cancel?.();
      await running?.catch(() => undefined);
    },
  };
}
