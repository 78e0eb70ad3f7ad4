import { describe, expect, it } from 'vitest';
import { contentOf, formatAmount, linkPathOf } from './content.js';
import { notificationsOf } from './from-events.js';
import { ALL_NOTIFICATION_TYPES, decideDelivery } from './types.js';

const hirer = '5d2c8f3a-9b1e-4c7d-8a6f-2e4b9c1d7a35';
const worker = 'a3e1f9b2-6c4d-4e8a-b7f1-9d2c5e8a3b60';

describe('notificationsOf', () => {
  it.each([
    ['bid.placed', { hirerId: hirer, workerId: worker, notify: [hirer] }, [[hirer, 'bid.received']]],
    ['bid.accepted', { workerId: worker, notify: [worker, hirer] }, [[worker, 'bid.accepted']]],
    [
      'bid.rejected',
      { workerId: worker, reason: 'job_closed', notify: [worker] },
      [[worker, 'bid.rejected']],
    ],
    ['bid.withdrawn', { workerId: worker, notify: [hirer] }, []],
    ['contract.deliver', { notify: [hirer] }, [[hirer, 'contract.delivered']]],
    ['contract.request_changes', { notify: [worker] }, [[worker, 'contract.changes_requested']]],
    ['contract.approve', { notify: [worker] }, [[worker, 'contract.completed']]],
    [
      'contract.auto_approve',
      { notify: [worker, hirer] },
      [
        [worker, 'contract.completed'],
        [hirer, 'contract.completed'],
      ],
    ],
    ['contract.cancel', { notify: [worker] }, [[worker, 'contract.cancelled']]],
    ['contract.dispute', { notify: [hirer] }, [[hirer, 'contract.disputed']]],
    [
      'contract.resolve',
      { notify: [hirer, worker, hirer] },
      [
        [hirer, 'contract.resolved'],
        [worker, 'contract.resolved'],
      ],
    ],
    ['contract.accept', { notify: [worker] }, []],
    ['contract.toString', { notify: [worker] }, []],
    ['review.published', { notify: [worker] }, [[worker, 'review.published']]],
    [
      'review.published',
      { subjectId: hirer, authorId: worker, notify: [hirer, worker] },
      [[hirer, 'review.published']],
    ],
    ['payment.succeeded', { userId: hirer, kind: 'top_up' }, [[hirer, 'payment.succeeded']]],
    ['payment.succeeded', { userId: worker, kind: 'withdrawal' }, [[worker, 'payout.sent']]],
    ['payment.failed', { userId: worker, kind: 'withdrawal' }, [[worker, 'payment.failed']]],
    [
      'transfer.received',
      { fromUserId: hirer, toUserId: worker, amount: 5 },
      [[worker, 'transfer.received']],
    ],
    ['user.new_login', { userId: hirer }, [[hirer, 'security.new_login']]],
    ['user.session_revoked', { userId: hirer }, [[hirer, 'security.session_revoked']]],
    ['user.registered', { userId: hirer }, []],
    ['bid.placed', { notify: ['not-a-uuid'] }, []],
  ] as const)('%s %j → %j', (type, payload, expected) => {
    const intents = notificationsOf({ type, payload: { ...payload } });
    expect(intents.map((i) => [i.userId, i.type])).toEqual(expected);
  });

  it.each([
    ['constructor', {}],
    ['toString', {}],
    ['__proto__', {}],
    ['hasOwnProperty', { userId: hirer }],
    ['payment.succeeded', null],
    ['payment.failed', null],
    ['bid.placed', null],
    ['escrow.released', null],
    ['contract.deliver', null],
    ['user.new_login', []],
    ['payment.succeeded', 'null'],
    ['transfer.received', 42],
  ] as const)('a poison event %s %j causes nothing and never throws', (type, payload) => {
    expect(notificationsOf({ type, payload })).toEqual([]);
  });

  it('keeps only scalar fields worth a link or a sentence', () => {
    const [intent] = notificationsOf({
      type: 'bid.placed',
      payload: { bidId: 'b', jobId: 'j', amount: 1250, notify: [hirer], secret: 'x', nested: { a: 1 } },
    });
    expect(intent?.data).toEqual({ bidId: 'b', jobId: 'j', amount: 1250 });
  });
});

describe('decideDelivery', () => {
  it.each([
    [{ inApp: true, email: 'never' }, false, { store: true, inApp: true, email: false }],
    [{ inApp: true, email: 'offline' }, false, { store: true, inApp: true, email: true }],
    [{ inApp: true, email: 'offline' }, true, { store: true, inApp: true, email: false }],
    [{ inApp: true, email: 'always' }, true, { store: true, inApp: true, email: true }],
    [{ inApp: false, email: 'never' }, false, { store: false, inApp: false, email: false }],
    [{ inApp: false, email: 'offline' }, true, { store: false, inApp: false, email: false }],
    [{ inApp: false, email: 'offline' }, false, { store: true, inApp: false, email: true }],
    [{ inApp: false, email: 'always' }, true, { store: true, inApp: false, email: true }],
  ] as const)('%j online=%s → %j', (preference, online, expected) => {
    expect(decideDelivery(preference, online)).toEqual(expected);
  });
});

describe('content', () => {
  it('says every type with its data and no data at all', () => {
    for (const type of ALL_NOTIFICATION_TYPES) {
      const bare = contentOf(type, {}, { currency: 'USD' });
      expect(bare.title.length, type).toBeGreaterThan(0);
      expect(bare.body.length, type).toBeGreaterThan(0);
      expect(linkPathOf(type, {})).toMatch(/^\//);
    }
    expect(
      contentOf(
        'bid.received',
        { amount: 25_000 },
        { currency: 'EUR', jobTitle: 'Logo', otherName: 'alice' },
      ),
    ).toEqual({ title: 'New bid on "Logo"', body: 'alice bid 250.00 EUR on "Logo".' });
    expect(linkPathOf('messages.unread', { roomId: 'r/1' })).toBe('/rooms/r%2F1');
    // Routes the web app has: its Security section, the job board for a bid without its job.
    expect(linkPathOf('security.new_login', {})).toBe('/profile/security');
    expect(linkPathOf('bid.received', {})).toBe('/');
    expect(linkPathOf('bid.received', { jobId: 'j1' })).toBe('/jobs/j1');
  });

  it('formats minor units', () => {
    expect(formatAmount(5, 'USD')).toBe('0.05 USD');
    expect(formatAmount(-1234, 'USD')).toBe('-12.34 USD');
    expect(formatAmount('12', 'USD')).toBe('an amount in USD');
  });
});

describe('money notifications say only what is known', () => {
  it('a top-up the provider never answered does not claim nothing was charged', () => {
    const unconfirmed = contentOf(
      'payment.failed',
      { kind: 'top_up', amount: 2_500, failureCode: 'provider_unavailable' },
      { currency: 'USD' },
    );
    expect(unconfirmed.body).not.toContain('nothing was charged');
    expect(unconfirmed.body).toContain('as soon as the provider confirms it');
    const declined = contentOf(
      'payment.failed',
      { kind: 'top_up', amount: 2_500, failureCode: 'card_declined' },
      { currency: 'USD' },
    );
    expect(declined.body).toContain('nothing was charged');
  });

  it('an approval says the escrow is being released (its task may still fail), not that it was', () => {
    expect(contentOf('contract.completed', { event: 'approve' }, { currency: 'USD' }).body).toContain(
      'is being released',
    );
  });
});

describe('escrow receipts', () => {
  const payload = (toWorker: number, toHirer: number) => ({
    contractId: '0b6f3c1e-8d2a-4f5b-9c7e-1a2b3c4d5e6f',
    hirerId: hirer,
    workerId: worker,
    toWorker,
    fee: 100,
    toHirer,
  });
  const receipts = (type: string, p: Record<string, unknown>) =>
    notificationsOf({ type, payload: p }).map((intent) => [intent.userId, intent.type, intent.data.amount]);

  it('tells each party the escrow paid, with what it received', () => {
    expect(receipts('escrow.released', payload(900, 0))).toEqual([[worker, 'escrow.received', 900]]);
    expect(receipts('escrow.refunded', payload(0, 1_000))).toEqual([[hirer, 'escrow.received', 1_000]]);
    expect(receipts('escrow.split', payload(450, 500))).toEqual([
      [worker, 'escrow.received', 450],
      [hirer, 'escrow.received', 500],
    ]);
  });

  it('says what the money is for and leads to the wallet', () => {
    const release = contentOf('escrow.received', { action: 'release', amount: 900 }, { currency: 'USD' });
    expect(release.body).toContain('9.00 USD for your approved work');
    expect(
      contentOf('escrow.received', { action: 'refund', amount: 1_000 }, { currency: 'USD' }).body,
    ).toContain('back in your wallet');
    expect(linkPathOf('escrow.received', {})).toBe('/wallet');
  });
});
