/**
 * Which outbox events become notifications, for whom, of which type: one table keyed by event type
 * (contract events by their transition), read from the payload's fields alone, so a producer that
 * lands later is covered without code here knowing it. Pure; the relay asks it for the recipients
 * (one `notifications.deliver` task each) and the task asks it again for its own recipient.
 */
import { UserId } from '../../../protocol/src/ids.js';
import { AuthEvent } from '../auth/service.js';
import { CONTRACT_EVENT_PREFIX, liveRecipients, MarketplaceEvent } from '../marketplace/events.js';
import { PaymentsEvent } from '../payments/ledger.js';
import type { NotificationIntent, NotificationType } from './types.js';

type Payload = Readonly<Record<string, unknown>>;

const userOf = (value: unknown): UserId[] => {
  const parsed = UserId.safeParse(value);
  return parsed.success ? [parsed.data] : [];
};

/** Only the fields worth a link or a sentence, and only when they are scalars. */
function pick(payload: Payload, keys: readonly string[]): Record<string, unknown> {
  const data: Record<string, unknown> = {};
  for (const key of keys) {
    const value = payload[key];
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean')
      data[key] = value;
  }
  return data;
}

const CONTRACT_KEYS = ['contractId', 'jobId', 'hirerId', 'workerId', 'state', 'event'] as const;

/** Contract transitions that are worth telling; the others (accept, …) are not notifications. */
const CONTRACT_TYPES: Readonly<Record<string, NotificationType>> = {
  deliver: 'contract.delivered',
  request_changes: 'contract.changes_requested',
  approve: 'contract.completed',
  auto_approve: 'contract.completed',
  cancel: 'contract.cancelled',
  dispute: 'contract.disputed',
  resolve: 'contract.resolved',
};

type Rule = (payload: Payload) => NotificationIntent[];

const each =
  (type: NotificationType, recipients: (p: Payload) => UserId[], keys: readonly string[]): Rule =>
  (payload) =>
    recipients(payload).map((userId) => ({ userId, type, data: pick(payload, keys) }));

/** Bids go to their worker when the payload names one (its `notify` otherwise). */
const workerOr = (payload: Payload) => {
  const worker = userOf(payload.workerId);
  return worker.length > 0 ? worker : liveRecipients({ ...payload });
};

const subjectOr = (payload: Payload) => {
  const subject = userOf(payload.subjectId);
  return subject.length > 0 ? subject : liveRecipients({ ...payload });
};

const RULES: Readonly<Record<string, Rule>> = {
  [MarketplaceEvent.bidPlaced]: each('bid.received', (p) => liveRecipients({ ...p }), [
    'bidId',
    'jobId',
    'workerId',
    'amount',
  ]),
  [MarketplaceEvent.bidAccepted]: each('bid.accepted', workerOr, ['bidId', 'jobId', 'contractId', 'amount']),
  [MarketplaceEvent.bidRejected]: each('bid.rejected', workerOr, ['bidId', 'jobId', 'reason']),
  // Its `notify` names the author too (for the live push); only the reviewed party is told.
  [MarketplaceEvent.reviewPublished]: each('review.published', subjectOr, [
    'reviewId',
    'contractId',
    'jobId',
    'rating',
    'authorId',
  ]),
  [PaymentsEvent.paymentSucceeded]: (p) =>
    userOf(p.userId).map((userId) => ({
      userId,
      type: p.kind === 'withdrawal' ? 'payout.sent' : 'payment.succeeded',
      data: pick(p, ['paymentId', 'kind', 'amount', 'transactionId', 'parked']),
    })),
  [PaymentsEvent.paymentFailed]: each('payment.failed', (p) => userOf(p.userId), [
    'paymentId',
    'kind',
    'amount',
    'failureCode',
    'parked',
  ]),
  [PaymentsEvent.transferReceived]: each('transfer.received', (p) => userOf(p.toUserId), [
    'fromUserId',
    'amount',
    'transactionId',
  ]),
  // Receipts of an escrow's resolution, to each party it paid (the fee goes to the platform).
  [PaymentsEvent.escrowReleased]: (p) => escrowReceipts(p, 'release'),
  [PaymentsEvent.escrowRefunded]: (p) => escrowReceipts(p, 'refund'),
  [PaymentsEvent.escrowSplit]: (p) => escrowReceipts(p, 'split'),
  [AuthEvent.newLogin]: each('security.new_login', (p) => userOf(p.userId), ['ip', 'userAgent']),
  [AuthEvent.sessionRevoked]: each('security.session_revoked', (p) => userOf(p.userId), [
    'sessionId',
    'reason',
  ]),
};

function escrowReceipts(p: Payload, action: 'release' | 'refund' | 'split'): NotificationIntent[] {
  const paid = [
    { userIds: userOf(p.workerId), amount: p.toWorker },
    { userIds: userOf(p.hirerId), amount: p.toHirer },
  ];
  // A share whose wallet was at its balance limit is parked, credited once there is room.
  const parked = new Set(Array.isArray(p.parkedUserIds) ? p.parkedUserIds : []);
  return paid.flatMap(({ userIds, amount }) =>
    typeof amount === 'number' && amount > 0
      ? userIds.map((userId) => ({
          userId,
          type: 'escrow.received' as const,
          data: {
            ...pick(p, ['contractId']),
            action,
            amount,
            ...(parked.has(userId) ? { parked: true } : {}),
          },
        }))
      : [],
  );
}

/** A JSON object (the jsonb column also holds `null`, arrays and scalars: an operator's insert, a bug). */
const isPayload = (value: unknown): value is Payload =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * The notifications an outbox event causes (none for most events). Total: any type (own keys only,
 * so `constructor` or `__proto__` are no rule) and any stored payload (none for a non-object).
 */
export function notificationsOf(event: {
  readonly type: string;
  readonly payload: unknown;
}): NotificationIntent[] {
  const { payload } = event;
  if (!isPayload(payload)) return [];
  const rule = Object.hasOwn(RULES, event.type) ? RULES[event.type] : undefined;
  if (rule !== undefined) return dedupe(rule(payload));
  if (event.type.startsWith(CONTRACT_EVENT_PREFIX)) {
    const transition = event.type.slice(CONTRACT_EVENT_PREFIX.length);
    const type = Object.hasOwn(CONTRACT_TYPES, transition) ? CONTRACT_TYPES[transition] : undefined;
    if (type !== undefined) {
      return dedupe(each(type, (p) => liveRecipients({ ...p }), CONTRACT_KEYS)(payload));
    }
  }
  return [];
}

function dedupe(intents: NotificationIntent[]): NotificationIntent[] {
  const seen = new Set<string>();
  return intents.filter((intent) => !seen.has(intent.userId) && seen.add(intent.userId) !== undefined);
}
