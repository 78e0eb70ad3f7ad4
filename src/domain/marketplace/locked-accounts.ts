/**
 * What locking an account does to the marketplace: its open jobs are closed (their pending bids
 * rejected, each bidder told, as when the hirer closes a job) and its pending bids withdrawn. A
 * locked account's profile is gone (404) and it can neither deliver nor pay: left as they were,
 * its jobs stayed listed and took bids nobody could accept, and its bids sat in hirers' lists. The
 * bids it withdraws are marked so: they do not count toward the worker's bids on the job once the
 * account is unlocked (MAX_BIDS_PER_WORKER_PER_JOB).
 * Each change goes through the same function as the user's own action, acting as them; one that
 * raced another change (a bid accepted a moment before) is left as that change made it.
 */
import type { UserId } from '../../../protocol/src/ids.js';
import { pendingBidIdsOf } from '../../db/repositories/bids.repo.js';
import { openJobIdsOf } from '../../db/repositories/jobs.repo.js';
import { isAppError } from '../../platform/errors.js';
import { withdrawBid } from './bids.js';
import { closeJob, type MarketplaceDeps } from './jobs.js';
import type { Actor } from './rules.js';

export async function retireLockedAccount(
  deps: MarketplaceDeps,
  userId: UserId,
): Promise<{ closedJobs: number; withdrawnBids: number }> {
  const self: Actor = { userId, roles: ['hirer', 'worker'] };
  const settled = async (change: () => Promise<unknown>): Promise<boolean> => {
    try {
      await change();
      return true;
    } catch (error) {
      // Moved on meanwhile (hired, closed, withdrawn): nothing left to do for it.
      if (isAppError(error) && error.code !== 'UNAVAILABLE' && error.code !== 'INTERNAL') return false;
      throw error;
    }
  };
  let closedJobs = 0;
  for (const jobId of await openJobIdsOf(deps.db, userId)) {
    if (await settled(() => closeJob(deps, self, jobId))) closedJobs += 1;
  }
  let withdrawnBids = 0;
  for (const bidId of await pendingBidIdsOf(deps.db, userId)) {
    if (await settled(() => withdrawBid(deps, self, bidId, undefined, { byLock: true }))) withdrawnBids += 1;
  }
  return { closedJobs, withdrawnBids };
}
