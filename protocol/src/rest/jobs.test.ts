import { describe, expect, it } from 'vitest';
import { CreateJobRequest, JobSearchQuery, UpdateBidRequest, UpdateJobRequest } from './jobs.js';

describe('jobs REST schemas', () => {
  const categoryId = '6f1c2a8e-0b0e-4f3c-9a57-2d7f0e1c4b21';

  it('a job needs a positive integer budget ≤ 2^53 − 1 and no unknown fields', () => {
    const job = {
      title: 'T',
      description: 'D',
      categoryId,
      budget: { kind: 'fixed', amount: 1, currency: 'USD' },
    };
    expect(CreateJobRequest.parse(job)).toMatchObject({ skills: [], remote: false });
    for (const amount of [0, -1, 1.5, 2 ** 53, '100']) {
      expect(CreateJobRequest.safeParse({ ...job, budget: { ...job.budget, amount } }).success).toBe(false);
    }
    expect(CreateJobRequest.safeParse({ ...job, status: 'closed' }).success).toBe(false);
    expect(UpdateJobRequest.safeParse({ hirerId: categoryId }).success).toBe(false);
  });

  it('a bid PATCH leaves absent fields absent (no default blanks the cover letter)', () => {
    expect(UpdateBidRequest.parse({ amount: 5 })).toEqual({ amount: 5 });
  });

  it('search splits comma lists, parses booleans and numbers, refuses unknown values', () => {
    expect(
      JobSearchQuery.parse({
        skills: 'react, node',
        status: 'open,closed',
        remote: 'false',
        budgetMin: '10',
      }),
    ).toEqual({
      skills: ['react', 'node'],
      status: ['open', 'closed'],
      remote: false,
      budgetMin: 10,
      limit: 20,
    });
    for (const bad of [
      { remote: 'yes' },
      { status: 'open,asleep' },
      { budgetMax: '-3' },
      { budgetMax: '' },
      { budgetMin: ' ' },
      { budgetMin: '0x10' },
      { budgetMin: '1e3' },
      { budgetMax: '9007199254740992' },
      { sort: 'cheap' },
      { page: '2' },
    ]) {
      expect(JobSearchQuery.safeParse(bad).success).toBe(false);
    }
  });
});
