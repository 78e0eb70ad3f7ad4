import { describe, expect, it } from 'vitest';
import type { UserId } from '../../../protocol/src/ids.js';
import { performanceAsSeenBy, toPerformance } from './performance.js';

const subject = 'a0000000-0000-4000-8000-000000000001' as UserId;
const other = 'a0000000-0000-4000-8000-000000000002' as UserId;
const figures = toPerformance({
  total: 2,
  in_progress: 1,
  completed: 1,
  resolved: 0,
  cancelled: 0,
  delivered_as_worker: 0,
  on_time_as_worker: 0,
  earned: '0',
  spent: '5000',
});

describe('performance as seen by', () => {
  it('keeps the money totals for the user themself and for admins', () => {
    expect(performanceAsSeenBy(figures, subject, { userId: subject, roles: ['hirer'] })).toEqual(figures);
    expect(performanceAsSeenBy(figures, subject, { userId: other, roles: ['admin'] })).toEqual(figures);
  });

  it('leaves them out for everyone else, whatever their other roles; counts and rates stay', () => {
    for (const roles of [[], ['worker'], ['hirer', 'worker']] as const) {
      const seen = performanceAsSeenBy(figures, subject, { userId: other, roles });
      expect(seen).not.toHaveProperty('totalSpent');
      expect(seen).not.toHaveProperty('totalEarned');
      const { totalEarned: _earned, totalSpent: _spent, ...counts } = figures;
      expect(seen).toEqual(counts);
    }
  });
});
