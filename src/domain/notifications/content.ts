/**
 * The words of each notification type (title and one-line body) and the link it points to, made
 * from its data plus a little context read at delivery (job title, the other party's name). One
 * exhaustive table: a new type does not compile until it can be said.
 */
import type { NotificationType } from './types.js';

export interface ContentContext {
  /** The title of data.jobId's job. */
  readonly jobTitle?: string;
  /** The other party: the bidder, the sender of a transfer, the reviewer, the room's senders. */
  readonly otherName?: string;
  readonly roomTitle?: string;
  /** Currency of amounts (the payment's, else the platform's). */
  readonly currency: string;
}

export interface Content {
  readonly title: string;
  readonly body: string;
}

type Data = Readonly<Record<string, unknown>>;

/** Minor units as "12.34 USD" (two decimals; the platform currencies have two). */
export function formatAmount(amount: unknown, currency: string): string {
  if (typeof amount !== 'number' || !Number.isSafeInteger(amount)) return `an amount in ${currency}`;
  const sign = amount < 0 ? '-' : '';
  const abs = Math.abs(amount);
  return `${sign}${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, '0')} ${currency}`;
}

const job = (ctx: ContentContext) => (ctx.jobTitle === undefined ? 'your job' : `"${ctx.jobTitle}"`);
const someone = (ctx: ContentContext) => ctx.otherName ?? 'Someone';

const RENDER: Readonly<Record<NotificationType, (data: Data, ctx: ContentContext) => Content>> = {
  'bid.received': (d, c) => ({
    title: `New bid on ${job(c)}`,
    body: `${someone(c)} bid ${formatAmount(d.amount, c.currency)} on ${job(c)}.`,
  }),
  'bid.accepted': (_d, c) => ({
    title: 'Your bid was accepted',
    body: `Your bid on ${job(c)} was accepted: the contract has started.`,
  }),
  'bid.rejected': (d, c) => ({
    title: 'Your bid was not accepted',
    body:
      d.reason === 'job_closed'
        ? `The job ${job(c)} was closed; your bid on it was not accepted.`
        : `Your bid on ${job(c)} was not accepted.`,
  }),
  'contract.delivered': (_d, c) => ({
    title: 'Work delivered',
    body: `The work for ${job(c)} was delivered. Approve it, or ask for changes.`,
  }),
  'contract.changes_requested': (_d, c) => ({
    title: 'Changes requested',
    body: `The hirer asked for changes to the work for ${job(c)}.`,
  }),
  'contract.completed': (d, c) => ({
    title: 'Contract completed',
    body:
      d.event === 'auto_approve'
        ? `The delivery for ${job(c)} was approved automatically; the escrow is being released to the worker.`
        : `The delivery for ${job(c)} was approved; the escrow is being released to the worker.`,
  }),
  'contract.cancelled': (_d, c) => ({
    title: 'Contract cancelled',
    body: `The contract for ${job(c)} was cancelled.`,
  }),
  'contract.disputed': (_d, c) => ({
    title: 'Contract disputed',
    body: `The contract for ${job(c)} is in dispute; an admin will resolve it.`,
  }),
  'contract.resolved': (_d, c) => ({
    title: 'Dispute resolved',
    body: `The dispute over ${job(c)} was resolved.`,
  }),
  // To either party: a hirer reviewed by their worker did no "work", and the job is the hirer's.
  'review.published': (d, c) => ({
    title: 'You have a new review',
    body: `${someone(c)} reviewed you${typeof d.rating === 'number' ? ` (${d.rating}/5)` : ''} on ${c.jobTitle === undefined ? 'a contract' : `"${c.jobTitle}"`}.`,
  }),
  'payment.succeeded': (d, c) => ({
    title: 'Top-up received',
    body:
      d.parked === true
        ? // Charged, but the wallet was at its balance limit (payments.ts parks it in the ledger).
          `${formatAmount(d.amount, c.currency)} was received; it is added to your wallet as soon as your balance leaves room under its limit.`
        : `${formatAmount(d.amount, c.currency)} was added to your wallet.`,
  }),
  'payment.failed': (d, c) => ({
    title: d.kind === 'withdrawal' ? 'Withdrawal failed' : 'Top-up failed',
    body:
      d.kind === 'withdrawal'
        ? d.parked === true
          ? `Your withdrawal of ${formatAmount(d.amount, c.currency)} failed; the amount is added back to your wallet as soon as your balance leaves room under its limit.`
          : `Your withdrawal of ${formatAmount(d.amount, c.currency)} failed; the amount is back in your wallet.`
        : d.failureCode === 'currency_mismatch'
          ? // Charged in another currency than the wallet's: parked for an operator (payments.ts).
            `Your top-up of ${formatAmount(d.amount, c.currency)} was charged in another currency than your wallet's, so it was not added to your wallet; it is kept aside to be refunded to your card.`
          : d.failureCode === 'amount_mismatch'
            ? // Charged for another amount than asked: parked for an operator (payments.ts).
              `Your top-up of ${formatAmount(d.amount, c.currency)} was charged for another amount than you asked, so it was not added to your wallet; it is kept aside to be refunded to your card.`
            : d.failureCode === 'provider_unavailable'
              ? // The provider did not answer: the charge may have gone through, and a late success
                // is still credited (payments.ts), so "nothing was charged" would be a guess.
                `Your top-up of ${formatAmount(d.amount, c.currency)} could not be confirmed by the payment provider; if your card was charged, the amount is added to your wallet as soon as the provider confirms it.`
              : `Your top-up of ${formatAmount(d.amount, c.currency)} failed; nothing was charged.`,
  }),
  'payout.sent': (d, c) => ({
    title: 'Withdrawal sent',
    body: `${formatAmount(d.amount, c.currency)} was paid out to your bank account.`,
  }),
  'transfer.received': (d, c) => ({
    title: 'Money received',
    body: `${someone(c)} sent you ${formatAmount(d.amount, c.currency)}.`,
  }),
  'escrow.received': (d, c) => ({
    title: 'Money received',
    body:
      d.parked === true
        ? `${formatAmount(d.amount, c.currency)} from a contract's escrow is yours; it is added to your wallet as soon as your balance leaves room under its limit.`
        : d.action === 'release'
          ? `${formatAmount(d.amount, c.currency)} for your approved work is in your wallet (the contract's escrow, less the platform fee).`
          : d.action === 'refund'
            ? `${formatAmount(d.amount, c.currency)} held in escrow for a cancelled contract is back in your wallet.`
            : `Your share of a resolved dispute, ${formatAmount(d.amount, c.currency)}, is in your wallet.`,
  }),
  'messages.unread': (d, c) => {
    const count = typeof d.count === 'number' ? d.count : 1;
    const where = c.roomTitle === undefined ? '' : ` in ${c.roomTitle}`;
    return {
      title: `${count} new message${count === 1 ? '' : 's'}${where}`,
      body: `${count} new message${count === 1 ? '' : 's'} from ${c.otherName ?? 'a member'}${where}.`,
    };
  },
  'security.new_login': (d) => ({
    title: 'New sign-in to your account',
    body: `Your account was signed in to from a new device${typeof d.ip === 'string' ? ` (${d.ip})` : ''}. If it was not you, change your password.`,
  }),
  'security.session_revoked': () => ({
    title: 'A session was signed out',
    body: 'An old sign-in token of one of your sessions was used again, so that session was signed out. If you did not expect this, change your password.',
  }),
};

export function contentOf(type: NotificationType, data: Data, context: ContentContext): Content {
  return RENDER[type](data, context);
}

const idOf = (value: unknown) => (typeof value === 'string' ? encodeURIComponent(value) : undefined);

/** Where the notification leads in the web app (relative to PUBLIC_URL). */
export function linkPathOf(type: NotificationType, data: Data): string {
  const contract = idOf(data.contractId);
  const jobId = idOf(data.jobId);
  switch (type.split('.')[0]) {
    case 'contract':
    case 'review':
      if (contract !== undefined) return `/contracts/${contract}`;
      return jobId === undefined ? '/' : `/jobs/${jobId}`;
    case 'bid':
      // An accepted bid started a contract: its mail says "Open the contract" (the web app's list
      // opens it too). Otherwise the job (the app has no "my bids" page), else the job board.
      if (contract !== undefined) return `/contracts/${contract}`;
      return jobId === undefined ? '/' : `/jobs/${jobId}`;
    case 'payment':
    case 'payout':
    case 'transfer':
    case 'escrow':
      return '/wallet';
    case 'messages': {
      const room = idOf(data.roomId);
      return room === undefined ? '/rooms' : `/rooms/${room}`;
    }
    default:
      // The Security section of the web app's profile (change password, sign out everywhere).
      return '/profile/security';
  }
}
