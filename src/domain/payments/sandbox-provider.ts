/**
 * The sandbox provider (PAYMENTS_PROVIDER=sandbox, the default): behaves like a real provider,
 * deterministically, so the whole money flow runs in development and tests without an account anywhere.
 *
 * Cards: 4242424242424242 succeeds · 4000000000000002 is declined · 4000000000009995 fails for
 * insufficient funds · 4000000000000077 succeeds with its webhook delayed by SANDBOX_WEBHOOK_DELAY_MS ·
 * any other number is declined. Bank accounts: ending 0000, the payout is accepted and paid, then
 * fails (`payout.paid` followed by `payout.failed`: the withdrawal must be reversed); any other
 * account is paid. Asked to resend (`resendOutcome`), it sends a payment's events again at once,
 * with their ids: the failure of a 0000 payout too, whenever it is asked. A top-up asked about
 * `unconfirmed` (we never saw its charge accepted) is reported only if the sandbox remembers charging
 * it: one it never took is not charged then (nor one whose answer it forgot: a sandbox limit).
 *
 * Outcomes leave as webhook events through the `deliver` port (the edge signs them and POSTs them to
 * our webhook endpoint over real HTTP). Every `duplicateEvery`-th event is delivered twice; a failed
 * delivery is retried with backoff, like a real provider. The same payment id charged twice answers
 * the first answer and sends no new events (the provider-side idempotency key). Only the last
 * `answersKept` answers are kept in memory (it used to be every answer for the life of the worker);
 * a payment asked about again after its answer was forgotten is decided again, which gives the same
 * answer (the card or account decides, and the production `newId` derives the reference from the
 * payment id) and sends its events again with the same ids: duplicates the receiver drops.
 */
import type { Timers } from '../../platform/timers.js';
import {
  type ChargeRequest,
  PaymentFailureCode,
  type PaymentProvider,
  type PayoutRequest,
  type ProviderAnswer,
  type ProviderEvent,
  ProviderEventType,
} from './provider.js';

export const SandboxCard = {
  SUCCEEDS: '4242424242424242',
  DECLINED: '4000000000000002',
  INSUFFICIENT_FUNDS: '4000000000009995',
  DELAYED_WEBHOOK: '4000000000000077',
} as const;

/** What the sandbox does with a card: answer, and after how long (ms) its success webhook leaves. */
export function sandboxChargeOutcome(
  card: string,
  delayedWebhookMs: number,
): { answer: 'accepted'; webhookDelayMs: number } | { answer: 'declined'; failureCode: PaymentFailureCode } {
  switch (card) {
    case SandboxCard.SUCCEEDS:
      return { answer: 'accepted', webhookDelayMs: 0 };
    case SandboxCard.DELAYED_WEBHOOK:
      return { answer: 'accepted', webhookDelayMs: delayedWebhookMs };
    case SandboxCard.INSUFFICIENT_FUNDS:
      return { answer: 'declined', failureCode: PaymentFailureCode.INSUFFICIENT_FUNDS };
    default:
      return { answer: 'declined', failureCode: PaymentFailureCode.CARD_DECLINED };
  }
}

/** Whether a payout to this bank account fails after being paid (accounts ending 0000). */
export const sandboxPayoutFailsLater = (bankAccount: string): boolean => bankAccount.endsWith('0000');

/** How many answers the sandbox keeps by default (a few hundred bytes each: about a few MB). */
export const SANDBOX_ANSWERS_KEPT = 10_000;

/** Delivery retry delays after a failed attempt, ms (Standard Webhooks' schedule, compressed). */
const RETRY_DELAYS_MS = [1_000, 5_000, 30_000, 120_000, 300_000];

export interface SandboxProvider extends PaymentProvider {
  /** Events scheduled or being retried; 0 when all were delivered (or given up). */
  readonly inFlight: () => number;
  /** Cancels scheduled deliveries. */
  readonly stop: () => void;
  /** How many answers are kept in memory (at most `answersKept`). */
  readonly answersKept: () => number;
}

export function createSandboxProvider(deps: {
  readonly timers: Timers;
  /** Sends one event (signed, over HTTP); rejects when the receiver did not answer 2xx. */
  readonly deliver: (event: ProviderEvent) => Promise<void>;
  /**
   * An id for what `seed` names (`charge.<paymentId>`, `payout.paid.<paymentId>`, …). Derived from
   * the seed (production wiring), the sandbox answers a payment the same way after a restart, as a
   * real provider does from its own storage: the same reference and the same event ids.
   */
  readonly newId: (seed: string) => string;
  /** SANDBOX_WEBHOOK_DELAY_MS: how late the 4000000000000077 card's webhook leaves. */
  readonly delayedWebhookMs: number;
  /** Every n-th event is delivered twice (0 = never). */
  readonly duplicateEvery: number;
  /** The most recent answers kept to answer again without sending events (SANDBOX_ANSWERS_KEPT). */
  readonly answersKept?: number;
}): SandboxProvider {
  const maxAnswers = Math.max(1, deps.answersKept ?? SANDBOX_ANSWERS_KEPT);
  const answers = new Map<string, ProviderAnswer>();
  const cancels = new Set<() => void>();
  let sent = 0;
  let delivering = 0;
  let stopped = false;

  const later = (delayMs: number, run: () => void) => {
    if (stopped) return;
    const cancel = deps.timers.schedule(delayMs, () => {
      cancels.delete(cancel);
      run();
    });
    cancels.add(cancel);
  };

  const send = (event: ProviderEvent, attempt = 0) => {
    later(attempt === 0 ? 0 : (RETRY_DELAYS_MS[attempt - 1] ?? 0), () => {
      delivering++;
      deps
        .deliver(event)
        .catch(() => {
          if (attempt < RETRY_DELAYS_MS.length) send(event, attempt + 1);
        })
        .finally(() => {
          delivering--;
        });
    });
  };

  const emit = (delayMs: number, type: ProviderEventType, data: ProviderEvent['data']) => {
    later(delayMs, () => {
      const event: ProviderEvent = {
        id: `evt_${deps.newId(`${type}.${data.paymentId}`)}`,
        type,
        createdAt: Math.floor(deps.timers.now() / 1000),
        data,
      };
      send(event);
      sent++;
      if (deps.duplicateEvery > 0 && sent % deps.duplicateEvery === 0) send(event);
    });
  };

  const once = async (paymentId: string, decide: () => ProviderAnswer): Promise<ProviderAnswer> => {
    const previous = answers.get(paymentId);
    if (previous !== undefined) {
      // Least recently used first: a payment asked about again stays remembered.
      answers.delete(paymentId);
      answers.set(paymentId, previous);
      return previous;
    }
    const answer = decide();
    answers.set(paymentId, answer);
    for (const oldest of answers.keys()) {
      if (answers.size <= maxAnswers) break;
      answers.delete(oldest);
    }
    return answer;
  };

  /** Decides a charge and sends its events; `resend` sends a success at once (no card delay). */
  const decideCharge = (request: ChargeRequest, resend: boolean): ProviderAnswer => {
    const outcome = sandboxChargeOutcome(request.card, deps.delayedWebhookMs);
    if (outcome.answer === 'declined') return { accepted: false, failureCode: outcome.failureCode };
    const providerRef = `ch_${deps.newId(`charge.${request.paymentId}`)}`;
    emit(resend ? 0 : outcome.webhookDelayMs, ProviderEventType.CHARGE_SUCCEEDED, {
      paymentId: request.paymentId,
      providerRef,
      amount: Number(request.amount),
      currency: request.currency,
    });
    return { accepted: true, providerRef };
  };

  /**
   * Decides a payout and sends its events; `resend` sends a later failure (accounts ending 0000) at
   * once, as a provider asked about a payout its bank has returned reports the return.
   */
  const decidePayout = (request: PayoutRequest, resend: boolean): ProviderAnswer => {
    const providerRef = `po_${deps.newId(`payout.${request.paymentId}`)}`;
    const data = {
      paymentId: request.paymentId,
      providerRef,
      amount: Number(request.amount),
      currency: request.currency,
    };
    emit(0, ProviderEventType.PAYOUT_PAID, data);
    if (sandboxPayoutFailsLater(request.bankAccount)) {
      emit(resend ? 0 : deps.delayedWebhookMs, ProviderEventType.PAYOUT_FAILED, {
        ...data,
        failureCode: PaymentFailureCode.PAYOUT_FAILED,
      });
    }
    return { accepted: true, providerRef };
  };

  return {
    charge: (request: ChargeRequest) => once(request.paymentId, () => decideCharge(request, false)),
    payout: (request: PayoutRequest) => once(request.paymentId, () => decidePayout(request, false)),
    // The same decision again (deterministic), so the same events with the same ids, at once: a
    // paid payout to an account ending 0000 is reported failed (returned) whenever it is asked
    // about, also before SANDBOX_WEBHOOK_DELAY_MS (the sandbox keeps no clock per payment); any
    // other paid payout only repeats its `payout.paid`, a duplicate the receiver drops.
    // A top-up asked about `unconfirmed` (failed `provider_unavailable` on our side) is reported
    // only if this sandbox charged it: one it never took (or whose answer it forgot) stays untouched.
    resendOutcome: async (request) => {
      if (request.kind === 'top_up') {
        if (request.unconfirmed === true && answers.get(request.paymentId)?.accepted !== true) return;
        decideCharge(request, true);
      } else decidePayout(request, true);
    },
    inFlight: () => cancels.size + delivering,
    answersKept: () => answers.size,
    stop: () => {
      stopped = true;
      for (const cancel of cancels) cancel();
      cancels.clear();
    },
  };
}
