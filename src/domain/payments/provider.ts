/**
 * The payment provider port: how money enters (charge a card) and leaves (pay out to a bank account)
 * the outside world. Calls are keyed by our payment id, so a retried call (worker restart, timeout)
 * never charges or pays twice at the provider — for as long as the payment can be pending: the
 * reconciler submits a payment whose task gave up again hours later (a provider whose idempotency
 * keys expire sooner needs its adapter to look the payment id up before acting again). The answer to a call only says whether the provider
 * took the request; the outcome arrives later as a signed webhook event (ProviderEvent), which may be
 * duplicated, late or out of order — the payments flow applies each outcome once.
 */
import { z } from 'zod';

/** Why a payment failed, as clients see it (`failureCode`). */
export const PaymentFailureCode = {
  CARD_DECLINED: 'card_declined',
  INSUFFICIENT_FUNDS: 'insufficient_funds',
  PAYOUT_FAILED: 'payout_failed',
  PROVIDER_UNAVAILABLE: 'provider_unavailable',
  /**
   * Ours, never the provider's: a top-up charged in another currency than the wallet's (CURRENCY) —
   * the provider reported another currency than the payment's, or CURRENCY changed since the
   * payment was made. Not credited (no silent conversion): the money is parked in the ledger in the
   * currency received for an operator to refund (payments.ts).
   */
  CURRENCY_MISMATCH: 'currency_mismatch',
  /**
   * Ours, never the provider's: a top-up the provider reports charged in the payment's currency but
   * for another amount than the payment's. Not credited (nobody asked for that amount): the amount
   * the provider says it took is parked in the ledger for an operator to refund (payments.ts).
   */
  AMOUNT_MISMATCH: 'amount_mismatch',
  /**
   * Ours, never the provider's: the payment's account was locked by an admin before the payment was
   * ever handed to the provider, so it never was (a locked account moves no money); a withdrawal's
   * reserved amount is back in the wallet (payments.ts `submitPayment`).
   */
  ACCOUNT_LOCKED: 'account_locked',
} as const;
export type PaymentFailureCode = (typeof PaymentFailureCode)[keyof typeof PaymentFailureCode];

/** The failure codes we set and a provider's event never carries. */
const OUR_FAILURE_CODES: ReadonlySet<string> = new Set([
  PaymentFailureCode.CURRENCY_MISMATCH,
  PaymentFailureCode.AMOUNT_MISMATCH,
  PaymentFailureCode.ACCOUNT_LOCKED,
]);
/** The failure codes a provider's event may carry. */
const PROVIDER_FAILURE_CODES = Object.values(PaymentFailureCode).filter(
  (code) => !OUR_FAILURE_CODES.has(code),
) as [PaymentFailureCode, ...PaymentFailureCode[]];
const KNOWN_FAILURE_CODES: ReadonlySet<string> = new Set(PROVIDER_FAILURE_CODES);

export interface ChargeRequest {
  /** Our payment id: the provider's idempotency key. */
  readonly paymentId: string;
  readonly amount: bigint;
  readonly currency: string;
  readonly card: string;
}

export interface PayoutRequest {
  readonly paymentId: string;
  readonly amount: bigint;
  readonly currency: string;
  readonly bankAccount: string;
}

export type ProviderAnswer =
  | { readonly accepted: true; readonly providerRef: string }
  | { readonly accepted: false; readonly failureCode: PaymentFailureCode };

export const ProviderEventType = {
  CHARGE_SUCCEEDED: 'charge.succeeded',
  CHARGE_FAILED: 'charge.failed',
  PAYOUT_PAID: 'payout.paid',
  PAYOUT_FAILED: 'payout.failed',
} as const;
export type ProviderEventType = (typeof ProviderEventType)[keyof typeof ProviderEventType];

/** A webhook event's body (JSON). `id` is also the `webhook-id` header: deduplicate on it. */
export interface ProviderEvent {
  readonly id: string;
  readonly type: ProviderEventType;
  /** Unix seconds when the provider created the event. */
  readonly createdAt: number;
  readonly data: {
    readonly paymentId: string;
    readonly providerRef: string;
    /** Minor units, a JSON integer ≤ 2^53 − 1. */
    readonly amount: number;
    readonly currency: string;
    readonly failureCode?: PaymentFailureCode;
  };
}

/**
 * A ProviderEvent, checked: the webhook body we accept, and what an event row must still hold when
 * the payments task reads it back (a jsonb row that does not match is an error, never an event
 * applied with missing or mistyped fields). Unknown keys are dropped.
 */
export const ProviderEventBody = z.object({
  id: z.string().min(1).max(256),
  type: z.enum(Object.values(ProviderEventType) as [ProviderEventType, ...ProviderEventType[]]),
  createdAt: z.number().int(),
  data: z.object({
    paymentId: z.string().min(1).max(100),
    providerRef: z.string().min(1).max(200),
    amount: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
    currency: z.string().regex(/^[A-Z]{3}$/),
    // A code we do not know (providers add decline and return reasons over time) is dropped, not
    // refused: the event still says what happened (the charge failed, the payout came back), and a
    // 400 was redelivered for days while the money never moved. The generic code of its type then
    // applies (card_declined, payout_failed); the webhook logs the code (`unknownFailureCodeOf`).
    failureCode: z
      .string()
      .min(1)
      .max(200)
      .transform((code) => (KNOWN_FAILURE_CODES.has(code) ? (code as PaymentFailureCode) : undefined))
      .optional(),
  }),
}) satisfies z.ZodType<ProviderEvent>;

/** The failure code an event body names that `ProviderEventBody` drops (not one we know), if any. */
export function unknownFailureCodeOf(body: unknown): string | undefined {
  const data = typeof body === 'object' && body !== null ? (body as { data?: unknown }).data : undefined;
  const code =
    typeof data === 'object' && data !== null ? (data as { failureCode?: unknown }).failureCode : undefined;
  return typeof code === 'string' && !KNOWN_FAILURE_CODES.has(code) ? code : undefined;
}

export interface PaymentProvider {
  readonly charge: (request: ChargeRequest) => Promise<ProviderAnswer>;
  readonly payout: (request: PayoutRequest) => Promise<ProviderAnswer>;
  /**
   * Asks the provider to send the outcome of an accepted payment again (its webhook events, with
   * their ids: the ones already applied are duplicates the receiver drops). For payments whose
   * outcome never arrived; a real provider's "resend events" / retrieve API.
   * With `unconfirmed` (a top-up we never saw accepted: every call to charge it failed here, so it
   * was failed `provider_unavailable`, yet a call that timed out may have gone through), it never
   * acts: a charge it made is reported (its success again, with its ids), a payment it never took
   * is neither charged now nor reported (a real provider: look the charge up by our payment id).
   */
  readonly resendOutcome: (payment: ResendRequest) => Promise<void>;
}

/** What the provider needs to find (the sandbox: to decide again) a payment's outcome. */
export type ResendRequest =
  | ({ readonly kind: 'top_up'; readonly unconfirmed?: true } & ChargeRequest)
  | ({ readonly kind: 'withdrawal' } & PayoutRequest);
