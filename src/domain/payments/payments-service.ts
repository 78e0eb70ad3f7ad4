/**
 * The payment operations the REST edge calls (issue 11 §4), wired to their ports once per process:
 * - top-up / withdrawal requests: the payment row (a withdrawal's reservation too) and a
 *   `payment.requested` outbox event in the caller's transaction (the idempotency transaction), so
 *   the `payments.submit` task exists exactly when the payment does (the outbox relay enqueues it,
 *   keyed by the payment id);
 * - the provider's webhook: verified on the raw bytes (Standard Webhooks, any of the configured
 *   secrets, 300 s both ways), then recorded by its id together with a `provider-event.received`
 *   outbox event in one transaction: the relay enqueues `payments.apply-event` keyed by the event id,
 *   and the task applies it once (`applyReceivedProviderEvent`). A redelivery, or a replay inside the
 *   window, finds the id and changes nothing — unless that event is still `received` (its task ran
 *   out of retries): then its task is queued again. A refused webhook writes nothing at all.
 */
import type { Transaction } from 'kysely';
import type { UserId } from '../../../protocol/src/ids.js';
import { findJsonProblem } from '../../../protocol/src/json-value.js';
import type { Database } from '../../db/database.js';
import { withSerializationRetry } from '../../db/errors.js';
import { insertOutboxEvent } from '../../db/repositories/outbox.repo.js';
import {
  findPayment,
  listPayments,
  type PaymentRow,
  providerEventOutcome,
} from '../../db/repositories/payments.repo.js';
import type { PaymentStatus } from '../../db/tables/ledger.table.js';
import { AppError } from '../../platform/errors.js';
import type { PaymentsDeps } from './ledger.js';
import {
  getPayment,
  paymentIdOfKey,
  paymentOfKeyIn,
  receiveProviderEventIn,
  requestTopUpIn,
  requestWithdrawalIn,
  voidParkedTopUpIn,
} from './payments.js';
import {
  type PaymentFailureCode,
  type ProviderEvent,
  ProviderEventBody,
  ProviderEventType,
  unknownFailureCodeOf,
} from './provider.js';
import { assertNotLocked } from './wallet-service.js';
import { verifyWebhook, type WebhookRejection } from './webhook-signature.js';

/** Outbox event written with every new payment; the relay turns it into the `payments.submit` task. */
export const PAYMENT_REQUESTED = 'payment.requested';
/**
 * Outbox event written with every new provider event — and again when an event recorded earlier is
 * still not applied (`queueApplyIn`); the relay turns it into `payments.apply-event`.
 */
export const PROVIDER_EVENT_RECEIVED = 'provider-event.received';

/**
 * Writes the outbox event that (re-)enqueues a payment's `payments.submit` task, keyed by the payment
 * id: while that task waits, runs or is kept as done this adds nothing (a task added after that
 * finds the payment submitted and does nothing); when it is kept as failed (out of retries) it runs
 * again with a fresh budget. The provider is called with the payment id as its idempotency key, so
 * submitting again cannot charge or pay twice.
 */
export async function queueSubmitIn(
  trx: Transaction<Database>,
  payment: Pick<PaymentRow, 'id' | 'userId'>,
): Promise<void> {
  await insertOutboxEvent(trx, PAYMENT_REQUESTED, { paymentId: payment.id, userId: payment.userId });
}

/**
 * Writes the outbox event that (re-)enqueues `payments.apply-event` for a recorded provider event,
 * keyed by the event id (a failed task is retried; see `queueSubmitIn`). Applying is once-only
 * whatever runs it: `applyReceivedProviderEvent` locks the row and acts only while it is `received`.
 */
export async function queueApplyIn(
  trx: Transaction<Database>,
  event: { eventId: string; paymentId: string | null },
): Promise<void> {
  await insertOutboxEvent(trx, PROVIDER_EVENT_RECEIVED, {
    eventId: event.eventId,
    ...(event.paymentId === null ? {} : { paymentId: event.paymentId }),
  });
}

/**
 * `queued`: received now, applied by a `payments` task; `duplicate`: received before (if it is still
 * not applied, its task is queued again); `ignored`: authentic, of an event type we do not handle
 * (providers add types over time), acknowledged so the provider stops redelivering it, logged, and
 * changing nothing.
 */
export type WebhookOutcome = 'queued' | 'duplicate' | 'ignored';

const KNOWN_EVENT_TYPES: ReadonlySet<string> = new Set(Object.values(ProviderEventType));

/** A payment as clients see it (the instrument and ledger ids stay inside). */
export interface PaymentView {
  readonly id: string;
  readonly kind: 'top_up' | 'withdrawal';
  readonly status: PaymentStatus;
  readonly amount: number;
  readonly currency: string;
  readonly failureCode?: PaymentFailureCode;
  readonly createdAt: string;
  readonly settledAt?: string;
}

export const paymentView = (row: PaymentRow): PaymentView => ({
  id: row.id,
  kind: row.kind,
  status: row.status,
  amount: Number(row.amount),
  currency: row.currency,
  // Written only by payments.ts, from PaymentFailureCode.
  ...(row.failureCode === null ? {} : { failureCode: row.failureCode as PaymentFailureCode }),
  createdAt: row.createdAt.toISOString(),
  ...(row.settledAt === null ? {} : { settledAt: row.settledAt.toISOString() }),
});

/** How a rejected webhook is answered: malformed → 400, not authentic or outside the window → 401. */
const rejectionError = (reason: WebhookRejection): AppError =>
  reason === 'missing-headers' || reason === 'bad-timestamp'
    ? new AppError('VALIDATION_FAILED', `webhook refused: ${reason}`)
    : new AppError('UNAUTHORIZED', `webhook refused: ${reason}`);

export interface WebhookRequest {
  readonly headers: {
    readonly id: string | undefined;
    readonly timestamp: string | undefined;
    readonly signature: string | undefined;
  };
  /** The body exactly as received. */
  readonly body: Buffer;
}

export interface PaymentsApi {
  /** Inside the caller's (idempotency) transaction: a pending top-up and its submit task. */
  readonly requestTopUpIn: (
    trx: Transaction<Database>,
    userId: UserId,
    input: { amount: number; card: string },
    /**
     * The request's Idempotency-Key: the payment is bound to it for good (`paymentIdOfKey`), so the
     * same request after the key's record was forgotten answers the first payment (nothing new),
     * and another one is IDEMPOTENCY_KEY_REUSED.
     */
    idempotencyKey?: string,
  ) => Promise<PaymentView>;
  /** Inside the caller's transaction: the amount reserved now (INSUFFICIENT_FUNDS otherwise). */
  readonly requestWithdrawalIn: (
    trx: Transaction<Database>,
    userId: UserId,
    input: { amount: number; bankAccount: string },
    /** As for top-ups: the withdrawal is bound to the key for good (never paid out twice). */
    idempotencyKey?: string,
  ) => Promise<PaymentView>;
  /** The caller's own payment; anyone else's is NOT_FOUND. */
  readonly get: (userId: UserId, paymentId: string) => Promise<PaymentView>;
  readonly list: (query: {
    status?: PaymentStatus | undefined;
    cursor?: string | undefined;
    limit: number;
  }) => Promise<{ data: (PaymentView & { userId: UserId })[]; nextCursor: string | null }>;
  /**
   * Admin, inside the caller's (idempotency) transaction: ends a top-up parked for its currency or
   * amount once the operator refunded it at the provider — its hold voided (`voidParkedTopUpIn`:
   * NOT_FOUND, CONFLICT `NOT_PARKED` / `ALREADY_VOIDED`).
   */
  readonly voidParkedIn: (
    trx: Transaction<Database>,
    paymentId: string,
  ) => Promise<{
    payment: PaymentView & { userId: UserId };
    voided: { holdId: string; amount: number; currency: string };
  }>;
  /**
   * Verifies one provider webhook and records it with its task (one transaction); throws
   * VALIDATION_FAILED / UNAUTHORIZED when refused, and then nothing is written.
   */
  readonly receiveWebhook: (request: WebhookRequest) => Promise<WebhookOutcome>;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function createPaymentsApi(
  deps: PaymentsDeps & {
    /** PAYMENTS_WEBHOOK_SECRETS, newest first. */
    readonly webhookSecrets: readonly string[];
  },
): PaymentsApi {
  const requested = async (trx: Transaction<Database>, payment: PaymentRow) => {
    await queueSubmitIn(trx, payment);
    return paymentView(payment);
  };
  return {
    requestTopUpIn: async (trx, userId, input, idempotencyKey) => {
      // A request authenticated just before an admin's lock commits after it: refused, nothing
      // charged for an account an admin stopped (wallet-service.ts).
      await assertNotLocked(trx, userId);
      const amount = BigInt(input.amount);
      const id = idempotencyKey === undefined ? undefined : paymentIdOfKey(userId, idempotencyKey);
      if (id !== undefined) {
        const first = await paymentOfKeyIn(trx, id, {
          userId,
          kind: 'top_up',
          amount,
          instrument: input.card,
        });
        if (first !== undefined) return paymentView(first);
      }
      return requested(
        trx,
        await requestTopUpIn(trx, deps, {
          userId,
          amount,
          card: input.card,
          ...(id === undefined ? {} : { id }),
        }),
      );
    },
    requestWithdrawalIn: async (trx, userId, input, idempotencyKey) => {
      // A request authenticated just before an admin's lock commits after it: refused, nothing
      // reserved or paid out for an account an admin stopped (wallet-service.ts).
      await assertNotLocked(trx, userId);
      const amount = BigInt(input.amount);
      const id = idempotencyKey === undefined ? undefined : paymentIdOfKey(userId, idempotencyKey);
      if (id !== undefined) {
        const first = await paymentOfKeyIn(trx, id, {
          userId,
          kind: 'withdrawal',
          amount,
          instrument: input.bankAccount,
        });
        if (first !== undefined) return paymentView(first);
      }
      return requested(
        trx,
        await requestWithdrawalIn(trx, deps, {
          userId,
          amount,
          bankAccount: input.bankAccount,
          ...(id === undefined ? {} : { id }),
        }),
      );
    },
    get: async (userId, paymentId) => paymentView(await getPayment(deps, userId, paymentId)),
    voidParkedIn: async (trx, paymentId) => {
      const voided = await voidParkedTopUpIn(trx, deps, paymentId);
      return {
        payment: { ...paymentView(voided.payment), userId: voided.payment.userId },
        voided: { holdId: voided.holdId, amount: Number(voided.amount), currency: voided.currency },
      };
    },
    list: async (query) => {
      const cursor =
        query.cursor === undefined ? undefined : Buffer.from(query.cursor, 'base64url').toString();
      // A cursor is the id of the last payment of a page (payments are never deleted): one naming
      // no payment positioned nothing, and the page came back empty (200, "no more payments")
      // instead of saying the cursor is not one this API made — the same 400 as every list's.
      if (
        cursor !== undefined &&
        (!UUID.test(cursor) || (await findPayment(deps.db, cursor)) === undefined)
      ) {
        throw new AppError('VALIDATION_FAILED', 'invalid cursor', {
          details: { errors: [{ path: 'querystring.cursor', message: 'is not a cursor from this API' }] },
        });
      }
      const rows = await listPayments(deps.db, {
        ...(query.status === undefined ? {} : { status: query.status }),
        ...(cursor === undefined ? {} : { afterId: cursor }),
        limit: query.limit + 1,
      });
      const page = rows.slice(0, query.limit);
      const last = page.at(-1);
      return {
        data: page.map((row) => ({ ...paymentView(row), userId: row.userId })),
        nextCursor:
          rows.length > query.limit && last !== undefined ? Buffer.from(last.id).toString('base64url') : null,
      };
    },
    receiveWebhook: async (request) => {
      const verified = verifyWebhook({
        secrets: deps.webhookSecrets,
        headers: request.headers,
        body: request.body,
        now: deps.clock.now(),
      });
      if (!verified.ok) {
        deps.log?.warn({ reason: verified.reason, webhookId: request.headers.id }, 'webhook refused');
        throw rejectionError(verified.reason);
      }
      let json: unknown;
      try {
        json = JSON.parse(request.body.toString('utf8'));
      } catch {
        throw new AppError('VALIDATION_FAILED', 'webhook body is not JSON');
      }
      // The route keeps the raw bytes (they are what was signed), so the input guard every other
      // body passes never saw these: a lone surrogate (`"\ud800"` is valid JSON) reached the
      // database and failed there as a 500, which a provider redelivers for days.
      const problem = findJsonProblem(json);
      if (problem !== undefined) {
        throw new AppError(
          'VALIDATION_FAILED',
          `webhook body: ${problem.path || 'body'}: ${problem.message}`,
        );
      }
      // An authentic event of a type we do not know: refused (4xx), a provider redelivers it for
      // days and may disable the endpoint. It is acknowledged, logged once per delivery, and moves
      // no money; a known type with a malformed body is still refused below.
      const type = typeof json === 'object' && json !== null ? (json as { type?: unknown }).type : undefined;
      if (typeof type === 'string' && !KNOWN_EVENT_TYPES.has(type)) {
        deps.log?.warn(
          { webhookId: verified.id, type: type.slice(0, 200) },
          'webhook of an event type not handled here: acknowledged and ignored',
        );
        return 'ignored';
      }
      const parsed = ProviderEventBody.safeParse(json);
      // The signed webhook-id is the dedupe key; a body naming another id is not this message.
      if (!parsed.success || parsed.data.id !== verified.id) {
        throw new AppError('VALIDATION_FAILED', 'webhook body is not a provider event with the webhook-id');
      }
      const event: ProviderEvent = parsed.data;
      const unknownCode = unknownFailureCodeOf(json);
      if (unknownCode !== undefined) {
        deps.log?.warn(
          { webhookId: event.id, type: event.type, failureCode: unknownCode },
          'webhook names a failure code not known here: applied with the generic code of its type',
        );
      }
      const { outcome, requeued } = await withSerializationRetry(() =>
        deps.db.transaction().execute(async (trx) => {
          const task = { eventId: event.id, paymentId: event.data.paymentId };
          if (await receiveProviderEventIn(trx, event)) {
            await queueApplyIn(trx, task);
            return { outcome: 'queued' as const, requeued: false };
          }
          // Received before and never applied (its task ran out of retries, e.g. in a long database
          // outage): its task is queued again. The relay re-enqueues it by the same id, which retries
          // a failed one (and adds nothing while it waits or runs); the row, locked while
          // `received`, still applies it once.
          const unapplied = (await providerEventOutcome(trx, event.id)) === 'received';
          if (unapplied) await queueApplyIn(trx, task);
          return { outcome: 'duplicate' as const, requeued: unapplied };
        }),
      );
      deps.log?.info(
        { webhookId: event.id, type: event.type, paymentId: event.data.paymentId, outcome, requeued },
        requeued ? 'webhook received again before it was applied: its task queued again' : 'webhook received',
      );
      return outcome;
    },
  };
}
