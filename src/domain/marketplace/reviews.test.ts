import { describe, expect, it } from 'vitest';
import type { ContractId, UserId } from '../../../protocol/src/ids.js';
import { toPerformance } from './performance.js';
import { canSeeReview, checkCanReview, checkReviewInput, RATING_PRIOR, ratingSummary } from './reviews.js';

const hirer = '00000000-0000-4000-8000-00000000000a' as UserId;
const worker = '00000000-0000-4000-8000-00000000000b' as UserId;
const other = '00000000-0000-4000-8000-00000000000c' as UserId;
const now = new Date('2026-01-10T00:00:00Z');
const contract = {
  id: '00000000-0000-4000-8000-0000000000cc' as ContractId,
  hirer_id: hirer,
  worker_id: worker,
  state: 'completed' as const,
  review_deadline_at: new Date('2026-01-20T00:00:00Z'),
};
const as = (userId: UserId, ...roles: ('admin' | 'worker' | 'hirer')[]) => ({ userId, roles });

describe('rating summary (Bayesian average)', () => {
  it('without reviews: count 0, no average, the prior mean', () => {
    expect(ratingSummary(undefined)).toEqual({ count: 0, average: null, bayesian: RATING_PRIOR.mean });
    expect(ratingSummary({ count: 0, sum: 0 })).toEqual({ count: 0, average: null, bayesian: 3.5 });
  });

  it('one review moves a newcomer a little, many reviews dominate the prior', () => {
    expect(ratingSummary({ count: 1, sum: 5 })).toEqual({ count: 1, average: 5, bayesian: 3.75 });
    expect(ratingSummary({ count: 1, sum: 1 })).toEqual({ count: 1, average: 1, bayesian: 3.08 });
    // (5·3.5 + 100·4.8) / 105 = 4.738…
    expect(ratingSummary({ count: 100, sum: 480 })).toEqual({ count: 100, average: 4.8, bayesian: 4.74 });
  });

  it('ranks a long good record above a single perfect review', () => {
    const single = ratingSummary({ count: 1, sum: 5 });
    const record = ratingSummary({ count: 40, sum: 40 * 4.5 });
    expect(single.average).toBeGreaterThan(record.average as number);
    expect(record.bayesian).toBeGreaterThan(single.bayesian);
  });

  it('stays within 1–5 and rounds to 2 decimals', () => {
    for (let count = 1; count <= 30; count++) {
      for (const stars of [1, 2, 3, 4, 5]) {
        const s = ratingSummary({ count, sum: count * stars });
        expect(s.bayesian).toBeGreaterThanOrEqual(1);
        expect(s.bayesian).toBeLessThanOrEqual(5);
        expect(Math.round(s.bayesian * 100)).toBeCloseTo(s.bayesian * 100, 9);
        expect(s.average).toBe(stars);
      }
    }
  });
});

describe('who may review', () => {
  it('only the two parties (others: 404), only after completed/resolved, only before the deadline', () => {
    expect(checkCanReview(contract, as(hirer), now)).toBeNull();
    expect(checkCanReview(contract, as(worker), now)).toBeNull();
    expect(checkCanReview({ ...contract, state: 'resolved' }, as(worker), now)).toBeNull();
    expect(checkCanReview(contract, as(other, 'admin'), now)?.code).toBe('NOT_FOUND');
    expect(checkCanReview(undefined, as(hirer), now)?.code).toBe('NOT_FOUND');
    for (const state of ['active', 'delivered', 'disputed', 'cancelled'] as const) {
      const refusal = checkCanReview({ ...contract, state }, as(hirer), now);
      expect(refusal?.code).toBe('INVALID_TRANSITION');
      expect(refusal?.details).toMatchObject({ state });
    }
    const atDeadline = checkCanReview(contract, as(hirer), contract.review_deadline_at);
    expect(atDeadline?.code).toBe('CONFLICT');
    expect(atDeadline?.details).toMatchObject({ reason: 'REVIEW_WINDOW_CLOSED' });
    expect(checkCanReview({ ...contract, review_deadline_at: null }, as(hirer), now)?.code).toBe('CONFLICT');
  });

  it('input: integer 1–5 stars, text ≤ 2000', () => {
    expect(checkReviewInput({ rating: 5, text: '' })).toBeNull();
    expect(checkReviewInput({ rating: 1, text: 'x'.repeat(2000) })).toBeNull();
    for (const rating of [0, 6, 2.5, Number.NaN]) {
      expect(checkReviewInput({ rating, text: '' })?.code).toBe('VALIDATION_FAILED');
    }
    expect(checkReviewInput({ rating: 3, text: 'x'.repeat(2001) })?.code).toBe('VALIDATION_FAILED');
  });
});

describe('who sees a review', () => {
  const blind = { author_id: hirer, published_at: null, hidden_at: null };
  const published = { ...blind, published_at: now };
  const hidden = { ...published, hidden_at: now };

  it('blind: its author only (not the subject, not admins)', () => {
    expect(canSeeReview(blind, as(hirer))).toBe(true);
    expect(canSeeReview(blind, as(worker))).toBe(false);
    expect(canSeeReview(blind, as(other, 'admin'))).toBe(false);
  });

  it('published: everyone; hidden: admins only, its author included among those who do not', () => {
    expect(canSeeReview(published, as(other))).toBe(true);
    expect(canSeeReview(hidden, as(other))).toBe(false);
    expect(canSeeReview(hidden, as(hirer))).toBe(false);
    expect(canSeeReview(hidden, as(other, 'admin'))).toBe(true);
  });
});

describe('performance figures', () => {
  it('completion rate counts resolved as carried through; null before anything ended', () => {
    const base = {
      total: 0,
      in_progress: 0,
      completed: 0,
      resolved: 0,
      cancelled: 0,
      delivered_as_worker: 0,
      on_time_as_worker: 0,
      earned: '0',
      spent: '0',
    };
    expect(toPerformance(base).completionRate).toBeNull();
    expect(
      toPerformance({
        ...base,
        total: 4,
        completed: 1,
        resolved: 1,
        cancelled: 1,
        in_progress: 1,
        earned: '9007199254740991',
      }),
    ).toMatchObject({ completionRate: 0.67, contracts: 4, totalEarned: Number.MAX_SAFE_INTEGER });
  });
});
