import { describe, expect, it } from 'vitest';
import type { OutboxEventId } from '../../../protocol/src/ids.js';
import { marketPushOf } from './live.js';

const hirer = '5d2c8f3a-9b1e-4c7d-8a6f-2e4b9c1d7a35';
const worker = 'a3e1f9b2-6c4d-4e8a-b7f1-9d2c5e8a3b60';
const jobId = '3c2b1a09-8f7e-4d6c-9b5a-4e3d2c1b0a98';
const bidId = '7a6b5c4d-3e2f-4a1b-8c9d-0e1f2a3b4c5d';
const contractId = 'c7d4e2a1-5b3f-4e6a-9c8d-1f2e3a4b5c6d';
const at = new Date('2026-01-01T00:00:00.000Z');
const event = (type: string, payload: Record<string, unknown>) => ({
  id: '9e1c4b7a-2d3f-4a8e-b5c6-7f8091a2b3c4' as OutboxEventId,
  type,
  payload,
  created_at: at,
});

describe('marketPushOf', () => {
  it('copies ids, the implied state and the time of a bid event, for its notify list only', () => {
    const push = marketPushOf(
      event('bid.placed', {
        bidId,
        jobId,
        workerId: worker,
        hirerId: hirer,
        coverLetter: 'private',
        notify: [hirer, hirer, 'not-a-user'],
      }),
    );
    expect(push).toEqual({
      userIds: [hirer],
      event: {
        id: '9e1c4b7a-2d3f-4a8e-b5c6-7f8091a2b3c4',
        type: 'bid.placed',
        jobId,
        bidId,
        state: 'pending',
        at: '2026-01-01T00:00:00.000Z',
      },
    });
  });

  it("carries a contract event's own state and version", () => {
    const push = marketPushOf(
      event('contract.deliver', {
        contractId,
        jobId,
        hirerId: hirer,
        workerId: worker,
        event: 'deliver',
        from: 'active',
        state: 'delivered',
        version: 2,
        notify: [hirer],
      }),
    );
    expect(push?.event).toMatchObject({
      type: 'contract.deliver',
      contractId,
      jobId,
      state: 'delivered',
      version: 2,
    });
    expect(push?.event).not.toHaveProperty('bidId');
  });

  it('pushes nothing for events without recipients or outside the marketplace', () => {
    expect(marketPushOf(event('job.posted', { jobId, notify: [] }))).toBeUndefined();
    expect(marketPushOf(event('job.closed', { jobId }))).toBeUndefined();
    expect(marketPushOf(event('user.registered', { userId: hirer, notify: [hirer] }))).toBeUndefined();
  });

  it('leaves out malformed ids and versions instead of pushing them', () => {
    const push = marketPushOf(event('bid.rejected', { bidId: 'x', jobId, version: -1, notify: [worker] }));
    expect(push?.event).toEqual({
      id: '9e1c4b7a-2d3f-4a8e-b5c6-7f8091a2b3c4',
      type: 'bid.rejected',
      jobId,
      state: 'rejected',
      at: '2026-01-01T00:00:00.000Z',
    });
  });
});
