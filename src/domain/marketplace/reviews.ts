/**
 * Double-blind reviews (issue 12 §5). After a contract ends `completed` or `resolved`, each party
 * may review the other once, before `review_deadline_at` (set by the contract service to the end
 * of REVIEW_WINDOW_S). A review is visible to nobody but its author until it is published: at once
 * for both when the second one arrives, or by `publishDueReviews` (the `reviews.publish` task) when
 * the window closes. Neither party can therefore answer the other's review.
 *
 * Invariants:
 * - the reviews of one contract are written under its row lock (FOR UPDATE), so the second author
 *   always sees the first review and publishes both — two concurrent first reviews cannot both
 *   stay hidden;
 * - `user_ratings` counts each published, not hidden review exactly once (see reviews.repo.ts);
 * - one `review.published` outbox event per review that becomes public, in the transaction that
 *   publishes it;
 * - a hidden review is visible to admins only; hiding takes it out of its subject's summary once.
 */

import type { Transaction } from 'kysely';
import type { ContractId, ReviewId, UserId } from '../../../protocol/src/ids.js';
import type { Database } from '../../db/database.js';
import { isUniqueViolation } from '../../db/errors.js';
import { insertOutboxEvent } from '../../db/repositories/outbox.repo.js';
import {
  contractsWithOverdueBlindReviews,
  findContractForReview,
  findReview,
  hideReview as hideReviewRow,
  insertReview,
  type LockedReviewableContract,
  lockContractForReview,
  publishedReviewsOf,
  publishUnpublished,
  type RatingSums,
  type ReviewableContract,
  type ReviewRow,
  ratingSumsOf,
  reviewsOfContract,
} from '../../db/repositories/reviews.repo.js';
import { findUserById } from '../../db/repositories/users.repo.js';
import { AppError } from '../../platform/errors.js';
import { decodeCursor, encodeCursor } from '../pagination.js';
import { MarketplaceEvent } from './events.js';
import type { MarketplaceDeps } from './jobs.js';
import { type Actor, codePointLength } from './rules.js';

/** Contract states after which the parties may review each other. */
export const REVIEWABLE_STATES: readonly string[] = ['completed', 'resolved'];
export const MIN_RATING = 1;
export const MAX_RATING = 5;
export const MAX_REVIEW_TEXT = 2000;

/**
 * The prior of the Bayesian average: every user starts as if they had `weight` reviews of `mean`
 * stars. 3.5 is the middle of "acceptable" on a 1–5 scale (below the 4+ most marketplaces show,
 * above the scale's midpoint 3), so one 5-star review moves a newcomer to 3.75, not to the top of
 * a list sorted by rating, and one 1-star review to 3.08, not to the bottom; with 5 pseudo-reviews
 * a user's own reviews outweigh the prior from their sixth on. Sorting and badges should use
 * `bayesian`; `average` is the plain mean, shown beside the count.
 */
export const RATING_PRIOR = { weight: 5, mean: 3.5 } as const;

/** A user's rating summary as profiles and search results show it. */
export interface RatingSummary {
  /** Published, not hidden reviews of the user. */
  readonly count: number;
  /** Their plain mean, 2 decimals; null without reviews. */
  readonly average: number | null;
  /** (weight·mean + sum) / (weight + count), 2 decimals: RATING_PRIOR.mean without reviews. */
  readonly bayesian: number;
}

const round2 = (value: number): number => Math.round(value * 100) / 100;

/** Pure: the summary of `count` reviews summing to `sum` stars. */
export function ratingSummary(sums: RatingSums | undefined, prior = RATING_PRIOR): RatingSummary {
  const count = sums?.count ?? 0;
  const sum = sums?.sum ?? 0;
  return {
    count,
    average: count === 0 ? null : round2(sum / count),
    bayesian: round2((prior.weight * prior.mean + sum) / (prior.weight + count)),
  };
}

/** Rating summaries of several users (profiles, search results); one query. */
export async function ratingSummaries(
  deps: Pick<MarketplaceDeps, 'db'>,
  userIds: readonly UserId[],
): Promise<Map<UserId, RatingSummary>> {
  const sums = await ratingSumsOf(deps.db, userIds);
  return new Map(userIds.map((id) => [id, ratingSummary(sums.get(id))]));
}

export interface Review {
  readonly id: ReviewId;
  readonly contractId: ContractId;
  readonly authorId: UserId;
  readonly subjectId: UserId;
  readonly rating: number;
  readonly text: string;
  readonly createdAt: Date;
  /** Null while double-blind (then only its author sees it). */
  readonly publishedAt: Date | null;
  /** Admins only: set when a moderator hid the review. */
  readonly hidden?: { readonly at: Date; readonly by: UserId | null; readonly reason: string };
}

const isAdmin = (actor: Actor) => actor.roles.includes('admin');

/**
 * Pure: who sees a review. Hidden: admins only (its author included among those who do not).
 * Unpublished: its author only (admins neither: the blind holds for everyone). Published: whoever
 * reaches it (its contract's parties and admins, or anyone through the subject's public list).
 */
export function canSeeReview(
  review: Pick<ReviewRow, 'author_id' | 'published_at' | 'hidden_at'>,
  actor: Actor,
): boolean {
  if (review.hidden_at !== null) return isAdmin(actor);
  return review.published_at !== null || review.author_id === actor.userId;
}

export function toReview(row: ReviewRow, actor: Actor): Review {
  return {
    id: row.id,
    contractId: row.contract_id,
    authorId: row.author_id,
    subjectId: row.subject_id,
    rating: row.rating,
    text: row.text,
    createdAt: row.created_at,
    publishedAt: row.published_at,
    ...(row.hidden_at !== null && isAdmin(actor)
      ? { hidden: { at: row.hidden_at, by: row.hidden_by, reason: row.hidden_reason ?? '' } }
      : {}),
  };
}

/** The other party of the contract, or null when the actor is not one of the two. */
export function counterpartOf(contract: Pick<ReviewableContract, 'hirer_id' | 'worker_id'>, userId: UserId) {
  if (contract.hirer_id === userId) return contract.worker_id;
  if (contract.worker_id === userId) return contract.hirer_id;
  return null;
}

/**
 * Pure: may `actor` review this contract at `now`? Returns the error to throw, or null. Order:
 * not a party → 404 (nothing revealed), not ended well → 409 INVALID_TRANSITION naming the state,
 * window not open or closed → 409 REVIEW_WINDOW_CLOSED.
 */
export function checkCanReview(
  contract: ReviewableContract | undefined,
  actor: Actor,
  now: Date,
): AppError | null {
  if (contract === undefined || counterpartOf(contract, actor.userId) === null) {
    return new AppError('NOT_FOUND', 'no such contract');
  }
  if (!REVIEWABLE_STATES.includes(contract.state)) {
    return new AppError('INVALID_TRANSITION', `cannot review a contract that is ${contract.state}`, {
      details: { reason: 'INVALID_TRANSITION', state: contract.state, event: 'review' },
    });
  }
  const deadline = contract.review_deadline_at;
  if (deadline === null || now.getTime() >= deadline.getTime()) {
    return new AppError('CONFLICT', 'the review window of this contract is closed', {
      details: { reason: 'REVIEW_WINDOW_CLOSED', deadline: deadline?.toISOString() ?? null },
    });
  }
  return null;
}

/** Pure: the edges validate with zod; this keeps direct callers from reaching a CHECK as a 500. */
export function checkReviewInput(input: ReviewInput): AppError | null {
  const bad = (path: string, message: string) =>
    new AppError('VALIDATION_FAILED', message, { details: { errors: [{ path, message }] } });
  if (!Number.isInteger(input.rating) || input.rating < MIN_RATING || input.rating > MAX_RATING) {
    return bad('body.rating', `must be an integer from ${MIN_RATING} to ${MAX_RATING}`);
  }
  if (codePointLength(input.text) > MAX_REVIEW_TEXT)
    return bad('body.text', `at most ${MAX_REVIEW_TEXT} characters`);
  return null;
}

export interface ReviewInput {
  /** 1–5 stars. */
  readonly rating: number;
  /** At most 2000 characters; may be empty. */
  readonly text: string;
}

const reviewExists = () =>
  new AppError('CONFLICT', 'you already reviewed this contract', { details: { reason: 'REVIEW_EXISTS' } });

/**
 * Publishes the contract's unpublished reviews and writes one `review.published` per visible one.
 * The event names the job and the stars (both public once the review is): the reviewed party's
 * notification says which job the review is about and what it gave, not "your work on your job"
 * to a hirer reviewed by the worker they hired.
 */
async function publishIn(
  trx: Transaction<Database>,
  contract: Pick<LockedReviewableContract, 'id' | 'job_id'>,
  now: Date,
): Promise<ReviewRow[]> {
  const published = await publishUnpublished(trx, contract.id, now);
  for (const row of published) {
    if (row.hidden_at !== null) continue;
    await insertOutboxEvent(trx, MarketplaceEvent.reviewPublished, {
      reviewId: row.id,
      contractId: row.contract_id,
      jobId: contract.job_id,
      rating: row.rating,
      authorId: row.author_id,
      subjectId: row.subject_id,
      notify: [row.subject_id, row.author_id],
    });
  }
  return published;
}

/**
 * POST /v1/contracts/:id/review: a party reviews the other, once, inside the window. The second
 * review publishes both in this transaction; the first stays visible to its author alone.
 */
export async function submitReview(
  deps: MarketplaceDeps,
  actor: Actor,
  contractId: ContractId,
  input: ReviewInput,
): Promise<Review> {
  try {
    return await deps.db.transaction().execute((trx) => submitReviewIn(trx, deps, actor, contractId, input));
  } catch (error) {
    if (isUniqueViolation(error, 'reviews_one_per_author_key')) throw reviewExists();
    throw error;
  }
}

/**
 * `submitReview` in the caller's transaction (the REST edge's Idempotency-Key transaction, so a
 * retried submission replays its first answer instead of meeting 409 REVIEW_EXISTS).
 */
export async function submitReviewIn(
  trx: Transaction<Database>,
  deps: Pick<MarketplaceDeps, 'clock'>,
  actor: Actor,
  contractId: ContractId,
  input: ReviewInput,
): Promise<Review> {
  const invalid = checkReviewInput(input);
  if (invalid !== null) throw invalid;
  const contract = await lockContractForReview(trx, contractId);
  // The clock is read after the lock: a review that waited for the other must still be in time.
  const now = deps.clock.now();
  const refusal = checkCanReview(contract, actor, now);
  if (refusal !== null) throw refusal;
  const subjectId = counterpartOf(contract as ReviewableContract, actor.userId) as UserId;
  const existing = await reviewsOfContract(trx, contractId);
  if (existing.some((row) => row.author_id === actor.userId)) throw reviewExists();
  let row = await insertReview(trx, {
    contractId,
    authorId: actor.userId,
    subjectId,
    rating: input.rating,
    text: input.text,
    now,
  });
  if (existing.length > 0) {
    const published = await publishIn(trx, contract as LockedReviewableContract, now);
    row = published.find((r) => r.id === row.id) ?? row;
  }
  return toReview(row, actor);
}

export interface PublishResult {
  /** False when the window is still open (nothing done: the task ran early) or there is none. */
  readonly windowClosed: boolean;
  /** Reviews this run published (0 on a rerun). */
  readonly published: number;
  /** The contract's review deadline; null for an unknown contract or one without a window. */
  readonly deadline: Date | null;
}

/**
 * The `reviews.publish` task (REVIEW_WINDOW_S after the contract ended): once now ≥
 * review_deadline_at, publishes every review of the contract still blind, counting each in its
 * subject's summary and writing its `review.published` event. Idempotent: a rerun publishes nothing.
 * Before the deadline it does nothing and says so (`windowClosed: false`), so a task that fired
 * early (clock skew between nodes) can be retried.
 */
export async function publishDueReviews(
  deps: Pick<MarketplaceDeps, 'db' | 'clock'>,
  contractId: ContractId,
): Promise<PublishResult> {
  return deps.db.transaction().execute(async (trx) => {
    const contract = await lockContractForReview(trx, contractId);
    const now = deps.clock.now();
    const deadline = contract?.review_deadline_at ?? null;
    if (contract === undefined || deadline === null || now.getTime() < deadline.getTime()) {
      return { windowClosed: false, published: 0, deadline };
    }
    const published = await publishIn(trx, contract, now);
    return { windowClosed: true, published: published.length, deadline };
  });
}

/**
 * The body of the `reviews.publish` task: `publishDueReviews`, and an error when it ran before the
 * deadline (the clocks of the node that scheduled it and of this one differ), so the task is retried
 * with its back-off instead of leaving a lone review blind for good. An unknown contract, or one
 * without a window, is done: nothing will ever be due there.
 * @throws AppError CONFLICT `REVIEW_WINDOW_OPEN` (with `deadline`) when it ran early.
 */
export async function closeReviewWindow(
  deps: Pick<MarketplaceDeps, 'db' | 'clock'>,
  contractId: ContractId,
): Promise<PublishResult> {
  const result = await publishDueReviews(deps, contractId);
  if (!result.windowClosed && result.deadline !== null) {
    throw new AppError('CONFLICT', 'the review window is still open', {
      details: { reason: 'REVIEW_WINDOW_OPEN', deadline: result.deadline.toISOString() },
    });
  }
  return result;
}

/**
 * The review windows that closed before `dueBefore` with a review still blind, published: the
 * marketplace worker's sweep (processor.ts) for windows whose `reviews.publish` task is gone — Redis
 * lost its data after the outbox event that enqueued it was pruned (published events are kept 7
 * days, a window lasts 14 by default), or the task ran out of retries in a long database outage.
 * Without it the lone review stayed blind for good: never shown, never in its subject's rating.
 * Each contract through `publishDueReviews` (its row locked, idempotent), so a sweep racing the
 * task, another sweep or a late review publishes each review once. At most `limit` contracts.
 */
export async function publishOverdueReviews(
  deps: Pick<MarketplaceDeps, 'db' | 'clock'>,
  dueBefore: Date,
  limit: number,
): Promise<{
  readonly contracts: readonly ContractId[];
  readonly published: number;
  /** Contracts whose publication failed (tried again by the next sweep), with the error. */
  readonly failed: readonly { readonly contractId: ContractId; readonly error: unknown }[];
}> {
  const due = await contractsWithOverdueBlindReviews(deps.db, dueBefore, limit);
  let published = 0;
  const failed: { contractId: ContractId; error: unknown }[] = [];
  for (const contractId of due) {
    // One contract failing (its row locked for long, a bad row) does not hold back the others.
    try {
      published += (await publishDueReviews(deps, contractId)).published;
    } catch (error) {
      failed.push({ contractId, error });
    }
  }
  return { contracts: due, published, failed };
}

export interface ContractReviews {
  /** Published reviews, plus the caller's own while blind; hidden ones for admins only. */
  readonly data: Review[];
  readonly reviewDeadlineAt: Date | null;
  /** Whether the caller may still submit a review now. */
  readonly canReview: boolean;
}

/** GET /v1/contracts/:id/reviews: the contract's parties and admins (others: 404). */
export async function reviewsOfContractFor(
  deps: Pick<MarketplaceDeps, 'db' | 'clock'>,
  actor: Actor,
  contractId: ContractId,
): Promise<ContractReviews> {
  const contract = await findContractForReview(deps.db, contractId);
  if (contract === undefined || (counterpartOf(contract, actor.userId) === null && !isAdmin(actor))) {
    throw new AppError('NOT_FOUND', 'no such contract');
  }
  const rows = await reviewsOfContract(deps.db, contractId);
  return {
    data: rows.filter((row) => canSeeReview(row, actor)).map((row) => toReview(row, actor)),
    reviewDeadlineAt: contract.review_deadline_at,
    canReview:
      checkCanReview(contract, actor, deps.clock.now()) === null &&
      !rows.some((row) => row.author_id === actor.userId),
  };
}

export interface ReviewPage {
  readonly data: Review[];
  readonly nextCursor: string | null;
}

/** GET /v1/users/:id/reviews: published, not hidden reviews of the user, newest published first. */
export async function reviewsOfUser(
  deps: Pick<MarketplaceDeps, 'db'>,
  actor: Actor,
  subjectId: UserId,
  options: { readonly cursor?: string; readonly limit: number },
): Promise<ReviewPage> {
  // As GET /v1/users/:id: an unknown or locked user is 404, not an empty list.
  const subject = await findUserById(deps.db, subjectId);
  if (subject === undefined || subject.locked_at !== null) throw new AppError('NOT_FOUND', 'no such user');
  const rows = await publishedReviewsOf(
    deps.db,
    subjectId,
    decodeCursor(`reviews:${subjectId}`, options.cursor),
    options.limit + 1,
  );
  const page = rows.slice(0, options.limit);
  const last = page[page.length - 1];
  return {
    data: page.map((row) => toReview(row, actor)),
    // The cursor of pagination.ts carries (published_at, id) here: the order of this list.
    nextCursor:
      rows.length > options.limit && last?.published_at != null
        ? encodeCursor(`reviews:${subjectId}`, { created_at: last.published_at, id: last.id })
        : null,
  };
}

/** GET /v1/admin/reviews/:id: any published review, hidden or not (blind ones are nobody's yet). */
export async function getReviewAsAdmin(
  deps: Pick<MarketplaceDeps, 'db'>,
  actor: Actor,
  reviewId: ReviewId,
): Promise<Review> {
  if (!isAdmin(actor)) throw new AppError('FORBIDDEN', 'admin role required');
  const row = await findReview(deps.db, reviewId);
  if (row === undefined || !canSeeReview(row, actor)) throw new AppError('NOT_FOUND', 'no such review');
  return toReview(row, actor);
}

/**
 * POST /v1/admin/reviews/:id/hide: an admin hides a published review with a reason; it leaves the
 * subject's public list and rating summary (once). Hiding a hidden review again changes nothing and
 * answers the review as it is. A blind review cannot be hidden: no one but its author has seen it.
 */
export async function hideReview(
  deps: Pick<MarketplaceDeps, 'db' | 'clock'>,
  actor: Actor,
  reviewId: ReviewId,
  reason: string,
): Promise<Review> {
  if (!isAdmin(actor)) throw new AppError('FORBIDDEN', 'admin role required');
  return deps.db.transaction().execute(async (trx) => {
    const current = await findReview(trx, reviewId);
    if (current === undefined || current.published_at === null) {
      throw new AppError('NOT_FOUND', 'no such review');
    }
    // Moderation is for others' reviews: an admin who is reviewed does not judge that review.
    if (current.subject_id === actor.userId) {
      throw new AppError('FORBIDDEN', 'an admin may not hide a review about themself');
    }
    const hidden = await hideReviewRow(trx, reviewId, actor.userId, reason, deps.clock.now());
    return toReview(hidden ?? ((await findReview(trx, reviewId)) as ReviewRow), actor);
  });
}
