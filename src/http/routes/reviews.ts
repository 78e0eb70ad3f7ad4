/**
 * Double-blind reviews (issue 12 §5) over the marketplace domain: a party reviews the other after
 * the contract ended, reviews appear when both are in or the window closed, admins hide abuse.
 * Strangers to a contract get 404 (nothing revealed); blind reviews never leave this API but to
 * their author; hidden ones only to admins.
 */
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { Problem } from '../../../protocol/src/rest/common.js';
import {
  ContractIdParams,
  ContractReviews,
  HideReviewRequest,
  ReviewIdParams,
  ReviewPage,
  ReviewPageQuery,
  Review as ReviewSchema,
  ReviewUserIdParams,
  SubmitReviewRequest,
} from '../../../protocol/src/rest/reviews.js';
import type { MarketplaceDeps } from '../../domain/marketplace/jobs.js';
import {
  getReviewAsAdmin,
  hideReview,
  type Review,
  reviewsOfContractFor,
  reviewsOfUser,
  submitReview,
  submitReviewIn,
} from '../../domain/marketplace/reviews.js';
import { IDEMPOTENCY_KEY_HEADER, type IdempotencyDeps, runIdempotentRoute } from '../idempotency.js';
import { principalOf } from '../plugins/auth.js';

export interface ReviewRoutesDeps {
  readonly marketplace: MarketplaceDeps;
  /** With it, a submission carrying an `Idempotency-Key` replays its first answer when retried. */
  readonly idempotency?: IdempotencyDeps;
}

const errors = { 400: Problem, 401: Problem, 403: Problem, 404: Problem };

export const reviewBody = (review: Review) => ({
  id: review.id,
  contractId: review.contractId,
  authorId: review.authorId,
  subjectId: review.subjectId,
  rating: review.rating,
  text: review.text,
  createdAt: review.createdAt.toISOString(),
  publishedAt: review.publishedAt?.toISOString() ?? null,
  ...(review.hidden === undefined
    ? {}
    : {
        hidden: { at: review.hidden.at.toISOString(), by: review.hidden.by, reason: review.hidden.reason },
      }),
});

export function registerReviewRoutes(app: FastifyInstance, deps: ReviewRoutesDeps): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const m = deps.marketplace;

  r.post('/v1/contracts/:id/review', {
    config: { auth: 'user' },
    schema: {
      operationId: 'submitReview',
      tags: ['reviews'],
      summary: 'Review the other party of an ended contract (once, within the review window)',
      description:
        'Only after the contract is completed or resolved (else 409 INVALID_TRANSITION with `state`), before `reviewDeadlineAt` (else 409 `REVIEW_WINDOW_CLOSED`), once (else 409 `REVIEW_EXISTS`; with an `Idempotency-Key` header, a retry of the same submission replays its first answer). Double-blind: the review stays visible to you alone until the other party reviewed too (both are published then) or the window closed.',
      params: ContractIdParams,
      headers: z.looseObject({ [IDEMPOTENCY_KEY_HEADER]: z.string().optional() }),
      body: SubmitReviewRequest,
      response: { 201: ReviewSchema, ...errors, 409: Problem, 422: Problem },
    },
    handler: async (request, reply) => {
      const actor = principalOf(request);
      // Optional here (a second review is refused anyway): with a key, a retry after a lost answer
      // gets that answer instead of 409 REVIEW_EXISTS.
      if (request.headers[IDEMPOTENCY_KEY_HEADER] !== undefined && deps.idempotency !== undefined) {
        return runIdempotentRoute(deps.idempotency, request, reply, actor.userId, async (trx) => ({
          status: 201,
          body: reviewBody(await submitReviewIn(trx, m, actor, request.params.id, request.body)),
        }));
      }
      const review = await submitReview(m, actor, request.params.id, request.body);
      return reply.status(201).send(reviewBody(review));
    },
  });

  r.get('/v1/contracts/:id/reviews', {
    config: { auth: 'user' },
    schema: {
      operationId: 'listContractReviews',
      tags: ['reviews'],
      summary: "A contract's reviews (its parties and admins): published ones and your own blind one",
      params: ContractIdParams,
      response: { 200: ContractReviews, ...errors },
    },
    handler: async (request) => {
      const result = await reviewsOfContractFor(m, principalOf(request), request.params.id);
      return {
        data: result.data.map(reviewBody),
        reviewDeadlineAt: result.reviewDeadlineAt?.toISOString() ?? null,
        canReview: result.canReview,
      };
    },
  });

  r.get('/v1/users/:id/reviews', {
    config: { auth: 'user' },
    schema: {
      operationId: 'listUserReviews',
      tags: ['reviews'],
      summary: "A user's published reviews (about them), newest published first, cursor pages",
      params: ReviewUserIdParams,
      querystring: ReviewPageQuery,
      response: { 200: ReviewPage, ...errors },
    },
    handler: async (request) => {
      const page = await reviewsOfUser(m, principalOf(request), request.params.id, {
        ...(request.query.cursor === undefined ? {} : { cursor: request.query.cursor }),
        limit: request.query.limit,
      });
      return { data: page.data.map(reviewBody), nextCursor: page.nextCursor };
    },
  });

  r.get('/v1/admin/reviews/:id', {
    config: { auth: 'admin' },
    schema: {
      operationId: 'getReviewAsAdmin',
      tags: ['reviews', 'admin'],
      summary: 'A published review, hidden or not, with its moderation (admins)',
      params: ReviewIdParams,
      response: { 200: ReviewSchema, ...errors },
    },
    handler: async (request) =>
      reviewBody(await getReviewAsAdmin(m, principalOf(request), request.params.id)),
  });

  r.post('/v1/admin/reviews/:id/hide', {
    config: { auth: 'admin' },
    schema: {
      operationId: 'hideReview',
      tags: ['reviews', 'admin'],
      summary: "Hide a published review with a reason (admins); it leaves the subject's list and rating",
      description:
        'Visible afterwards to admins only. Hiding an already hidden review changes nothing. A blind (unpublished) review is 404: nobody but its author has seen it.',
      params: ReviewIdParams,
      body: HideReviewRequest,
      response: { 200: ReviewSchema, ...errors },
    },
    handler: async (request) =>
      reviewBody(await hideReview(m, principalOf(request), request.params.id, request.body.reason)),
  });
}
