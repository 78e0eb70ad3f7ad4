/**
 * Notifications over REST (issue 13): the caller's notifications (newest first), the unread count,
 * marking them read, and per-type preferences. The same notifications are pushed live as
 * `notification` frames; reading on any device pushes `notifications.read` to the user's sockets.
 */
import { z } from 'zod';
import { NotificationId } from '../ids.js';
import { Cursor, Iso, PageLimit, page } from './common.js';

/** Every kind of notification. Clients ignore kinds they do not know (new ones may appear). */
export const NotificationType = {
  BID_RECEIVED: 'bid.received',
  BID_ACCEPTED: 'bid.accepted',
  BID_REJECTED: 'bid.rejected',
  CONTRACT_DELIVERED: 'contract.delivered',
  CONTRACT_CHANGES_REQUESTED: 'contract.changes_requested',
  CONTRACT_COMPLETED: 'contract.completed',
  CONTRACT_CANCELLED: 'contract.cancelled',
  CONTRACT_DISPUTED: 'contract.disputed',
  CONTRACT_RESOLVED: 'contract.resolved',
  REVIEW_PUBLISHED: 'review.published',
  PAYMENT_SUCCEEDED: 'payment.succeeded',
  PAYMENT_FAILED: 'payment.failed',
  PAYOUT_SENT: 'payout.sent',
  TRANSFER_RECEIVED: 'transfer.received',
  ESCROW_RECEIVED: 'escrow.received',
  MESSAGES_UNREAD: 'messages.unread',
  SECURITY_NEW_LOGIN: 'security.new_login',
  SECURITY_SESSION_REVOKED: 'security.session_revoked',
} as const;
export type NotificationType = (typeof NotificationType)[keyof typeof NotificationType];
export const NotificationTypeSchema = z.enum(NotificationType);

/**
 * When a notification of a type is emailed: `never`; `offline` — only when the user had no socket
 * open anywhere as it was created; `always`. Emails are batched into digests (NOTIFY_EMAIL_DIGEST_S)
 * and leave out what was read meanwhile.
 */
export const EmailPreference = z.enum(['never', 'offline', 'always']);
export type EmailPreference = z.infer<typeof EmailPreference>;

export const NotificationPreference = z
  .object({
    inApp: z.boolean().describe('Stored, listed, counted and pushed live.'),
    email: EmailPreference,
  })
  .meta({ id: 'NotificationPreference' });
export type NotificationPreference = z.infer<typeof NotificationPreference>;

export const NotificationPreferences = z
  .object({
    preferences: z
      .record(NotificationTypeSchema, NotificationPreference)
      .describe('Every type, with the default where you set nothing.'),
  })
  .meta({ id: 'NotificationPreferences' });
export type NotificationPreferences = z.infer<typeof NotificationPreferences>;

export const UpdateNotificationPreferences = z
  .strictObject({
    preferences: z
      .partialRecord(
        NotificationTypeSchema,
        z.strictObject({ inApp: z.boolean().optional(), email: EmailPreference.optional() }),
      )
      .describe('Only the types and fields to change.'),
  })
  .meta({ id: 'UpdateNotificationPreferences' });
export type UpdateNotificationPreferences = z.infer<typeof UpdateNotificationPreferences>;

export const Notification = z
  .object({
    id: NotificationId,
    type: NotificationTypeSchema,
    title: z.string(),
    body: z.string(),
    data: z
      .record(z.string(), z.unknown())
      .describe('Kind-specific ids to deep-link to: jobId, bidId, contractId, roomId, paymentId, …'),
    createdAt: Iso,
    readAt: Iso.nullable(),
  })
  .meta({ id: 'Notification' });
export type Notification = z.infer<typeof Notification>;

export const NotificationsQuery = z.strictObject({
  unread: z
    .enum(['true', 'false'])
    .transform((value) => value === 'true')
    .optional()
    .describe('true: only unread ones.'),
  cursor: Cursor.optional(),
  limit: PageLimit,
});

export const NotificationPage = page(Notification).meta({ id: 'NotificationPage' });

export const UnreadCount = z
  .object({ count: z.int().min(0).describe('Unread notifications.') })
  .meta({ id: 'UnreadCount' });

/** Largest `ids` list of one read request. */
export const MAX_READ_IDS = 100;

/**
 * `{ids}` marks those (yours; others' and unknown ids are ignored). `{all: true, upTo}` marks the
 * notification `upTo` (the newest one the client listed) and every one older than it, in the order
 * the list uses (createdAt, then id): what arrived after the client listed stays unread, and its
 * mail is still sent. `upTo` naming no notification of yours marks nothing. `{all: true}` without
 * `upTo` marks everything, including what you have not seen (kept for older clients).
 */
export const ReadNotificationsRequest = z
  .union([
    z.strictObject({ ids: z.array(NotificationId).min(1).max(MAX_READ_IDS) }),
    z.strictObject({
      all: z.literal(true),
      upTo: NotificationId.optional().describe(
        'The newest notification you listed: it and older ones are marked, newer ones stay unread. Absent: every notification, including those you have not seen.',
      ),
    }),
  ])
  .meta({ id: 'ReadNotificationsRequest' });
export type ReadNotificationsRequest = z.infer<typeof ReadNotificationsRequest>;

export const ReadNotificationsResult = z
  .object({
    updated: z.int().min(0).describe('Notifications that were unread and are read now.'),
    unreadCount: z.int().min(0),
  })
  .meta({ id: 'ReadNotificationsResult' });
export type ReadNotificationsResult = z.infer<typeof ReadNotificationsResult>;

/**
 * The one-click unsubscribe link of a digest mail (RFC 8058): `token` names a user and the scope
 * "every notification mail that may be turned off", signed by the server. It is no login.
 */
export const UnsubscribeQuery = z.object({
  token: z.string().min(1).max(512).describe('The token of the link in the mail.'),
});

export const UnsubscribeResult = z
  .object({
    emailOff: z
      .array(NotificationTypeSchema)
      .describe(
        'The types whose mail is (POST) or would be (GET) off: every type but security.*, always mailed.',
      ),
  })
  .meta({ id: 'UnsubscribeResult' });
export type UnsubscribeResult = z.infer<typeof UnsubscribeResult>;
