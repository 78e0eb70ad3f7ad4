/**
 * Payments reconciliation: a payment the provider accepted whose outcome never arrived (its webhooks
 * were given up on while our endpoint was down, or held in a sandbox that restarted) would stay
 * pending for good: a top-up never credited, a withdrawal's money reserved forever. Worker processes
 * look for such payments (pending, accepted more than `afterMs` ago) and ask the provider to send
 * their outcome again. The events carry their original ids, so whatever was applied meanwhile is a
 * duplicate the webhook drops; a payment is asked about at most once per `afterMs` by each process.
 */
import type { Kysely } from 'kysely';
import type { Database } from '../../db/database.js';
import { stalePendingPayments } from '../../db/repositories/payments.repo.js';
import type { Logger } from '../../platform/logger.js';
import type { CancelTimer, Timers } from '../../platform/timers.js';
import type { PaymentProvider } from './provider.js';

/** Payments asked about per run (oldest first); the rest wait for the next run. */
const BATCH = 100;

export interface PaymentReconciler {
  /** One pass: returns how many payments the provider was asked about. */
  readonly runOnce: () => Promise<number>;
  readonly stop: () => Promise<void>;
}

export function startPaymentReconciler(deps: {
  readonly db: Kysely<Database>;
  readonly provider: Pick<PaymentProvider, 'resendOutcome'>;
  readonly timers: Timers;
  readonly log: Pick<Logger, 'info' | 'warn'>;
  /** PAYMENTS_RECONCILE_AFTER_S in ms: how long an accepted payment may wait for its outcome. */
  readonly afterMs: number;
}): PaymentReconciler {
  const askedAt = new Map<string, number>();
  let cancel: CancelTimer | undefined;
  let running: Promise<number> | undefined;
  let stopped = false;

  const pass = async (): Promise<number> => {
    const now = deps.timers.now();
    for (const [id, at] of askedAt) if (now - at >= deps.afterMs) askedAt.delete(id);
    // Those asked about within afterMs are left out of the query, not skipped after it: a hundred
    // payments that never settle (a credit the balance cap refuses) must not hide the newer ones.
    const stale = await stalePendingPayments(deps.db, new Date(now - deps.afterMs), BATCH, [
      ...askedAt.keys(),
    ]);
    let asked = 0;
    for (const payment of stale) {
      if (askedAt.has(payment.id)) continue;
      askedAt.set(payment.id, now);
      try {
        await deps.provider.resendOutcome(
          payment.kind === 'top_up'
            ? {
                kind: 'top_up',
                paymentId: payment.id,
                amount: payment.amount,
                currency: payment.currency,
                card: payment.instrument,
              }
            : {
                kind: 'withdrawal',
                paymentId: payment.id,
                amount: payment.amount,
                currency: payment.currency,
                bankAccount: payment.instrument,
              },
        );
        asked += 1;
        deps.log.info(
          { paymentId: payment.id, kind: payment.kind },
          'asked the provider to resend a lost outcome',
        );
      } catch (error) {
        deps.log.warn(
          { err: error, paymentId: payment.id },
          'provider did not take the resend; next run retries',
        );
        askedAt.delete(payment.id);
      }
    }
    return asked;
  };

  const runOnce = (): Promise<number> => {
    const next = (running ?? Promise.resolve(0)).then(pass, pass);
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
