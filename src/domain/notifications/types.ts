/** Notification types, their default preferences, and what a delivery needs to know. */
import type { UserId } from '../../../protocol/src/ids.js';
import { type NotificationPreference, NotificationType } from '../../../protocol/src/rest/notifications.js';

export { NotificationType };

export const ALL_NOTIFICATION_TYPES = Object.values(NotificationType) as readonly NotificationType[];

const inAppAnd = (email: NotificationPreference['email']): NotificationPreference => ({ inApp: true, email });

/**
 * Defaults where a user set nothing: money and security mail always (receipts, and a warning must
 * reach the owner even when an attacker holds a live session); the rest only while the user is away.
 */
export const DEFAULT_PREFERENCES: Readonly<Record<NotificationType, NotificationPreference>> = {
  'bid.received': inAppAnd('offline'),
  'bid.accepted': inAppAnd('offline'),
  'bid.rejected': inAppAnd('offline'),
  'contract.delivered': inAppAnd('offline'),
  'contract.changes_requested': inAppAnd('offline'),
  'contract.completed': inAppAnd('offline'),
  'contract.cancelled': inAppAnd('offline'),
  'contract.disputed': inAppAnd('offline'),
  'contract.resolved': inAppAnd('offline'),
  'review.published': inAppAnd('offline'),
  'payment.succeeded': inAppAnd('always'),
  'payment.failed': inAppAnd('always'),
  'payout.sent': inAppAnd('always'),
  'transfer.received': inAppAnd('always'),
  'escrow.received': inAppAnd('always'),
  'messages.unread': inAppAnd('offline'),
  'security.new_login': inAppAnd('always'),
  'security.session_revoked': inAppAnd('always'),
};

/**
 * Whether a stored type is one this build knows. Stored rows may hold others: a type added by a newer
 * build during a rolling deploy, one since removed, an operator's insert.
 */
export const isNotificationType = (type: string): type is NotificationType =>
  Object.hasOwn(DEFAULT_PREFERENCES, type);

/**
 * Types whose mail no preference turns off and reading does not cancel: a warning about the account
 * must reach the owner's inbox even when someone else holds a session, and that someone could
 * otherwise set the email preference to `never` or read the notification before its digest is sent.
 */
export const ALWAYS_EMAILED: ReadonlySet<NotificationType> = new Set<NotificationType>([
  'security.new_login',
  'security.session_revoked',
]);

/** One notification to deliver: to whom, of which type, its deep-link data, keyed for idempotency. */
export interface NotificationIntent {
  readonly userId: UserId;
  readonly type: NotificationType;
  /** Ids (and small facts such as amounts) the text and the links are made from. */
  readonly data: Readonly<Record<string, unknown>>;
}

/** What an email preference and presence decide. Pure, so the table test covers every case. */
export function decideDelivery(
  preference: NotificationPreference,
  online: boolean,
): { readonly store: boolean; readonly inApp: boolean; readonly email: boolean } {
  const email = preference.email === 'always' || (preference.email === 'offline' && !online);
  return { store: preference.inApp || email, inApp: preference.inApp, email };
}
