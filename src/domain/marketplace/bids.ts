/**
 * Bids (issue 12 §2): place, update and withdraw (the worker), list (the job's hirer sees all of a
 * job's bids, a worker their own). Accepting a bid starts a contract and lives with the contract
 * service (a remaining step). A bid is visible to its worker, the job's hirer and admins; to anyone
 * else it does not exist (404).
 */
import type { Transaction } from 'kysely';
import type { BidId, JobId, UserId } from '../../../protocol/src/ids.js';
import type { Database } from '../../db/database.js';
import { isUniqueViolation } from '../../db/errors.js';
import {
  type BidRow,
  countBidsOfWorker,
  findBid,
  insertBid,
  listBids,
  lockBid,
  ONE_LIVE_BID_INDEX,
  updateBidIfVersion,
} from '../../db/repositories/bids.repo.js';
import { findJob, lockJob } from '../../db/repositories/jobs.repo.js';
import { insertOutboxEvent } from '../../db/repositories/outbox.repo.js';
import { lockedAtShared } from '../../db/repositories/users.repo.js';
import type { BidStatus } from '../../db/tables/marketplace.table.js';
import { AppError } from '../../platform/errors.js';
import { decodeCursor, pageOf } from '../pagination.js';
import { type MarketplaceDeps, MarketplaceEvent, visibleJobRow } from './jobs.js';
import { type Actor, canBidOn, canChangeBid, canSeeBid, checkAmount } from './rules.js';

/**
 * Bids one worker may place on one job in all, withdrawn ones included (but those an account lock
 * withdrew: the worker did not).
 */
export const MAX_BIDS_PER_WORKER_PER_JOB = 5;

export interface Bid {
  readonly id: BidId;
  readonly jobId: JobId;
  readonly workerId: UserId;
  /** Minor units of the job's currency. */
  readonly amount: bigint;
  readonly deliveryDays: number;
  readonly coverLetter: string;
  readonly status: BidStatus;
  readonly version: number;
  readonly createdAt: Date;
  readonly updatedAt: Date;
  readonly decidedAt: Date | null;
}

export const toBid = (row: BidRow): Bid => ({
  id: row.id,
  jobId: row.job_id,
  workerId: row.worker_id,
  amount: BigInt(row.amount),
  deliveryDays: row.delivery_days,
  coverLetter: row.cover_letter,
  status: row.status,
  version: row.version,
  createdAt: row.created_at,
  updatedAt: row.updated_at,
  decidedAt: row.decided_at,
});

export interface BidInput {
  readonly amount: bigint;
  readonly deliveryDays: number;
  readonly coverLetter: string;
}

const orThrow = (error: AppError | null): void => {
  if (error !== null) throw error;
};

function checkDeliveryDays(days: number): void {
  if (!Number.isInteger(days) || days < 1 || days > 365) {
    throw new AppError('VALIDATION_FAILED', 'deliveryDays must be 1–365', {
      details: { errors: [{ path: 'body.deliveryDays', message: 'must be an integer from 1 to 365' }] },
    });
  }
}

/**
 * POST /v1/jobs/:id/bids: a worker, not on their own job, while it is open, one live bid per job.
 * The job row is locked FOR SHARE: bids run side by side, but none slips past a close or an accept
 * that is committing. A second live bid → CONFLICT with `details.reason: 'LIVE_BID_EXISTS'`.
 */
export function placeBid(deps: MarketplaceDeps, actor: Actor, jobId: JobId, input: BidInput): Promise<Bid> {
  return deps.db.transaction().execute((trx) => placeBidIn(trx, deps, actor, jobId, input));
}

/**
 * `placeBid` inside the caller's transaction (the REST edge's Idempotency-Key transaction). After a
 * refusal the transaction is unusable (the failed insert aborted it): let the error roll it back.
 */
export async function placeBidIn(
  trx: Transaction<Database>,
  deps: Pick<MarketplaceDeps, 'clock'>,
  actor: Actor,
  jobId: JobId,
  input: BidInput,
): Promise<Bid> {
  orThrow(checkAmount(input.amount, 'body.amount'));
  checkDeliveryDays(input.deliveryDays);
  const now = deps.clock.now();
  const job = await lockJob(trx, jobId, 'share');
  if (job === undefined) throw new AppError('NOT_FOUND', 'no such job');
  // A locked hirer's jobs are gone with their profile: nobody would ever accept the bid.
  if ((await lockedAtShared(trx, job.hirer_id as UserId)) !== null) {
    throw new AppError('NOT_FOUND', 'no such job');
  }
  orThrow(canBidOn(job, actor));
  // The bidder's row FOR SHARE, as a post's (jobs.ts createJobIn): a bid authenticated just before
  // an admin's lock either commits first (the lock's retirement withdraws it) or is refused here,
  // never left pending in the hirer's list by an account nobody can hire.
  if ((await lockedAtShared(trx, actor.userId)) !== null) {
    throw new AppError('UNAUTHORIZED', 'this account is locked');
  }
  // Withdrawing and bidding again is allowed, a few times: each bid notifies the hirer, and an
  // endless bid-withdraw loop would flood their notifications and their job's bid list. Bids an
  // account lock withdrew do not count: the worker did not withdraw them (countBidsOfWorker).
  if ((await countBidsOfWorker(trx, jobId, actor.userId)) >= MAX_BIDS_PER_WORKER_PER_JOB) {
    throw new AppError(
      'CONFLICT',
      `at most ${MAX_BIDS_PER_WORKER_PER_JOB} bids per job (withdrawn ones count)`,
      {
        details: { reason: 'BID_LIMIT', limit: MAX_BIDS_PER_WORKER_PER_JOB },
      },
    );
  }
  let row: BidRow;
  try {
    row = await insertBid(trx, {
      jobId,
      workerId: actor.userId,
      amount: input.amount,
      deliveryDays: input.deliveryDays,
      coverLetter: input.coverLetter,
      now,
    });
  } catch (error) {
    if (isUniqueViolation(error, ONE_LIVE_BID_INDEX)) {
      throw new AppError('CONFLICT', 'you already have a live bid on this job', {
        details: { reason: 'LIVE_BID_EXISTS' },
        cause: error,
      });
    }
    throw error;
  }
  await insertOutboxEvent(trx, MarketplaceEvent.bidPlaced, {
    bidId: row.id,
    jobId,
    workerId: actor.userId,
    hirerId: job.hirer_id,
    notify: [job.hirer_id],
  });
  return toBid(row);
}

/** The bid if `actor` may see it; 404 otherwise (unknown and foreign look the same). */
async function visibleBid(deps: Pick<MarketplaceDeps, 'db'>, actor: Actor, bidId: BidId): Promise<BidRow> {
  const bid = await findBid(deps.db, bidId);
  const job = bid === undefined ? undefined : await findJob(deps.db, bid.job_id);
  if (bid === undefined || job === undefined || !canSeeBid(bid, job, actor)) {
    throw new AppError('NOT_FOUND', 'no such bid');
  }
  return bid;
}

export async function getBid(deps: Pick<MarketplaceDeps, 'db'>, actor: Actor, bidId: BidId): Promise<Bid> {
  return toBid(await visibleBid(deps, actor, bidId));
}

export type BidUpdate = Partial<BidInput>;

/**
 * PATCH /v1/bids/:id: its worker, while pending. `expectedVersion` (If-Match) makes a stale edit a
 * CONFLICT (`VERSION_MISMATCH` with the current version), as for jobs; without it the version read
 * here is the one compared.
 */
export async function updateBid(
  deps: MarketplaceDeps,
  actor: Actor,
  bidId: BidId,
  update: BidUpdate,
  expectedVersion?: number,
): Promise<Bid> {
  if (update.amount !== undefined) orThrow(checkAmount(update.amount, 'body.amount'));
  if (update.deliveryDays !== undefined) checkDeliveryDays(update.deliveryDays);
  await visibleBid(deps, actor, bidId);
  const now = deps.clock.now();
  return deps.db.transaction().execute(async (trx) => {
    const bid = await lockBid(trx, bidId);
    if (bid === undefined) throw new AppError('NOT_FOUND', 'no such bid');
    orThrow(canChangeBid(bid, actor, 'change'));
    if (expectedVersion !== undefined && expectedVersion !== bid.version) {
      throw new AppError('CONFLICT', 'the bid has changed since it was read', {
        details: { reason: 'VERSION_MISMATCH', version: bid.version },
      });
    }
    // Nothing to change (`{}`, or the values the bid has: a form sent whole, a retry after a lost
    // answer): the bid as it is. Writing it anyway bumped its version, so the hirer's accept
    // (If-Match: the version they saw) went stale over an edit that changed nothing.
    const changes = {
      ...(update.amount === undefined || update.amount === BigInt(bid.amount)
        ? {}
        : { amount: update.amount }),
      ...(update.deliveryDays === undefined || update.deliveryDays === bid.delivery_days
        ? {}
        : { deliveryDays: update.deliveryDays }),
      ...(update.coverLetter === undefined || update.coverLetter === bid.cover_letter
        ? {}
        : { coverLetter: update.coverLetter }),
    };
    if (Object.keys(changes).length === 0) return toBid(bid);
    const row = await updateBidIfVersion(trx, bidId, bid.version, 'pending', changes, now);
    if (row === undefined) {
      throw new AppError('CONFLICT', 'the bid changed while it was being updated', {
        details: { reason: 'VERSION_MISMATCH' },
      });
    }
    return toBid(row);
  });
}

/**
 * POST /v1/bids/:id/withdraw: its worker, while pending → withdrawn (the worker may bid again).
 * `expectedVersion` (If-Match, optional as on PATCH) refuses to withdraw a bid changed since it was
 * read: CONFLICT `VERSION_MISMATCH` with the current version, nothing changed.
 */
export async function withdrawBid(
  deps: MarketplaceDeps,
  actor: Actor,
  bidId: BidId,
  expectedVersion?: number,
  options: WithdrawOptions = {},
): Promise<Bid> {
  return deps.db
    .transaction()
    .execute((trx) => withdrawBidIn(trx, deps, actor, bidId, expectedVersion, options));
}

export interface WithdrawOptions {
  /**
   * Withdrawn by an account lock (`retireLockedAccount`), not by the worker: the bid is marked, and
   * does not count toward MAX_BIDS_PER_WORKER_PER_JOB once the account is unlocked.
   */
  readonly byLock?: boolean;
}

/**
 * `withdrawBid` inside the caller's transaction (the REST edge's optional Idempotency-Key
 * transaction); every read on `trx`, so it never waits on a second connection.
 */
export async function withdrawBidIn(
  trx: Transaction<Database>,
  deps: Pick<MarketplaceDeps, 'clock'>,
  actor: Actor,
  bidId: BidId,
  expectedVersion?: number,
  options: WithdrawOptions = {},
): Promise<Bid> {
  await visibleBid({ db: trx }, actor, bidId);
  const now = deps.clock.now();
  const bid = await lockBid(trx, bidId);
  if (bid === undefined) throw new AppError('NOT_FOUND', 'no such bid');
  orThrow(canChangeBid(bid, actor, 'withdraw'));
  if (expectedVersion !== undefined && expectedVersion !== bid.version) {
    throw new AppError('CONFLICT', 'the bid has changed since it was read', {
      details: { reason: 'VERSION_MISMATCH', version: bid.version },
    });
  }
  const job = await findJob(trx, bid.job_id);
  const row = await updateBidIfVersion(
    trx,
    bidId,
    bid.version,
    'pending',
    { status: 'withdrawn', decidedAt: now, ...(options.byLock === true ? { withdrawnByLock: true } : {}) },
    now,
  );
  if (row === undefined) throw new AppError('CONFLICT', 'the bid changed while it was being withdrawn');
  await insertOutboxEvent(trx, MarketplaceEvent.bidWithdrawn, {
    bidId,
    jobId: bid.job_id,
    workerId: bid.worker_id,
    hirerId: job?.hirer_id ?? null,
    notify: job === undefined ? [] : [job.hirer_id],
  });
  return toBid(row);
}

export interface BidPage {
  readonly data: Bid[];
  readonly nextCursor: string | null;
}

const pageLimit = (limit: number | undefined) => Math.min(Math.max(limit ?? 20, 1), 100);

/**
 * GET /v1/jobs/:id/bids: the job's hirer and admins see all of its bids; anyone else only their
 * own (usually none). Newest first, cursor pages. A job `visibleJobRow` hides (a locked hirer's) is
 * NOT_FOUND here too, as on GET /v1/jobs/:id: an empty page would tell it from an unknown id.
 */
export async function bidsOfJob(
  deps: Pick<MarketplaceDeps, 'db'>,
  actor: Actor,
  jobId: JobId,
  page: { readonly cursor?: string; readonly limit?: number } = {},
): Promise<BidPage> {
  const job = await visibleJobRow(deps, actor, jobId);
  const seesAll = job.hirer_id === actor.userId || actor.roles.includes('admin');
  const limit = pageLimit(page.limit);
  const rows = await listBids(deps.db, {
    jobId,
    ...(seesAll ? {} : { workerId: actor.userId }),
    after: decodeCursor(`job-bids:${jobId}`, page.cursor),
    limit: limit + 1,
  });
  return pageOf(`job-bids:${jobId}`, rows, limit, toBid);
}

/** GET /v1/me/bids: the caller's bids, newest first. */
export async function myBids(
  deps: Pick<MarketplaceDeps, 'db'>,
  actor: Actor,
  page: { readonly cursor?: string; readonly limit?: number } = {},
): Promise<BidPage> {
  const limit = pageLimit(page.limit);
  const rows = await listBids(deps.db, {
    workerId: actor.userId,
    after: decodeCursor('my-bids', page.cursor),
    limit: limit + 1,
  });
  return pageOf('my-bids', rows, limit, toBid);
}
