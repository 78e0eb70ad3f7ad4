/**
 * Jobs, bids and categories (issue 12 §1–2) over the marketplace domain. Every route needs a signed-in
 * user; the domain decides roles and ownership (403), hides foreign bids (404) and refuses changes in
 * the wrong status (409). POST bids requires an Idempotency-Key: a retried request gets the first
 * answer, never a second bid; POST /v1/jobs takes an optional one (a retry with it never posts a
 * second job), and so do closing a job and withdrawing a bid (a retry with it replays the first
 * answer instead of a 409 INVALID_TRANSITION for the change it made itself). Contracts, reviews
 * and accepting a bid are in their own modules.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Transaction } from 'kysely';
import { z } from 'zod';
import type { UserId } from '../../../protocol/src/ids.js';
import { Problem } from '../../../protocol/src/rest/common.js';
import {
  BidIdParams,
  BidPage,
  Bid as BidSchema,
  CategoryList,
  CreateJobRequest,
  JobDetail,
  JobIdParams,
  JobPage,
  Job as JobSchema,
  JobSearchQuery,
  PageQuery,
  PlaceBidRequest,
  UpdateBidRequest,
  UpdateJobRequest,
} from '../../../protocol/src/rest/jobs.js';
import type { Database } from '../../db/database.js';
import {
  type Bid,
  bidsOfJob,
  getBid,
  myBids,
  placeBidIn,
  updateBid,
  withdrawBid,
  withdrawBidIn,
} from '../../domain/marketplace/bids.js';
import {
  categories,
  closeJob,
  closeJobIn,
  createJob,
  createJobIn,
  getJob,
  type Job,
  type MarketplaceDeps,
  searchJobs,
  updateJob,
} from '../../domain/marketplace/jobs.js';
import { AppError } from '../../platform/errors.js';
import {
  IDEMPOTENCY_KEY_HEADER,
  type IdempotencyDeps,
  idempotencyKeyHeaders,
  runIdempotentRoute,
} from '../idempotency.js';
import { principalOf } from '../plugins/auth.js';

export interface JobRoutesDeps {
  readonly marketplace: MarketplaceDeps;
  readonly idempotency: IdempotencyDeps;
}

const errors = { 400: Problem, 401: Problem, 403: Problem, 404: Problem };
const changeErrors = { ...errors, 409: Problem };

const iso = (date: Date | null) => (date === null ? null : date.toISOString());

export const jobBody = (job: Job) => ({
  id: job.id,
  hirerId: job.hirerId,
  categoryId: job.categoryId,
  title: job.title,
  description: job.description,
  skills: [...job.skills],
  budget: { kind: job.budget.kind, amount: Number(job.budget.amount), currency: job.budget.currency },
  location: job.location,
  remote: job.remote,
  deadline: iso(job.deadline),
  status: job.status,
  version: job.version,
  createdAt: job.createdAt.toISOString(),
  updatedAt: job.updatedAt.toISOString(),
  closedAt: iso(job.closedAt),
});

export const bidBody = (bid: Bid) => ({
  id: bid.id,
  jobId: bid.jobId,
  workerId: bid.workerId,
  amount: Number(bid.amount),
  deliveryDays: bid.deliveryDays,
  coverLetter: bid.coverLetter,
  status: bid.status,
  version: bid.version,
  createdAt: bid.createdAt.toISOString(),
  updatedAt: bid.updatedAt.toISOString(),
  decidedAt: iso(bid.decidedAt),
});

type VersionedResource = 'job' | 'bid' | 'contract';

const badIfMatch = (what: VersionedResource, why = `must be the ${what} version, e.g. "3"`) =>
  new AppError('VALIDATION_FAILED', `If-Match must be the ${what} version`, {
    details: { errors: [{ path: 'headers.if-match', message: why }] },
  });

/** What a weak tag stands for: no version is negative, so it is a VERSION_MISMATCH every time. */
export const WEAK_TAG_VERSION = -1;

/**
 * If-Match: `"3"` or `3` → 3; `*` → undefined: RFC 9110 §13.1.1, "any current
 * representation", true whenever the resource exists (a missing one is 404 before any version is
 * compared), so the change goes ahead at whatever version it is. A weak tag (`W/"3"`) never
 * matches: If-Match uses the strong comparison (RFC 9110 §13.1.1), so it is WEAK_TAG_VERSION, which
 * no resource has (409 VERSION_MISMATCH with the current version). Anything else is a 400 (never
 * silently ignored). `what` names the resource whose version it must be, in the message.
 */
export function ifMatchVersion(
  header: string | undefined,
  what: VersionedResource = 'job',
): number | undefined {
  if (header === undefined || header.trim() === '*') return undefined;
  // Quoted as RFC 9110 writes it, or bare; not half-quoted (`"3`).
  const match = /^(W\/)?(?:"(\d{1,9})"|(\d{1,9}))$/.exec(header.trim());
  const digits = match?.[2] ?? match?.[3];
  if (digits === undefined) throw badIfMatch(what);
  return match?.[1] === undefined ? Number(digits) : WEAK_TAG_VERSION;
}

/**
 * The If-Match of a route that requires the version the client saw (accepting a bid: escrow holds
 * only the terms the hirer read). `*` would match any terms, the very thing the header is required
 * to rule out, so it is refused there (400 naming `headers.if-match`) like a missing one.
 */
export function requiredIfMatchVersion(header: string, what: VersionedResource): number {
  const version = ifMatchVersion(header, what);
  if (version === undefined) {
    throw badIfMatch(
      what,
      `must be the ${what} version you saw, e.g. "3": \`*\` (any version) is not accepted here`,
    );
  }
  return version;
}

/** The If-Match header of a conditional change, as documented in OpenAPI. */
export const ifMatchHeader = z.string().optional().meta({
  description:
    'Optional: the `version` you read, e.g. `"3"` (also `3`). A weak tag (`W/"3"`) never matches (RFC 9110 strong comparison). A resource changed since is 409 CONFLICT `reason: VERSION_MISMATCH` with the current `version`, nothing changed. `*` (RFC 9110: any current representation) matches whenever the resource exists. Anything else is 400 VALIDATION_FAILED naming `headers.if-match`.',
});

/** The optional Idempotency-Key of a bodiless state change (closing a job, withdrawing a bid). */
const optionalTransitionKey = z.string().optional().meta({
  description:
    'Optional: 1-255 visible ASCII characters naming this change. A retry with the same key after a lost answer replays the first answer (`idempotent-replayed: true`) instead of 409 INVALID_TRANSITION for a change already made; the same key on another request is 422 IDEMPOTENCY_KEY_REUSED; an empty or too long key is 400.',
});

const transitionHeaders = z.looseObject({
  [IDEMPOTENCY_KEY_HEADER]: optionalTransitionKey,
  'if-match': ifMatchHeader,
});

export function registerJobRoutes(app: FastifyInstance, deps: JobRoutesDeps): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const m = deps.marketplace;
  /**
   * A bodiless state change whose Idempotency-Key is optional (closing a job, withdrawing a bid):
   * with a key, `inTransaction` runs under it and a retry replays the first answer; without, `alone`.
   */
  const optionallyKeyed = <T>(
    request: FastifyRequest,
    reply: FastifyReply,
    userId: UserId,
    inTransaction: (trx: Transaction<Database>) => Promise<T>,
    alone: () => Promise<T>,
  ): Promise<T | FastifyReply> =>
    request.headers[IDEMPOTENCY_KEY_HEADER] === undefined
      ? alone()
      : runIdempotentRoute(
          deps.idempotency,
          request,
          reply,
          userId,
          async (trx) => ({ status: 200, body: await inTransaction(trx) }),
          { fingerprint: undefined },
        );

  r.get('/v1/categories', {
    config: { auth: 'user' },
    schema: {
      operationId: 'listCategories',
      tags: ['jobs'],
      summary: 'Job categories',
      response: { 200: CategoryList, 401: Problem },
    },
    handler: async () => ({ data: await categories(m) }),
  });

  r.get('/v1/jobs', {
    config: { auth: 'user' },
    schema: {
      operationId: 'searchJobs',
      tags: ['jobs'],
      summary: 'Search jobs: full text and filters, newest first or by relevance, cursor pages',
      description: 'Jobs of locked hirers are left out.',
      querystring: JobSearchQuery,
      response: { 200: JobPage, ...errors },
    },
    handler: async (request) => {
      const q = request.query;
      const page = await searchJobs(m, {
        ...(q.q === undefined ? {} : { text: q.q }),
        ...(q.categoryId === undefined ? {} : { categoryId: q.categoryId }),
        ...(q.skills === undefined ? {} : { skills: q.skills }),
        ...(q.budgetMin === undefined ? {} : { budgetMin: BigInt(q.budgetMin) }),
        ...(q.budgetMax === undefined ? {} : { budgetMax: BigInt(q.budgetMax) }),
        ...(q.budgetKind === undefined ? {} : { budgetKind: q.budgetKind }),
        ...(q.status === undefined || q.status.length === 0 ? {} : { statuses: q.status }),
        ...(q.remote === undefined ? {} : { remote: q.remote }),
        ...(q.location === undefined ? {} : { location: q.location }),
        ...(q.hirerId === undefined ? {} : { hirerId: q.hirerId }),
        ...(q.sort === undefined ? {} : { sort: q.sort }),
        ...(q.cursor === undefined ? {} : { cursor: q.cursor }),
        limit: q.limit,
      });
      return { data: page.data.map(jobBody), nextCursor: page.nextCursor };
    },
  });

  r.post('/v1/jobs', {
    config: { auth: 'user' },
    schema: {
      operationId: 'createJob',
      tags: ['jobs'],
      summary: 'Post a job (role hirer; at most 200 open jobs; optional Idempotency-Key)',
      description:
        'A hirer has at most 200 open jobs: one more is 409 CONFLICT `reason: JOB_LIMIT` with the `limit` (close a job, or hire for one, to post another). With an `Idempotency-Key` header, a retry of the same job (same key, same body) after a lost answer replays the first answer (`idempotent-replayed: true`) instead of posting a second job; the same key with another body is 422 `IDEMPOTENCY_KEY_REUSED`. Without one, every request posts a job.',
      headers: z.looseObject({
        [IDEMPOTENCY_KEY_HEADER]: z.string().optional().meta({
          description:
            'Optional: 1-255 visible ASCII characters naming this post. A retry with the same key and the same job replays the first answer (`idempotent-replayed: true`), never a second job; the same key with another job is 422 IDEMPOTENCY_KEY_REUSED; an empty or too long key is 400.',
        }),
      }),
      body: CreateJobRequest,
      response: { 201: JobSchema, ...errors, 409: Problem, 422: Problem },
    },
    handler: async (request, reply) => {
      const actor = principalOf(request);
      const body = request.body;
      const input = {
        categoryId: body.categoryId,
        title: body.title,
        description: body.description,
        skills: body.skills,
        budget: { ...body.budget, amount: BigInt(body.budget.amount) },
        location: body.location ?? null,
        remote: body.remote,
        deadline: body.deadline == null ? null : new Date(body.deadline),
      };
      // Optional (as for reviews): with a key, a retry after a lost answer gets that answer, not a
      // second job.
      if (request.headers[IDEMPOTENCY_KEY_HEADER] !== undefined) {
        return runIdempotentRoute(deps.idempotency, request, reply, actor.userId, async (trx) => ({
          status: 201,
          body: jobBody(await createJobIn(trx, m, actor, input)),
        }));
      }
      return reply.status(201).send(jobBody(await createJob(m, actor, input)));
    },
  });

  r.get('/v1/jobs/:id', {
    config: { auth: 'user' },
    schema: {
      operationId: 'getJob',
      tags: ['jobs'],
      summary: 'A job with its bid count; its hirer also sees the bids',
      description:
        "A locked hirer's job is 404, as an unknown one, for everyone but admins and the parties of the contract on it (the hired worker keeps the job their contract is about).",
      params: JobIdParams,
      response: { 200: JobDetail, ...errors },
    },
    handler: async (request) => {
      const actor = principalOf(request);
      const { job, bidCount } = await getJob(m, actor, request.params.id);
      const seesBids = job.hirerId === actor.userId || actor.roles.includes('admin');
      const bids = seesBids
        ? (await bidsOfJob(m, actor, job.id, { limit: 100 })).data.map(bidBody)
        : undefined;
      return { ...jobBody(job), bidCount, ...(bids === undefined ? {} : { bids }) };
    },
  });

  r.patch('/v1/jobs/:id', {
    config: { auth: 'user' },
    schema: {
      operationId: 'updateJob',
      tags: ['jobs'],
      summary: 'Change an open job (its hirer); If-Match: "<version>" refuses a stale edit with 409',
      description:
        'Only the fields whose value differs are written: a body that changes nothing (`{}`, or the values the job has, as a form sent whole or a retried edit sends them) answers the job as it is, at the same `version`. A `deadline` must be in the future only when it changes.',
      params: JobIdParams,
      headers: z.looseObject({ 'if-match': ifMatchHeader }),
      body: UpdateJobRequest,
      response: { 200: JobSchema, ...changeErrors },
    },
    handler: async (request) => {
      const body = request.body;
      const job = await updateJob(
        m,
        principalOf(request),
        request.params.id,
        {
          ...(body.title === undefined ? {} : { title: body.title }),
          ...(body.description === undefined ? {} : { description: body.description }),
          ...(body.categoryId === undefined ? {} : { categoryId: body.categoryId }),
          ...(body.skills === undefined ? {} : { skills: body.skills }),
          ...(body.location === undefined ? {} : { location: body.location }),
          ...(body.remote === undefined ? {} : { remote: body.remote }),
          ...(body.deadline === undefined
            ? {}
            : { deadline: body.deadline === null ? null : new Date(body.deadline) }),
          ...(body.budget === undefined
            ? {}
            : {
                budget: {
                  ...(body.budget.kind === undefined ? {} : { kind: body.budget.kind }),
                  ...(body.budget.amount === undefined ? {} : { amount: BigInt(body.budget.amount) }),
                  ...(body.budget.currency === undefined ? {} : { currency: body.budget.currency }),
                },
              }),
        },
        ifMatchVersion(request.headers['if-match']),
      );
      return jobBody(job);
    },
  });

  r.post('/v1/jobs/:id/close', {
    config: { auth: 'user' },
    schema: {
      operationId: 'closeJob',
      tags: ['jobs'],
      summary:
        'Close an open job without hiring (its hirer); pending bids are rejected; optional Idempotency-Key; If-Match: "<version>" refuses a stale close with 409',
      description:
        'A job that is not open is 409 INVALID_TRANSITION naming its `state`, so a retry after a lost answer would be told its own close failed: send an `Idempotency-Key` and the retry replays the first answer (`idempotent-replayed: true`). Without one, every request is a new close.',
      params: JobIdParams,
      headers: transitionHeaders,
      response: { 200: JobSchema, ...changeErrors, 422: Problem },
    },
    handler: async (request, reply) => {
      const actor = principalOf(request);
      const expectedVersion = ifMatchVersion(request.headers['if-match']);
      return optionallyKeyed(
        request,
        reply,
        actor.userId,
        async (trx) => jobBody(await closeJobIn(trx, m, actor, request.params.id, expectedVersion)),
        async () => jobBody(await closeJob(m, actor, request.params.id, expectedVersion)),
      );
    },
  });

  r.post('/v1/jobs/:id/bids', {
    config: { auth: 'user' },
    schema: {
      operationId: 'placeBid',
      tags: ['bids'],
      summary: 'Bid on an open job (role worker, not your own job, one live bid; Idempotency-Key required)',
      params: JobIdParams,
      headers: idempotencyKeyHeaders,
      body: PlaceBidRequest,
      response: { 201: BidSchema, ...changeErrors, 422: Problem },
    },
    handler: async (request, reply) => {
      const actor = principalOf(request);
      return runIdempotentRoute(deps.idempotency, request, reply, actor.userId, async (trx) => ({
        status: 201,
        body: bidBody(
          await placeBidIn(trx, m, actor, request.params.id, {
            amount: BigInt(request.body.amount),
            deliveryDays: request.body.deliveryDays,
            coverLetter: request.body.coverLetter,
          }),
        ),
      }));
    },
  });

  r.get('/v1/jobs/:id/bids', {
    config: { auth: 'user' },
    schema: {
      operationId: 'listJobBids',
      tags: ['bids'],
      summary: "A job's bids: all of them for its hirer, your own otherwise; newest first",
      description:
        "A job GET /v1/jobs/{id} hides is 404 here too: a locked hirer's job, as an unknown one, for everyone but admins and the parties of the contract on it.",
      params: JobIdParams,
      querystring: PageQuery,
      response: { 200: BidPage, ...errors },
    },
    handler: async (request) => {
      const page = await bidsOfJob(m, principalOf(request), request.params.id, {
        ...(request.query.cursor === undefined ? {} : { cursor: request.query.cursor }),
        limit: request.query.limit,
      });
      return { data: page.data.map(bidBody), nextCursor: page.nextCursor };
    },
  });

  r.get('/v1/me/bids', {
    config: { auth: 'user' },
    schema: {
      operationId: 'listMyBids',
      tags: ['bids'],
      summary: 'Your bids, newest first',
      querystring: PageQuery,
      response: { 200: BidPage, ...errors },
    },
    handler: async (request) => {
      const page = await myBids(m, principalOf(request), {
        ...(request.query.cursor === undefined ? {} : { cursor: request.query.cursor }),
        limit: request.query.limit,
      });
      return { data: page.data.map(bidBody), nextCursor: page.nextCursor };
    },
  });

  r.get('/v1/bids/:id', {
    config: { auth: 'user' },
    schema: {
      operationId: 'getBid',
      tags: ['bids'],
      summary: "A bid: its worker's, or on your job (404 otherwise)",
      params: BidIdParams,
      response: { 200: BidSchema, ...errors },
    },
    handler: async (request) => bidBody(await getBid(m, principalOf(request), request.params.id)),
  });

  r.patch('/v1/bids/:id', {
    config: { auth: 'user' },
    schema: {
      operationId: 'updateBid',
      tags: ['bids'],
      summary: 'Change your pending bid; If-Match: "<version>" refuses a stale edit with 409',
      description:
        "Only the fields whose value differs are written: a body that changes nothing (`{}`, or the values the bid has) answers the bid as it is, at the same `version`, so the hirer's accept at that version still holds.",
      params: BidIdParams,
      headers: z.looseObject({ 'if-match': ifMatchHeader }),
      body: UpdateBidRequest,
      response: { 200: BidSchema, ...changeErrors },
    },
    handler: async (request) => {
      const body = request.body;
      const bid = await updateBid(
        m,
        principalOf(request),
        request.params.id,
        {
          ...(body.amount === undefined ? {} : { amount: BigInt(body.amount) }),
          ...(body.deliveryDays === undefined ? {} : { deliveryDays: body.deliveryDays }),
          ...(body.coverLetter === undefined ? {} : { coverLetter: body.coverLetter }),
        },
        ifMatchVersion(request.headers['if-match'], 'bid'),
      );
      return bidBody(bid);
    },
  });

  r.post('/v1/bids/:id/withdraw', {
    config: { auth: 'user' },
    schema: {
      operationId: 'withdrawBid',
      tags: ['bids'],
      summary:
        'Withdraw your pending bid (you may bid on the job again); optional Idempotency-Key; If-Match: "<version>" refuses a stale withdraw with 409',
      description:
        'A bid that is not pending is 409 INVALID_TRANSITION naming its `state`, so a retry after a lost answer would be told its own withdrawal failed: send an `Idempotency-Key` and the retry replays the first answer (`idempotent-replayed: true`). Without one, every request is a new withdrawal.',
      params: BidIdParams,
      headers: transitionHeaders,
      response: { 200: BidSchema, ...changeErrors, 422: Problem },
    },
    handler: async (request, reply) => {
      const actor = principalOf(request);
      const expectedVersion = ifMatchVersion(request.headers['if-match'], 'bid');
      return optionallyKeyed(
        request,
        reply,
        actor.userId,
        async (trx) => bidBody(await withdrawBidIn(trx, m, actor, request.params.id, expectedVersion)),
        async () => bidBody(await withdrawBid(m, actor, request.params.id, expectedVersion)),
      );
    },
  });
}
