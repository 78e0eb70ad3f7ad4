/**
 * Money review 31: an authentic provider event naming a failure code we do not know (providers add
 * decline and return reasons over time) was refused as malformed (400), so the provider redelivered
 * it for days and the money never moved: a returned payout never credited back, a failed top-up
 * pending for good (counted against the balance limit). The event is accepted; the unknown code is
 * dropped, so the generic one of its type applies (card_declined, payout_failed).
 */
import { describe, expect, it } from 'vitest';
import { ProviderEventBody, unknownFailureCodeOf } from './provider.js';

const event = (type: string, failureCode: unknown) => ({
  id: 'evt_review31',
  type,
  createdAt: 1_765_000_000,
  data: {
    paymentId: '5b0e7c8e-3c1d-4a3e-9a51-0d7c9e0f1a2b',
    providerRef: 'po_1',
    amount: 500,
    currency: 'USD',
    failureCode,
  },
});

describe('a provider event with a failure code we do not know', () => {
  it('is accepted with the code dropped (the generic code of its type applies), and the code is reported', () => {
    for (const type of ['payout.failed', 'charge.failed']) {
      const body = event(type, 'account_closed');
      const parsed = ProviderEventBody.safeParse(body);
      expect(parsed.success).toBe(true);
      expect(parsed.data?.data.failureCode).toBeUndefined();
      expect(unknownFailureCodeOf(body)).toBe('account_closed');
    }
  });

  it('keeps a known code, and still refuses a code that is not a short string', () => {
    expect(ProviderEventBody.parse(event('charge.failed', 'insufficient_funds')).data.failureCode).toBe(
      'insufficient_funds',
    );
    expect(unknownFailureCodeOf(event('charge.failed', 'insufficient_funds'))).toBeUndefined();
    expect(ProviderEventBody.safeParse(event('payout.failed', 42)).success).toBe(false);
    expect(ProviderEventBody.safeParse(event('payout.failed', 'x'.repeat(201))).success).toBe(false);
  });
});
