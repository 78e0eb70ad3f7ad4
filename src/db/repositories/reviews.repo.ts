/**
 * Reviews and the per-user rating sums (migration 0007). Plain functions over `db | trx`; the
 * domain (src/domain/marketplace/reviews.ts) owns the transactions and the double-blind rules.
 *
 * `user_ratings` holds, per user, the count and sum of their published, not hidden reviews. It is
 * changed only by `publishUnpublished` (+1 per row it flips) and `hideReview` (−1 when it hides a
 * published row); both are single UPDATEs guarded by the state they change (`published_at is null`,
 * `hidden_at is null`), so a review is counted at most once however often or concurrently they run.
 */
import { type Kysely, type Selectable, sql, type Transaction } from 'kysely';
import type { ContractId, JobId, ReviewId, UserId } from '../../../protocol/src/ids.js';
import type { Database } from '../database.js';
import type { ContractStateColumn, ReviewsTable } from '../tables/marketplace.table.js';

type Db = Kysely<Database> | Transaction<Database>;
export type ReviewRow = Selectable<ReviewsTable>;

/** What reviewing needs of a contract: its parties, its state and the end of its review window. */
export interface ReviewableContract {
  readonly id: ContractId;
  readonly hirer_id: UserId;
  readonly worker_id: UserId;
  readonly state: ContractStateColumn;
  readonly review_deadline_at: Date | null;
}

const REVIEWABLE_COLUMNS = ['id', 'hirer_id', 'worker_id', 'state', 'review_deadline_at'] as const;

/** The locked row also names its job: a published review's event says which job it is about. */
export interface LockedReviewableContract extends ReviewableContract {
  readonly job_id: JobId;
}

/**
 * The contract row locked FOR UPDATE: the two parties' reviews (and the window task) of one contract
 * run one at a time, so "is the other review in?" is answered by the last of them, never by neither.
 */
export function lockContractForReview(
  trx: Transaction<Database>,
  id: ContractId,
): Promise<LockedReviewableContract | undefined> {
  return trx
    .selectFrom('contracts')
    .select([...REVIEWABLE_COLUMNS, 'job_id'])
    .where('id', '=', id)
    .forUpdate()
    .executeTakeFirst();
}

export function findContractForReview(db: Db, id: ContractId): Promise<ReviewableContract | undefined> {
  return db.selectFrom('contracts').select(REVIEWABLE_COLUMNS).where('id', '=', id).executeTakeFirst();
}

export interface NewReview {
  readonly contractId: ContractId;
  readonly authorId: UserId;
  readonly subjectId: UserId;
  readonly rating: number;
  readonly text: string;
  readonly now: Date;
}

export function insertReview(db: Db, review: NewReview): Promise<ReviewRow> {
  return db
    .insertInto('reviews')
    .values({
      contract_id: review.contractId,
      author_id: review.authorId,
      subject_id: review.subjectId,
      rating: review.rating,
      text: review.text,
      created_at: review.now,
      published_at: null,
      hidden_at: null,
      hidden_by: null,
      hidden_reason: null,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
}

export function reviewsOfContract(db: Db, contractId: ContractId): Promise<ReviewRow[]> {
  return db
    .selectFrom('reviews')
    .selectAll()
    .where('contract_id', '=', contractId)
    .orderBy('created_at')
    .orderBy('id')
    .execute();
}

export function findReview(db: Db, id: ReviewId): Promise<ReviewRow | undefined> {
  return db.selectFrom('reviews').selectAll().where('id', '=', id).executeTakeFirst();
}

/** Adds (`sign` 1) or removes (−1) one review of `rating` from a user's summary. */
async function addToRatings(db: Db, userId: UserId, rating: number, sign: 1 | -1, now: Date): Promise<void> {
  if (sign === 1) {
    await db
      .insertInto('user_ratings')
      .values({ user_id: userId, rating_count: 1, rating_sum: rating, updated_at: now })
      .onConflict((oc) =>
        oc.column('user_id').doUpdateSet({
          rating_count: sql<number>`user_ratings.rating_count + 1`,
          rating_sum: sql<number>`user_ratings.rating_sum + ${rating}`,
          updated_at: now,
        }),
      )
      .execute();
    return;
  }
  await db
    .updateTable('user_ratings')
    .set({
      rating_count: sql<number>`rating_count - 1`,
      rating_sum: sql<number>`rating_sum - ${rating}`,
      updated_at: now,
    })
    .where('user_id', '=', userId)
    .execute();
}

/**
 * Publishes every unpublished review of the contract at `now` and adds each visible one to its
 * subject's `user_ratings`. Only rows this UPDATE flipped are counted (`published_at is null` in its
 * WHERE), so a second run, or one racing this one, counts nothing twice. Returns the flipped rows.
 */
export async function publishUnpublished(
  trx: Transaction<Database>,
  contractId: ContractId,
  now: Date,
): Promise<ReviewRow[]> {
  const published = await trx
    .updateTable('reviews')
    .set({ published_at: now })
    .where('contract_id', '=', contractId)
    .where('published_at', 'is', null)
    .returningAll()
    .execute();
  // Sorted by subject so two transactions touching the same user_ratings rows lock them in one order.
  const visible = published
    .filter((row) => row.hidden_at === null)
    .sort((a, b) => (a.subject_id < b.subject_id ? -1 : a.subject_id > b.subject_id ? 1 : 0));
  for (const row of visible) await addToRatings(trx, row.subject_id, row.rating, 1, now);
  return published;
}

/**
 * Contracts whose review window closed before `dueBefore` with a review still blind, oldest
 * deadline first: their `reviews.publish` task never ran (lost with Redis's data once the outbox
 * event that enqueued it was pruned, or out of retries in a long database outage), so nothing
 * else would ever publish the lone review or count it in its subject's rating.
 */
export async function contractsWithOverdueBlindReviews(
  db: Db,
  dueBefore: Date,
  limit: number,
): Promise<ContractId[]> {
  const rows = await db
    .selectFrom('reviews')
    .innerJoin('contracts', 'contracts.id', 'reviews.contract_id')
    .select('contracts.id')
    .where('reviews.published_at', 'is', null)
    .where('contracts.review_deadline_at', '<', dueBefore)
    .groupBy(['contracts.id', 'contracts.review_deadline_at'])
    .orderBy('contracts.review_deadline_at')
    .orderBy('contracts.id')
    .limit(limit)
    .execute();
  return rows.map((row) => row.id);
}

/**
 * Hides a review (moderation). Returns the hidden row, or undefined when it was already hidden (or
 * does not exist). A published review leaves its subject's summary here, once: the WHERE
 * `hidden_at is null` lets exactly one of two concurrent hides through.
 */
export async function hideReview(
  trx: Transaction<Database>,
  id: ReviewId,
  by: UserId,
  reason: string,
  now: Date,
): Promise<ReviewRow | undefined> {
  const row = await trx
    .updateTable('reviews')
    .set({ hidden_at: now, hidden_by: by, hidden_reason: reason })
    .where('id', '=', id)
    .where('hidden_at', 'is', null)
    .returningAll()
    .executeTakeFirst();
  if (row?.published_at != null) await addToRatings(trx, row.subject_id, row.rating, -1, now);
  return row;
}

/** Where the previous page of a user's reviews ended: (published_at, id). */
export interface ReviewCursor {
  readonly createdAt: string;
  readonly id: string;
}

/**
 * A user's published, visible reviews, newest published first, keyset-paginated on
 * (published_at, id): served by the partial index `reviews_subject_published_idx`.
 */
export function publishedReviewsOf(
  db: Db,
  subjectId: UserId,
  after: ReviewCursor | undefined,
  limit: number,
): Promise<ReviewRow[]> {
  let query = db
    .selectFrom('reviews')
    .selectAll()
    .where('subject_id', '=', subjectId)
    .where('published_at', 'is not', null)
    .where('hidden_at', 'is', null);
  if (after !== undefined) {
    query = query.where(
      sql<boolean>`(published_at, id) < (${after.createdAt}::timestamptz, ${after.id}::uuid)`,
    );
  }
  return query.orderBy('published_at', 'desc').orderBy('id', 'desc').limit(limit).execute();
}

export interface RatingSums {
  readonly count: number;
  readonly sum: number;
}

/** Count and sum of published, visible reviews per user; users without a row get none in the map. */
export async function ratingSumsOf(db: Db, userIds: readonly UserId[]): Promise<Map<UserId, RatingSums>> {
  if (userIds.length === 0) return new Map();
  const rows = await db
    .selectFrom('user_ratings')
    .select(['user_id', 'rating_count', 'rating_sum'])
    .where('user_id', 'in', [...userIds])
    .execute();
  return new Map(rows.map((row) => [row.user_id, { count: row.rating_count, sum: row.rating_sum }]));
}
