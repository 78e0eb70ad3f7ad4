import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { UserId } from '../../../protocol/src/ids.js';
import type { BidStatus, JobStatus } from '../../db/tables/marketplace.table.js';
import {
  type Actor,
  canBidOn,
  canChangeBid,
  canChangeJob,
  canSeeBid,
  checkAmount,
  checkCurrency,
  checkDeadline,
  checkSkills,
  MAX_AMOUNT,
  MAX_SKILLS,
  normalizeSkills,
} from './rules.js';

const hirer: Actor = { userId: '00000000-0000-4000-8000-000000000001' as UserId, roles: ['hirer'] };
const worker: Actor = { userId: '00000000-0000-4000-8000-000000000002' as UserId, roles: ['worker'] };
const both: Actor = { userId: hirer.userId, roles: ['hirer', 'worker'] };
const admin: Actor = { userId: '00000000-0000-4000-8000-000000000003' as UserId, roles: ['admin'] };
const JOB_STATUSES: JobStatus[] = ['open', 'in_progress', 'completed', 'cancelled', 'closed'];
const BID_STATUSES: BidStatus[] = ['pending', 'accepted', 'rejected', 'withdrawn'];

describe('normalizeSkills', () => {
  it('trims, lowercases, collapses spaces and drops empties and duplicates, keeping first order', () => {
    expect(normalizeSkills([' React', 'react ', 'Node  JS', '', '  ', 'node js', 'Go'])).toEqual([
      'react',
      'node js',
      'go',
    ]);
  });

  it('is idempotent and never yields duplicates or blanks', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ maxLength: 12 }), { maxLength: 20 }), (skills) => {
        const once = normalizeSkills(skills);
        expect(normalizeSkills(once)).toEqual(once);
        expect(new Set(once).size).toBe(once.length);
        for (const skill of once) expect(skill.trim()).toBe(skill);
        for (const skill of once) expect(skill).not.toBe('');
      }),
    );
  });

  it('checkSkills limits count and length', () => {
    expect(checkSkills(['a'])).toBeNull();
    expect(checkSkills(Array.from({ length: MAX_SKILLS + 1 }, (_, i) => `s${i}`))?.code).toBe(
      'VALIDATION_FAILED',
    );
    expect(checkSkills(['x'.repeat(51)])?.code).toBe('VALIDATION_FAILED');
  });
});

describe('amounts, currency, deadline', () => {
  it('accepts 1..2^53-1 minor units only', () => {
    expect(checkAmount(1n, 'a')).toBeNull();
    expect(checkAmount(MAX_AMOUNT, 'a')).toBeNull();
    expect(checkAmount(0n, 'a')?.code).toBe('VALIDATION_FAILED');
    expect(checkAmount(-5n, 'a')?.code).toBe('VALIDATION_FAILED');
    expect(checkAmount(MAX_AMOUNT + 1n, 'a')?.details).toMatchObject({ errors: [{ path: 'a' }] });
  });

  it('prices jobs in the platform currency and deadlines in the future', () => {
    expect(checkCurrency('USD', 'USD')).toBeNull();
    expect(checkCurrency('EUR', 'USD')?.code).toBe('VALIDATION_FAILED');
    const now = new Date('2026-12-04T12:00:00.000Z');
    expect(checkDeadline(null, now)).toBeNull();
    expect(checkDeadline(new Date('2026-12-05T00:00:00.000Z'), now)).toBeNull();
    expect(checkDeadline(now, now)?.code).toBe('VALIDATION_FAILED');
    expect(checkDeadline(new Date('9999-12-31T23:59:59.999Z'), now)).toBeNull();
    expect(checkDeadline(new Date('9999-12-31T23:59:59.999-00:01'), now)?.code).toBe('VALIDATION_FAILED');
    expect(checkDeadline(new Date(Number.NaN), now)?.code).toBe('VALIDATION_FAILED');
  });
});

describe('canChangeJob', () => {
  it('only the hirer (403), only while open (409 naming the status)', () => {
    for (const status of JOB_STATUSES) {
      const job = { hirer_id: hirer.userId, status };
      expect(canChangeJob(job, worker, 'change')?.code).toBe('FORBIDDEN');
      expect(canChangeJob(job, admin, 'change')?.code).toBe('FORBIDDEN');
      const own = canChangeJob(job, hirer, 'change');
      if (status === 'open') expect(own).toBeNull();
      else expect(own).toMatchObject({ code: 'INVALID_TRANSITION', details: { state: status } });
    }
  });
});

describe('canBidOn', () => {
  it('a worker on someone else’s open job; own job 403 even with both roles; other statuses 409', () => {
    for (const status of JOB_STATUSES) {
      const job = { hirer_id: hirer.userId, status };
      expect(canBidOn(job, hirer)?.code).toBe('FORBIDDEN');
      expect(canBidOn(job, admin)?.code).toBe('FORBIDDEN');
      expect(canBidOn(job, both)?.code).toBe('FORBIDDEN');
      const bid = canBidOn(job, worker);
      if (status === 'open') expect(bid).toBeNull();
      else
        expect(bid).toMatchObject({ code: 'CONFLICT', details: { reason: 'JOB_NOT_OPEN', state: status } });
    }
  });
});

describe('bids: visibility and changes', () => {
  it('the worker, the job’s hirer and admins see a bid; nobody else', () => {
    const bid = { worker_id: worker.userId };
    const job = { hirer_id: hirer.userId };
    expect(canSeeBid(bid, job, worker)).toBe(true);
    expect(canSeeBid(bid, job, hirer)).toBe(true);
    expect(canSeeBid(bid, job, admin)).toBe(true);
    const stranger: Actor = {
      userId: '00000000-0000-4000-8000-000000000009' as UserId,
      roles: ['worker', 'hirer'],
    };
    expect(canSeeBid(bid, job, stranger)).toBe(false);
  });

  it('only its worker changes a bid (403), only while pending (409)', () => {
    for (const status of BID_STATUSES) {
      const bid = { worker_id: worker.userId, status };
      expect(canChangeBid(bid, hirer, 'change')?.code).toBe('FORBIDDEN');
      const own = canChangeBid(bid, worker, 'withdraw');
      if (status === 'pending') expect(own).toBeNull();
      else expect(own).toMatchObject({ code: 'INVALID_TRANSITION', details: { state: status } });
    }
  });
});
