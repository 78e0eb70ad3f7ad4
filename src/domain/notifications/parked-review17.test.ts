/**
 * Money review 17: money parked in the ledger because its wallet was at the balance limit (a
 * returned payout, a charged top-up: payments.ts) is not in the wallet yet, so its notification
 * must not say it is; the others keep their text.
 */
import { describe, expect, it } from 'vitest';
import { contentOf } from './content.js';
import { notificationsOf } from './from-events.js';

const user = 'a3e1f9b2-6c4d-4e8a-b7f1-9d2c5e8a3b60';

const bodyOf = (type: string, payload: Record<string, unknown>) => {
  const [notification] = notificationsOf({ type, payload: { userId: user, amount: 500, ...payload } });
  if (notification === undefined) throw new Error(`no notification for ${type}`);
  return contentOf(notification.type, notification.data, { currency: 'USD' }).body;
};

describe('notifications of parked money', () => {
  it('a returned payout parked says it is added once the balance has room, not that it is back', () => {
    const parked = bodyOf('payment.failed', {
      kind: 'withdrawal',
      failureCode: 'payout_failed',
      parked: true,
    });
    expect(parked).toContain('as soon as your balance leaves room under its limit');
    expect(parked).not.toContain('is back in your wallet');
    expect(bodyOf('payment.failed', { kind: 'withdrawal', failureCode: 'payout_failed' })).toContain(
      'is back in your wallet',
    );
  });

  it('a top-up parked says it was received, not added', () => {
    const parked = bodyOf('payment.succeeded', { kind: 'top_up', parked: true });
    expect(parked).toContain('as soon as your balance leaves room under its limit');
    expect(parked).not.toContain('was added to your wallet');
    expect(bodyOf('payment.succeeded', { kind: 'top_up' })).toContain('was added to your wallet');
  });

  it('an escrow share parked for its receiver says so; the other share reads as before', () => {
    const intents = notificationsOf({
      type: 'escrow.split',
      payload: {
        contractId: 'c1f0e2d3-4b5a-4c6d-8e7f-9a0b1c2d3e4f',
        workerId: user,
        hirerId: 'b2d4f6a8-1c3e-4a5b-9c7d-0e2f4a6b8c1d',
        toWorker: 700,
        toHirer: 300,
        parkedUserIds: [user],
      },
    });
    const bodies = intents.map((n) => contentOf(n.type, n.data, { currency: 'USD' }).body);
    expect(bodies).toHaveLength(2);
    expect(bodies[0]).toContain('as soon as your balance leaves room under its limit');
    expect(bodies[1]).toContain('is in your wallet');
  });
});
