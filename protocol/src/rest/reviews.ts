/**
 * Reviews, rating summaries, user performance and admin category edits over REST (issue 12 §1,
 * §5–6). Reviews are double-blind: until both parties of a contract reviewed (or the review window
 * closed) a review is visible to its author alone, and `publishedAt` is null.
 */
import { z } from 'zod';
import { CategoryId, ContractId, ReviewId, UserId } from '../ids.js';
import { Cursor, Iso, PageLimit, page } from './common.js';
import { multiLineText, singleLineText } from './text.js';

/**
 * A user's rating summary. `bayesian` = (5 × 3.5 + sum of stars) / (5 + count): the plain mean
 * pulled toward 3.5 as if every user started with five 3.5-star reviews, so a single review cannot
 * put a newcomer at the top or the bottom. Sort and rank by `bayesian`; show `average` with `count`.
 */
export const RatingSummary = z
  .object({
    count: z.int().min(0).describe('Published, not hidden reviews of the user.'),
    average: z.number().min(1).max(5).nullable().describe('Plain mean, 2 decimals; null without reviews.'),
    bayesian: z
      .number()
      .min(1)
      .max(5)
      .describe('Mean with a prior of 5 pseudo-reviews of 3.5 stars, 2 decimals; 3.5 without reviews.'),
  })
  .meta({ id: 'RatingSummary' });
export type RatingSummary = z.infer<typeof RatingSummary>;

/**
 * A user's contracts in figures (from the contracts table; amounts in minor units). The money
 * totals are only in the user's own profile and for admins: a total is a sum of contract amounts,
 * which only the two parties see.
 */
export const UserPerformance = z
  .object({
    contracts: z.int().min(0).describe('Contracts as hirer or worker, in any state.'),
    inProgressContracts: z.int().min(0).describe('active, delivered or disputed.'),
    completedContracts: z.int().min(0).describe('Ended completed (approved or auto-approved).'),
    resolvedContracts: z.int().min(0).describe('Ended resolved by an admin after a dispute.'),
    cancelledContracts: z.int().min(0),
    completionRate: z
      .number()
      .min(0)
      .max(1)
      .nullable()
      .describe(
        '(completed + resolved) / (completed + resolved + cancelled), 2 decimals; null before any ended.',
      ),
    deliveries: z.int().min(0).describe('As worker: contracts delivered at least once.'),
    onTimeDeliveries: z.int().min(0).describe('As worker: latest delivery at or before the due date.'),
    totalEarned: z
      .int()
      .min(0)
      .optional()
      .describe(
        'Only in your own profile (and to admins): as worker, amounts of completed contracts (minor units; resolved splits not included). Amounts are private to the parties of a contract.',
      ),
    totalSpent: z
      .int()
      .min(0)
      .optional()
      .describe(
        'Only in your own profile (and to admins): as hirer, amounts of completed contracts (minor units; resolved splits not included). Amounts are private to the parties of a contract.',
      ),
  })
  .meta({ id: 'UserPerformance' });
export type UserPerformance = z.infer<typeof UserPerformance>;

export const Review = z
  .object({
    id: ReviewId,
    contractId: ContractId,
    authorId: UserId,
    subjectId: UserId,
    rating: z.int().min(1).max(5),
    text: z.string(),
    createdAt: Iso,
    publishedAt: Iso.nullable().describe('Null while double-blind: then only its author sees it.'),
    hidden: z
      .object({ at: Iso, by: UserId.nullable(), reason: z.string() })
      .optional()
      .describe('Admins only: the moderation that hid this review from everyone else.'),
  })
  .meta({ id: 'Review' });

export const SubmitReviewRequest = z
  .strictObject({
    rating: z.int().min(1).max(5).describe('Stars, 1–5.'),
    text: multiLineText({ max: 2000 }).default(''),
  })
  .meta({ id: 'SubmitReviewRequest' });

export const HideReviewRequest = z
  .strictObject({
    reason: singleLineText({ min: 1, max: 500 }).describe('Why it was hidden (kept for the record).'),
  })
  .meta({ id: 'HideReviewRequest' });

export const ContractReviews = z
  .object({
    data: z
      .array(Review)
      .describe('Published reviews, plus your own while blind; hidden ones for admins only.'),
    reviewDeadlineAt: Iso.nullable().describe('End of the review window; null before the contract ended.'),
    canReview: z.boolean().describe('Whether you may submit your review now.'),
  })
  .meta({ id: 'ContractReviews' });

export const ReviewPage = page(Review).meta({ id: 'ReviewPage' });

const CategorySlug = z
  .string()
  .max(64)
  .regex(/^[a-z0-9]+(-[a-z0-9]+)*$/, { error: 'lower case letters and digits, words joined by "-"' });

export const CreateCategoryRequest = z
  .strictObject({ slug: CategorySlug, name: singleLineText({ min: 1, max: 100 }) })
  .meta({ id: 'CreateCategoryRequest' });

export const UpdateCategoryRequest = z
  .strictObject({ slug: CategorySlug, name: singleLineText({ min: 1, max: 100 }) })
  .partial()
  .meta({ id: 'UpdateCategoryRequest' });

export const ReviewPageQuery = z.strictObject({ cursor: Cursor.optional(), limit: PageLimit });
export const ContractIdParams = z.object({ id: ContractId });
export const ReviewIdParams = z.object({ id: ReviewId });
export const CategoryIdParams = z.object({ id: CategoryId });
export const ReviewUserIdParams = z.object({ id: UserId });
