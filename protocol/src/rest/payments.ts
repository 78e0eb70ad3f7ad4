/**
 * Wallet and payments over REST (issue 11; routes not wired yet). Amounts are integer minor units of
 * the wallet's currency, exact as JSON integers up to 2^53 − 1. The POSTs that move money require an
 * `Idempotency-Key` header (1-255 visible ASCII characters).
 */
import { z } from 'zod';
import { UserId, Uuid } from '../ids.js';
import { Cursor, Iso, PageLimit } from './common.js';
import { singleLineText } from './text.js';

/** A positive amount of minor units (cents for USD). */
export const Amount = z
  .int()
  .min(1)
  .max(Number.MAX_SAFE_INTEGER)
  .describe('Integer minor units (e.g. cents), 1 to 2^53 - 1.');

/** A signed amount: negative when money left the wallet. */
export const SignedAmount = z.int().min(-Number.MAX_SAFE_INTEGER).max(Number.MAX_SAFE_INTEGER);

export const Currency = z
  .string()
  .regex(/^[A-Z]{3}$/)
  .describe('ISO 4217 code, e.g. USD.');

/** Ledger transaction ids are decimal strings (64-bit). */
export const TransactionId = z.string().regex(/^[1-9][0-9]{0,18}$/);

export const Wallet = z
  .object({
    currency: Currency,
    available: z.int().min(0).describe('posted − pending: what can be spent now.'),
    pending: z.int().min(0).describe('Reserved by withdrawals in flight.'),
    posted: z.int().min(0),
    parked: z
      .int()
      .min(0)
      .describe(
        'Money received for you that your balance had no room for under its limit (2^53 − 1 minor units): a charged top-up, a returned payout, an escrow payout. Yours, but not in posted or available yet: it is added automatically once the balance has room (spend or withdraw some). Usually 0.',
      ),
  })
  .meta({ id: 'Wallet' });

export const WalletReason = z.enum([
  'top-up',
  'withdrawal',
  'withdrawal-reversal',
  'transfer',
  'escrow-hold',
  'escrow-release',
  'escrow-refund',
  'escrow-split',
  'hold',
  'reversal',
]);

export const WalletLine = z
  .object({
    transactionId: TransactionId,
    reason: WalletReason,
    amount: SignedAmount,
    balanceAfter: z.int(),
    counterpartyId: UserId.nullable().describe('The other user; null for the payment provider.'),
    contractId: Uuid.nullable(),
    note: z.string().nullable(),
    createdAt: Iso,
  })
  .meta({ id: 'WalletLine' });

export const WalletLinesQuery = z.strictObject({ cursor: Cursor.optional(), limit: PageLimit });
export const WalletLines = z
  .object({ data: z.array(WalletLine), nextCursor: z.string().nullable() })
  .meta({ id: 'WalletLines' });

export const TopUpRequest = z
  .strictObject({
    amount: Amount,
    card: z
      .string()
      .regex(/^[0-9]{12,19}$/)
      .describe('Sandbox test card number (4242424242424242 succeeds; see the README).'),
  })
  .meta({ id: 'TopUpRequest' });

export const WithdrawalRequest = z
  .strictObject({
    amount: Amount,
    bankAccount: z
      .string()
      .regex(/^[0-9A-Za-z]{4,34}$/)
      .describe('IBAN or account number.'),
  })
  .meta({ id: 'WithdrawalRequest' });

export const TransferRequest = z
  .strictObject({
    toUserId: UserId,
    amount: Amount,
    note: singleLineText({ min: 1, max: 200 }).optional(),
  })
  .meta({ id: 'TransferRequest' });

export const Payment = z
  .object({
    id: Uuid,
    kind: z.enum(['top_up', 'withdrawal']),
    status: z.enum(['pending', 'succeeded', 'failed']),
    amount: Amount,
    currency: Currency,
    failureCode: z
      .enum([
        'card_declined',
        'insufficient_funds',
        'payout_failed',
        'provider_unavailable',
        'currency_mismatch',
        'amount_mismatch',
        'account_locked',
      ])
      .optional()
      .describe(
        "currency_mismatch: a top-up charged in another currency than the wallet's; amount_mismatch: a top-up the provider charged for another amount than asked. Neither is credited: kept aside for an operator to refund. account_locked: the account was locked before the payment was sent to the provider; it never was (a withdrawal's amount is back in the wallet).",
      ),
    createdAt: Iso,
    settledAt: Iso.optional().describe(
      'When the payment reached its status (absent while pending); a paid withdrawal its bank returned reads failed, settled at the return.',
    ),
  })
  .meta({ id: 'Payment' });

export const Transfer = z
  .object({
    id: TransactionId,
    toUserId: UserId,
    amount: Amount,
    note: z.string().nullable(),
  })
  .meta({ id: 'Transfer' });

export const PaymentResponse = z.object({ payment: Payment }).meta({ id: 'PaymentResponse' });

export const TransferResponse = z.object({ transaction: Transfer }).meta({ id: 'TransferResponse' });

export const LedgerAudit = z
  .object({
    ranAt: Iso,
    clean: z.boolean(),
    findings: z.array(
      z.object({
        invariant: z.string().describe('I1–I9, see the README "Payments" section.'),
        message: z.string(),
        details: z.record(z.string(), z.string().nullable()),
      }),
    ),
  })
  .meta({ id: 'LedgerAudit' });

/**
 * The audit takes no parameters: an unknown one (a filter it does not have, `?invariant=I3`) is 400
 * rather than ignored, so a caller never reads a full audit as a filtered one.
 */
export const LedgerAuditQuery = z.strictObject({});

export const PaymentIdParams = z.strictObject({ id: Uuid });

export const AdminPayment = Payment.extend({ userId: UserId }).meta({ id: 'AdminPayment' });
export const AdminPaymentPage = z
  .object({ data: z.array(AdminPayment), nextCursor: z.string().nullable() })
  .meta({ id: 'AdminPaymentPage' });

export const AdminPaymentsQuery = z.strictObject({
  status: z.enum(['pending', 'succeeded', 'failed']).optional(),
  cursor: Cursor.optional(),
  limit: PageLimit,
});

/** An operator's note that the parked charge was refunded at the provider (kept in the log). */
export const VoidParkedRequest = z
  .strictObject({
    refundRef: singleLineText({ min: 1, max: 200 }).describe(
      "The provider's reference of the refund the operator made (for the record).",
    ),
  })
  .meta({ id: 'VoidParkedRequest' });

export const VoidParkedResponse = z
  .object({
    payment: AdminPayment,
    voided: z
      .object({ holdId: TransactionId, amount: Amount, currency: Currency })
      .describe(
        'The pending hold that parked the charge, now voided: the amount and currency the provider took.',
      ),
  })
  .meta({ id: 'VoidParkedResponse' });

/** What the webhook endpoint answers a verified event (a redelivery too: `duplicate`). */
export const WebhookAck = z
  .object({
    received: z.literal(true),
    outcome: z
      .enum(['queued', 'duplicate', 'ignored'])
      .describe(
        'queued: recorded, applied by a payments task; duplicate: this event id was received before; ignored: an authentic event of a type this server does not handle, acknowledged so it is not redelivered, changing nothing.',
      ),
  })
  .meta({ id: 'WebhookAck' });
