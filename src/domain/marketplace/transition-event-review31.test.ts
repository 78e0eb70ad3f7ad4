/**
 * Review 31: an INVALID_TRANSITION refusal of a job, bid or review names the `event` that was tried
 * beside the `state` it met, as PROTOCOL.md and protocol/src/codes.ts say of every INVALID_TRANSITION
 * ("`state` names the current state, `event` what was tried") and as contracts and the accept do.
 * Closing or editing a job that is not open, withdrawing or editing a bid that is not pending, and
 * reviewing a contract that has not ended gave `state` alone: a client's generic 409 handler had no
 * event to name.
 */
import { describe, expect, it } from 'vitest';
import type { ContractId, UserId } from '../../../protocol/src/ids.js';
import { checkCanReview } from './reviews.js';
import { type Actor, canChangeBid, canChangeJob } from './rules.js';

const hirer: Actor = { userId: '00000000-0000-4000-8000-000000000001' as UserId, roles: ['hirer'] };
const worker: Actor = { userId: '00000000-0000-4000-8000-000000000002' as UserId, roles: ['worker'] };

describe('INVALID_TRANSITION refusals of jobs, bids and reviews', () => {
  it('name the event tried and the state met', () => {
    const job = { hirer_id: hirer.userId, status: 'in_progress' as const };
    expect(canChangeJob(job, hirer, 'close')).toMatchObject({
      code: 'INVALID_TRANSITION',
      details: { state: 'in_progress', event: 'close' },
    });
    expect(canChangeJob(job, hirer, 'change')).toMatchObject({
      code: 'INVALID_TRANSITION',
      details: { state: 'in_progress', event: 'update' },
    });
    const bid = { worker_id: worker.userId, status: 'accepted' as const };
    expect(canChangeBid(bid, worker, 'withdraw')).toMatchObject({
      code: 'INVALID_TRANSITION',
      details: { state: 'accepted', event: 'withdraw' },
    });
    expect(canChangeBid(bid, worker, 'change')).toMatchObject({
      code: 'INVALID_TRANSITION',
      details: { state: 'accepted', event: 'update' },
    });
    const contract = {
      id: '00000000-0000-4000-8000-0000000000cc' as ContractId,
      hirer_id: hirer.userId,
      worker_id: worker.userId,
      state: 'active' as const,
      review_deadline_at: null,
    };
    expect(checkCanReview(contract, worker, new Date())).toMatchObject({
      code: 'INVALID_TRANSITION',
      details: { state: 'active', event: 'review' },
    });
  });
});
