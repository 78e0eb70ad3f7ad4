/**
 * The notification digest mail (issue 13), plain text and HTML: one section per notification with
 * its own wording per type, a link built from PUBLIC_URL, and a receipt block for money
 * notifications (amount, reference, time). Values are HTML-escaped; links never come from a request.
 */

import { formatAmount } from '../../domain/notifications/content.js';
import {
  DIGEST_MAX_ITEMS,
  type DigestMailInput,
  type RenderedMail,
} from '../../domain/notifications/service.js';
import type { NotificationType } from '../../domain/notifications/types.js';
import { unsubscribeUrl } from '../../domain/notifications/unsubscribe.js';

const escapeHtml = (value: unknown) =>
  String(value).replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c,
  );

/** The call to action of each type; exhaustive so a new type gets its own words. */
const ACTION: Readonly<Record<NotificationType, string>> = {
  'bid.received': 'Review the bid',
  'bid.accepted': 'Open the contract',
  'bid.rejected': 'Find other jobs',
  'contract.delivered': 'Review the delivery',
  'contract.changes_requested': 'See the requested changes',
  'contract.completed': 'Open the contract',
  'contract.cancelled': 'Open the contract',
  'contract.disputed': 'Open the dispute',
  'contract.resolved': 'See the resolution',
  'review.published': 'Read the review',
  'payment.succeeded': 'Open your wallet',
  'payment.failed': 'Open your wallet',
  'payout.sent': 'Open your wallet',
  'transfer.received': 'Open your wallet',
  'escrow.received': 'Open your wallet',
  'messages.unread': 'Read the messages',
  'security.new_login': 'Review your sessions',
  'security.session_revoked': 'Review your sessions',
};

/**
 * The subject of a digest of one notification: our words only. Titles carry text other users wrote
 * (a job's title), and a subject line made of it would let anyone mail any text under our name.
 */
const SUBJECT: Readonly<Record<NotificationType, string>> = {
  'bid.received': 'New bid on your job',
  'bid.accepted': 'Your bid was accepted',
  'bid.rejected': 'Your bid was not accepted',
  'contract.delivered': 'Work delivered on your contract',
  'contract.changes_requested': 'Changes requested on your contract',
  'contract.completed': 'Your contract is complete',
  'contract.cancelled': 'Your contract was cancelled',
  'contract.disputed': 'Your contract is disputed',
  'contract.resolved': 'Your dispute was resolved',
  'review.published': 'You have a new review',
  'payment.succeeded': 'Your payment went through',
  'payment.failed': 'Your payment failed',
  'payout.sent': 'Your payout was sent',
  'transfer.received': 'You received a transfer',
  'escrow.received': 'You received a payment from escrow',
  'messages.unread': 'You have unread messages',
  'security.new_login': 'New sign-in to your account',
  'security.session_revoked': 'A session of your account was ended',
};

/**
 * Words for an item of a type this build does not know (the service leaves those out; a renderer
 * must still never throw on one: a digest that fails to render is retried and held open).
 */
const FALLBACK_ACTION = 'Open gigwire';
const FALLBACK_SUBJECT = 'New notification on gigwire';

const actionOf = (type: string) =>
  Object.hasOwn(ACTION, type) ? ACTION[type as NotificationType] : FALLBACK_ACTION;
const subjectOf = (type: string) =>
  Object.hasOwn(SUBJECT, type) ? SUBJECT[type as NotificationType] : FALLBACK_SUBJECT;

/** The item's data when it is an object (stored jsonb may be `null`); empty otherwise. */
const dataOf = (item: DigestMailInput['items'][number]): Readonly<Record<string, unknown>> =>
  typeof item.data === 'object' && item.data !== null ? item.data : {};

const RECEIPT_TYPES: ReadonlySet<NotificationType> = new Set([
  'payment.succeeded',
  'payment.failed',
  'payout.sent',
  'transfer.received',
  'escrow.received',
]);

/** Receipt lines of a money notification: what moved, its reference, when. */
function receiptOf(item: DigestMailInput['items'][number]): string[] {
  if (!RECEIPT_TYPES.has(item.type)) return [];
  const data = dataOf(item);
  const currency = typeof data.currency === 'string' ? data.currency : '';
  const reference = data.paymentId ?? data.transactionId;
  return [
    `Amount: ${formatAmount(data.amount, currency)}`,
    ...(typeof reference === 'string' || typeof reference === 'number' ? [`Reference: ${reference}`] : []),
    ...(typeof data.failureCode === 'string' ? [`Reason: ${data.failureCode}`] : []),
    `Date: ${item.createdAt.toISOString().replace('T', ' ').slice(0, 16)} UTC`,
  ];
}

/** Most notifications one digest mail lists; the rest are counted and linked (the app lists them all). */
export const MAX_DIGEST_ITEMS = DIGEST_MAX_ITEMS;

/**
 * User-written text (job and room titles, names) as one plain line: control characters (a newline
 * would start a forged entry in the text part) and bidirectional overrides (which reorder what the
 * reader sees) become spaces.
 */
const oneLine = (text: string) => text.replace(/[\p{Cc}\u2028\u2029\u202a-\u202e\u2066-\u2069]/gu, ' ');

/**
 * The items a digest lists: the security notices first (they must reach the owner), then the
 * others, oldest first, up to MAX_DIGEST_ITEMS in all; and how many were left out. Security notices
 * are capped too: whoever holds the password can sign in from a new device again and again, and a
 * mail listing thousands of notices would be refused by the receiving server as too large (a 5xx:
 * never retried), so the warning would not arrive at all.
 */
function digestItems(items: DigestMailInput['items']): { listed: DigestMailInput['items']; more: number } {
  if (items.length <= MAX_DIGEST_ITEMS) return { listed: items, more: 0 };
  const isSecurity = (item: DigestMailInput['items'][number]) => item.type.startsWith('security.');
  const security = items.filter(isSecurity).slice(0, MAX_DIGEST_ITEMS);
  const others = items
    .filter((item) => !isSecurity(item))
    .slice(0, Math.max(0, MAX_DIGEST_ITEMS - security.length));
  const chosen = new Set([...security, ...others]);
  const listed = items.filter((item) => chosen.has(item));
  return { listed, more: items.length - listed.length };
}

export function renderNotificationDigest(publicUrl: string, input: DigestMailInput): RenderedMail {
  // The service reads at most DIGEST_MAX_ITEMS rows and counts the rest (`total`).
  const count = Math.max(input.total ?? 0, input.items.length);
  const first = input.items[0];
  const subject =
    count === 1 && first !== undefined ? subjectOf(first.type) : `${count} new notifications on gigwire`;
  const { listed } = digestItems(input.items);
  const more = count - listed.length;
  const username = oneLine(input.username);
  const sections = listed.map((item) => ({
    item: { ...item, title: oneLine(item.title), body: oneLine(item.body) },
    // The web app routes by the hash: /#/contracts/…, never a server path (those are 404s).
    href: `${publicUrl}/#${item.linkPath}`,
    receipt: receiptOf(item).map(oneLine),
  }));
  const moreLine = more === 0 ? [] : [`…and ${more} more: ${publicUrl}/#/notifications`];
  // The one-click unsubscribe link (the same as the List-Unsubscribe header): it opens a page whose
  // button unsubscribes, so a scanner that follows it changes nothing.
  const unsubscribe =
    input.unsubscribeToken === undefined ? undefined : unsubscribeUrl(publicUrl, input.unsubscribeToken);
  const text = [
    `Hi ${username},`,
    count === 1 ? 'here is what happened on gigwire:' : `here are ${count} things that happened on gigwire:`,
    ...sections.map(({ item, href, receipt }) =>
      [
        `* ${item.title}`,
        `  ${item.body}`,
        ...receipt.map((line) => `  ${line}`),
        `  ${actionOf(item.type)}: ${href}`,
      ].join('\n'),
    ),
    ...moreLine,
    `All your notifications: ${publicUrl}/#/notifications (which are emailed: PUT /v1/me/notification-preferences)`,
    ...(unsubscribe === undefined
      ? []
      : [`Stop these emails (security warnings are still sent): ${unsubscribe}`]),
  ].join('\n\n');
  const html = `<!doctype html>
<html><body style="font-family:system-ui,sans-serif;max-width:560px;margin:auto">
<h2>${escapeHtml(subject)}</h2>
<p>Hi ${escapeHtml(username)},</p>
${sections
  .map(
    ({ item, href, receipt }) => `<div style="border-top:1px solid #ddd;padding:8px 0">
<h3 style="margin:4px 0">${escapeHtml(item.title)}</h3>
<p>${escapeHtml(item.body)}</p>
${receipt.length === 0 ? '' : `<table style="font-size:13px;color:#333">${receipt.map((line) => `<tr><td>${escapeHtml(line)}</td></tr>`).join('')}</table>`}
<p><a href="${escapeHtml(href)}" style="color:#1f6feb">${escapeHtml(actionOf(item.type))}</a></p>
</div>`,
  )
  .join('\n')}
${more === 0 ? '' : `<p><a href="${escapeHtml(`${publicUrl}/#/notifications`)}">…and ${more} more</a></p>`}
<p style="color:#666;font-size:12px">gigwire · <a href="${escapeHtml(`${publicUrl}/#/notifications`)}">all your notifications</a>${
    unsubscribe === undefined ? '' : ` · <a href="${escapeHtml(unsubscribe)}">unsubscribe</a>`
  }</p>
</body></html>
`;
  return { subject, text: `${text}\n`, html };
}
