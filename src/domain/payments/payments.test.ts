import { describe, expect, it } from 'vitest';
import { decideProviderEvent } from './payments.js';

describe('provider event decisions', () => {
  it('settle top-ups: success credits (also after a failure), failure fails only a pending one', () => {
    const topUp = (status: 'pending' | 'succeeded' | 'failed') => ({ kind: 'top_up' as const, status });
    expect(decideProviderEvent(topUp('pending'), 'charge.succeeded')).toEqual({ action: 'credit' });
    expect(decideProviderEvent(topUp('failed'), 'charge.succeeded')).toEqual({ action: 'credit' });
    expect(decideProviderEvent(topUp('succeeded'), 'charge.succeeded').action).toBe('ignore');
    expect(decideProviderEvent(topUp('pending'), 'charge.failed')).toEqual({ action: 'mark-failed' });
    expect(decideProviderEvent(topUp('succeeded'), 'charge.failed').action).toBe('ignore');
    expect(decideProviderEvent(topUp('failed'), 'charge.failed').action).toBe('ignore');
    expect(decideProviderEvent(topUp('pending'), 'payout.paid').action).toBe('ignore');
  });

  it('a top-up failed for its currency is parked already: another success does not credit it', () => {
    const parked = { kind: 'top_up' as const, status: 'failed' as const, failureCode: 'currency_mismatch' };
    expect(decideProviderEvent(parked, 'charge.succeeded')).toEqual({
      action: 'ignore',
      reason: 'already parked for its currency',
    });
    expect(decideProviderEvent(parked, 'charge.failed').action).toBe('ignore');
  });

  it('a top-up failed for its amount is parked already: another success does not credit it', () => {
    const parked = { kind: 'top_up' as const, status: 'failed' as const, failureCode: 'amount_mismatch' };
    expect(decideProviderEvent(parked, 'charge.succeeded')).toEqual({
      action: 'ignore',
      reason: 'already parked for its amount',
    });
  });

  it('settle withdrawals: paid posts, failed voids before and reverses after paid, paid after failed is ignored', () => {
    const out = (status: 'pending' | 'succeeded' | 'failed') => ({ kind: 'withdrawal' as const, status });
    expect(decideProviderEvent(out('pending'), 'payout.paid')).toEqual({ action: 'post-hold' });
    expect(decideProviderEvent(out('pending'), 'payout.failed')).toEqual({ action: 'void-hold' });
    expect(decideProviderEvent(out('succeeded'), 'payout.failed')).toEqual({ action: 'reverse' });
    expect(decideProviderEvent(out('failed'), 'payout.paid').action).toBe('ignore');
    expect(decideProviderEvent(out('failed'), 'payout.failed').action).toBe('ignore');
    expect(decideProviderEvent(out('succeeded'), 'payout.paid').action).toBe('ignore');
    expect(decideProviderEvent(out('pending'), 'charge.succeeded').action).toBe('ignore');
  });
});
