/**
 * Bids (migration 0007). One live bid (pending or accepted) per worker per job is the partial unique
 * index `bids_one_live_key`: callers map its violation to CONFLICT.
 */
import { type Kysely, type Selectable, sql, type Transaction } from 'kysely';
import type { BidId, JobId, UserId } from '../../../protocol/src/ids.js';
import type { Database } from '../database.js';
import type { BidStatus, BidsTable } from '../tables/marketplace.table.js';
import type { KeysetCursor } from './users.repo.js';

type Db = Kysely<Database> | Transaction<Database>;
export type BidRow = Selectable<BidsTable>;

/** The index that keeps one live bid per worker per job. */
export const ONE_LIVE_BID_INDEX = 'bids_one_live_key';

export interface NewBid {
  readonly jobId: JobId;
  readonly workerId: UserId;
  readonly amount: bigint;
  readonly deliveryDays: number;
  readonly coverLetter: string;
  readonly now: Date;
}

export function insertBid(db: Db, bid: NewBid): Promise<BidRow> {
  return db
    .insertInto('bids')
    .values({
      job_id: bid.jobId,
      worker_id: bid.workerId,
      amount: bid.amount.toString(),
      delivery_days: bid.deliveryDays,
      cover_letter: bid.coverLetter,
      created_at: bid.now,
      updated_at: bid.now,
      decided_at: null,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
}

export function findBid(db: Db, id: BidId): Promise<BidRow | undefined> {
  return db.selectFrom('bids').selectAll().where('id', '=', id).executeTakeFirst();
}

export function lockBid(trx: Transaction<Database>, id: BidId): Promise<BidRow | undefined> {
  return trx.selectFrom('bids').selectAll().where('id', '=', id).forUpdate().executeTakeFirst();
}

export interface BidPatch {
  readonly amount?: bigint;
  readonly deliveryDays?: number;
  readonly coverLetter?: string;
  readonly status?: BidStatus;
  readonly decidedAt?: Date;
  /** A withdrawal by an account lock (`retireLockedAccount`), not by the worker. */
  readonly withdrawnByLock?: boolean;
}

/** Applies `patch` if the bid is still at `version` and in `status`; undefined when it moved on. */
export function updateBidIfVersion(
  db: Db,
  id: BidId,
  version: number,
  status: BidStatus,
  patch: BidPatch,
  now: Date,
): Promise<BidRow | undefined> {
  return db
    .updateTable('bids')
    .set({
      ...(patch.amount === undefined ? {} : { amount: patch.amount.toString() }),
      ...(patch.deliveryDays === undefined ? {} : { delivery_days: patch.deliveryDays }),
      ...(patch.coverLetter === undefined ? {} : { cover_letter: patch.coverLetter }),
      ...(patch.status === undefined ? {} : { status: patch.status }),
      ...(patch.decidedAt === undefined ? {} : { decided_at: patch.decidedAt }),
      ...(patch.withdrawnByLock === undefined ? {} : { withdrawn_by_lock: patch.withdrawnByLock }),
      version: sql<number>`version + 1`,
      updated_at: now,
    })
    .where('id', '=', id)
    .where('version', '=', version)
    .where('status', '=', status)
    .returningAll()
    .executeTakeFirst();
}

/**
 * Every pending bid of a job becomes rejected — but `exceptId` (the bid being accepted), if given —
 * and is returned (closing a job; accepting one bid).
 */
export function rejectPendingBids(db: Db, jobId: JobId, now: Date, exceptId?: BidId): Promise<BidRow[]> {
  let query = db
    .updateTable('bids')
    .set({ status: 'rejected', decided_at: now, updated_at: now, version: sql<number>`version + 1` })
    .where('job_id', '=', jobId)
    .where('status', '=', 'pending');
  if (exceptId !== undefined) query = query.where('id', '<>', exceptId);
  return query.returningAll().execute();
}

export interface BidListQuery {
  readonly jobId?: JobId;
  readonly workerId?: UserId;
  readonly after: KeysetCursor | undefined;
  /** Rows to return; the caller asks one more than a page to know whether there is a next one. */
  readonly limit: number;
}

/**
 * How many bids (withdrawn and decided ones included) a worker has placed on a job, but those an
 * account lock withdrew: the worker never withdrew them (their account was locked meanwhile).
 */
export async function countBidsOfWorker(db: Db, jobId: JobId, workerId: UserId): Promise<number> {
  const row = await db
    .selectFrom('bids')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .where('job_id', '=', jobId)
    .where('worker_id', '=', workerId)
    .where('withdrawn_by_lock', '=', false)
    .executeTakeFirst();
  return Number(row?.n ?? 0);
}

/** Newest first, keyset on (created_at, id); by job, by worker, or both. */
export function listBids(db: Db, query: BidListQuery): Promise<BidRow[]> {
  let q = db.selectFrom('bids').selectAll();
  if (query.jobId !== undefined) q = q.where('job_id', '=', query.jobId);
  if (query.workerId !== undefined) q = q.where('worker_id', '=', query.workerId);
  if (query.after !== undefined) {
    const { createdAt, id } = query.after;
    q = q.where(sql<boolean>`(created_at, id) < (${createdAt}::timestamptz, ${id}::uuid)`);
  }
  return q.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(query.limit).execute();
}

/** Ids of a worker's pending bids (an account being locked withdraws them). */
export async function pendingBidIdsOf(db: Db, workerId: UserId): Promise<BidId[]> {
  const rows = await db
    .selectFrom('bids')
    .select('id')
    .where('worker_id', '=', workerId)
    .where('status', '=', 'pending')
    .execute();
  return rows.map((row) => row.id as BidId);
}
