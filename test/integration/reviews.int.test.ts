/**
 * Double-blind reviews, rating summaries, user performance and admin category edits (issue 12 §1,
 * §5–6) over real HTTP on a whole node with real PostgreSQL. Contracts are inserted with SQL in the
 * states a finished contract service leaves them (completed / resolved with a review window), so
 * these tests do not depend on it; the window task is `publishDueReviews`, called as the worker
 * calls it.
 */
import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ContractId, UserId } from '../../protocol/src/ids.js';
import { createDb, type DbHandle } from '../../src/db/create-db.js';
import type { Database } from '../../src/db/database.js';
import { findCategoryBySlug } from '../../src/db/repositories/jobs.repo.js';
import type { ContractStateColumn } from '../../src/db/tables/marketplace.table.js';
import { userPerformance } from '../../src/domain/marketplace/performance.js';
import { closeReviewWindow, publishDueReviews } from '../../src/domain/marketplace/reviews.js';
import { systemClock } from '../../src/platform/clock.js';
import { captureLogs, startTestNode, type TestNode } from '../support/context.js';
import { capturingDb, explain } from '../support/explain.js';
import { httpClient, promoteToAdmin, type Registered, registerUser } from '../support/http.js';

const ADMIN = { email: 'reviews-admin@example.test', password: 'Admin-Password-123!' };
const HOUR_MS = 3_600_000;

type Json = Record<string, unknown>;
interface ReviewBody {
  id: string;
  authorId: string;
  subjectId: string;
  rating: number;
  publishedAt: string | null;
  hidden?: { reason: string };
}
interface Rating {
  count: number;
  average: number | null;
  bayesian: number;
}

let node: TestNode;
let api: ReturnType<typeof httpClient>;
let handle: DbHandle;
let db: Kysely<Database>;
let adminToken: string;
let hirer: Registered;
let worker: Registered;
let stranger: Registered;

beforeAll(async () => {
  node = await startTestNode({ ADMIN_EMAIL: ADMIN.email, ADMIN_PASSWORD: ADMIN.password });
  api = httpClient(node.node.baseUrl);
  handle = await createDb({ kind: 'postgres', url: node.db.url, poolMax: 4 }, captureLogs().log);
  db = handle.db;
  const login = await api.post<{ accessToken: string }>('/v1/auth/login', {
    login: ADMIN.email,
    password: ADMIN.password,
  });
  adminToken = login.body.accessToken;
  [hirer, worker, stranger] = await Promise.all([
    registerUser(api, { roles: ['hirer'] }),
    registerUser(api, { roles: ['worker'] }),
    registerUser(api, { roles: ['worker'] }),
  ]);
}, 60_000);

afterAll(async () => {
  await handle?.close();
  await node?.stop();
});

interface ContractSpec {
  readonly hirerId: string;
  readonly workerId: string;
  readonly state: ContractStateColumn;
  readonly amount?: number;
  /** ms from now; default one hour ahead (window open). */
  readonly reviewDeadlineInMs?: number | null;
  readonly dueAt?: Date;
  readonly deliveredAt?: Date | null;
}

/** A job, its accepted bid and the contract, as the contract service would have left them. */
async function insertContract(spec: ContractSpec): Promise<ContractId> {
  const now = Date.now();
  const amount = String(spec.amount ?? 10_000);
  const category = await findCategoryBySlug(db, 'design');
  const job = await db
    .insertInto('jobs')
    .values({
      hirer_id: spec.hirerId as UserId,
      category_id: category?.id as NonNullable<typeof category>['id'],
      title: 'Reviewed job',
      description: 'Work to review.',
      budget_kind: 'fixed',
      budget_amount: amount,
      currency: 'USD',
      location: null,
      deadline: null,
      closed_at: null,
      status: spec.state === 'cancelled' ? 'cancelled' : 'completed',
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  const bid = await db
    .insertInto('bids')
    .values({
      job_id: job.id,
      worker_id: spec.workerId as UserId,
      amount,
      delivery_days: 3,
      cover_letter: '',
      status: 'accepted',
      decided_at: new Date(now),
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  const ended = ['completed', 'resolved', 'cancelled'].includes(spec.state);
  const contract = await db
    .insertInto('contracts')
    .values({
      job_id: job.id,
      bid_id: bid.id,
      hirer_id: spec.hirerId as UserId,
      worker_id: spec.workerId as UserId,
      title: 'Reviewed job',
      amount,
      currency: 'USD',
      delivery_days: 3,
      state: spec.state,
      due_at: spec.dueAt ?? new Date(now + 3 * 24 * HOUR_MS),
      delivered_at:
        spec.deliveredAt === undefined
          ? ended && spec.state !== 'cancelled'
            ? new Date(now)
            : null
          : spec.deliveredAt,
      completed_at: spec.state === 'completed' ? new Date(now) : null,
      resolved_at: spec.state === 'resolved' ? new Date(now) : null,
      cancelled_at: spec.state === 'cancelled' ? new Date(now) : null,
      review_deadline_at:
        spec.reviewDeadlineInMs === null || !['completed', 'resolved'].includes(spec.state)
          ? null
          : new Date(now + (spec.reviewDeadlineInMs ?? HOUR_MS)),
      auto_approve_at: null,
      disputed_at: null,
      room_id: null,
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  return contract.id;
}

const review = (user: Registered, contractId: string, body: Json = { rating: 5, text: 'Great work.' }) =>
  api.post<ReviewBody & Json>(`/v1/contracts/${contractId}/review`, body, user.accessToken);

const contractReviews = (token: string, contractId: string) =>
  api.get<{ data: ReviewBody[]; canReview: boolean; reviewDeadlineAt: string | null }>(
    `/v1/contracts/${contractId}/reviews`,
    token,
  );

const publicReviews = async (subject: Registered, viewer: string = stranger.accessToken) =>
  (await api.get<{ data: ReviewBody[] }>(`/v1/users/${subject.id}/reviews?limit=100`, viewer)).body.data;

const ratingOf = async (user: { id: string }): Promise<Rating> => {
  const profile = await api.get<{ rating: Rating }>(`/v1/users/${user.id}`, stranger.accessToken);
  expect(profile.status).toBe(200);
  return profile.body.rating;
};

const publishedEventsOf = async (contractId: string) =>
  (await db.selectFrom('outbox_events').selectAll().where('type', '=', 'review.published').execute()).filter(
    (event) => event.payload.contractId === contractId,
  );

describe('double-blind reviews', () => {
  it('a lone review is seen by its author only; the second publishes both, counted once each', async () => {
    const [h, w] = await Promise.all([
      registerUser(api, { roles: ['hirer'] }),
      registerUser(api, { roles: ['worker'] }),
    ]);
    const contractId = await insertContract({ hirerId: h.id, workerId: w.id, state: 'completed' });

    const first = await review(w, contractId, { rating: 4, text: 'Clear brief, paid on time.' });
    expect(first.status).toBe(201);
    expect(first.body).toMatchObject({ authorId: w.id, subjectId: h.id, rating: 4, publishedAt: null });

    const asAuthor = await contractReviews(w.accessToken, contractId);
    expect(asAuthor.body.data.map((r) => r.id)).toEqual([first.body.id]);
    expect(asAuthor.body.canReview).toBe(false);
    const asOther = await contractReviews(h.accessToken, contractId);
    expect(asOther.status).toBe(200);
    expect(asOther.body.data).toEqual([]);
    expect(asOther.body.canReview).toBe(true);
    // Not even admins see a blind review.
    expect((await contractReviews(adminToken, contractId)).body.data).toEqual([]);
    expect((await api.get(`/v1/admin/reviews/${first.body.id}`, adminToken)).status).toBe(404);
    expect(await publicReviews(h)).toEqual([]);
    expect(await publicReviews(h, h.accessToken)).toEqual([]);
    expect(await ratingOf(h)).toEqual({ count: 0, average: null, bayesian: 3.5 });
    expect(await publishedEventsOf(contractId)).toHaveLength(0);

    const second = await review(h, contractId, { rating: 5, text: 'Delivered early.' });
    expect(second.status).toBe(201);
    expect(second.body.publishedAt).not.toBeNull();

    for (const token of [h.accessToken, w.accessToken, adminToken]) {
      const both = await contractReviews(token, contractId);
      expect(both.body.data.map((r) => r.id).sort()).toEqual([first.body.id, second.body.id].sort());
      expect(both.body.data.every((r) => r.publishedAt !== null)).toBe(true);
    }
    expect((await publicReviews(h)).map((r) => r.id)).toEqual([first.body.id]);
    expect((await publicReviews(w)).map((r) => r.id)).toEqual([second.body.id]);
    expect(await ratingOf(h)).toEqual({ count: 1, average: 4, bayesian: 3.58 });
    expect(await ratingOf(w)).toEqual({ count: 1, average: 5, bayesian: 3.75 });

    const events = await publishedEventsOf(contractId);
    expect(
      events.map((e) => e.payload).sort((a, b) => String(a.reviewId).localeCompare(String(b.reviewId))),
    ).toEqual(
      [
        {
          reviewId: first.body.id,
          contractId,
          jobId: expect.any(String),
          rating: 4,
          authorId: w.id,
          subjectId: h.id,
          notify: [h.id, w.id],
        },
        {
          reviewId: second.body.id,
          contractId,
          jobId: expect.any(String),
          rating: 5,
          authorId: h.id,
          subjectId: w.id,
          notify: [w.id, h.id],
        },
      ].sort((a, b) => a.reviewId.localeCompare(b.reviewId)),
    );

    // The worker search result carries the summary too.
    const search = await api.get<{ data: { id: string; rating: Rating }[] }>(
      `/v1/users?q=${w.username}`,
      stranger.accessToken,
    );
    expect(search.body.data.find((u) => u.id === w.id)?.rating).toEqual({
      count: 1,
      average: 5,
      bayesian: 3.75,
    });
  });

  it('both parties reviewing at the same moment: both published, each counted exactly once', async () => {
    const pairs = await Promise.all(
      Array.from({ length: 4 }, async () => {
        const [h, w] = await Promise.all([
          registerUser(api, { roles: ['hirer'] }),
          registerUser(api, { roles: ['worker'] }),
        ]);
        return {
          h,
          w,
          contractId: await insertContract({ hirerId: h.id, workerId: w.id, state: 'resolved' }),
        };
      }),
    );
    await Promise.all(
      pairs.map(async ({ h, w, contractId }) => {
        const [a, b] = await Promise.all([
          review(h, contractId, { rating: 2, text: '' }),
          review(w, contractId, { rating: 3, text: '' }),
        ]);
        expect([a.status, b.status]).toEqual([201, 201]);
        // Exactly one of the two saw the other's review and published both.
        expect([a.body.publishedAt, b.body.publishedAt].filter((p) => p !== null)).toHaveLength(1);
      }),
    );
    for (const { h, w, contractId } of pairs) {
      expect(await ratingOf(w)).toMatchObject({ count: 1, average: 2 });
      expect(await ratingOf(h)).toMatchObject({ count: 1, average: 3 });
      expect(await publishedEventsOf(contractId)).toHaveLength(2);
      expect((await contractReviews(h.accessToken, contractId)).body.data).toHaveLength(2);
      // The window task finds nothing left to publish.
      await db
        .updateTable('contracts')
        .set({ review_deadline_at: new Date(Date.now() - 1000) })
        .where('id', '=', contractId as ContractId)
        .execute();
      expect(await publishDueReviews({ db, clock: systemClock }, contractId as ContractId)).toMatchObject({
        windowClosed: true,
        published: 0,
      });
      expect(await ratingOf(w)).toMatchObject({ count: 1 });
    }
  });

  it('refusals: before the end 409 with the state, a second review 409, strangers 404, after the deadline 409', async () => {
    const active = await insertContract({ hirerId: hirer.id, workerId: worker.id, state: 'active' });
    const early = await review(worker, active);
    expect(early.status).toBe(409);
    expect(early.body).toMatchObject({ code: 'INVALID_TRANSITION', state: 'active' });
    const disputed = await insertContract({ hirerId: hirer.id, workerId: worker.id, state: 'disputed' });
    expect((await review(hirer, disputed)).body).toMatchObject({
      code: 'INVALID_TRANSITION',
      state: 'disputed',
    });

    const done = await insertContract({ hirerId: hirer.id, workerId: worker.id, state: 'completed' });
    expect((await review(stranger, done)).status).toBe(404);
    expect((await review(stranger, randomUUID())).status).toBe(404);
    expect((await contractReviews(stranger.accessToken, done)).status).toBe(404);
    // A stranger learns nothing: the same answer for a contract that exists and one that does not.
    const missing = await contractReviews(stranger.accessToken, randomUUID());
    expect(missing.status).toBe(404);
    expect((await review(worker, done, { rating: 6 })).status).toBe(400);
    expect((await review(worker, done, { rating: 3, text: 'x'.repeat(2001) })).status).toBe(400);

    expect((await review(worker, done)).status).toBe(201);
    const twice = await review(worker, done, { rating: 1, text: 'changed my mind' });
    expect(twice.status).toBe(409);
    expect(twice.body).toMatchObject({ code: 'CONFLICT', reason: 'REVIEW_EXISTS' });

    const late = await insertContract({
      hirerId: hirer.id,
      workerId: worker.id,
      state: 'completed',
      reviewDeadlineInMs: -1000,
    });
    const closed = await review(hirer, late);
    expect(closed.status).toBe(409);
    expect(closed.body).toMatchObject({ code: 'CONFLICT', reason: 'REVIEW_WINDOW_CLOSED' });
    expect((await contractReviews(hirer.accessToken, late)).body.canReview).toBe(false);
  });

  it('the window task publishes a lone review once (a rerun does nothing), not before the deadline', async () => {
    const [h, w] = await Promise.all([
      registerUser(api, { roles: ['hirer'] }),
      registerUser(api, { roles: ['worker'] }),
    ]);
    const contractId = (await insertContract({
      hirerId: h.id,
      workerId: w.id,
      state: 'completed',
    })) as ContractId;
    const lone = await review(h, contractId, { rating: 5, text: 'Would hire again.' });
    expect(lone.status).toBe(201);

    const deps = { db, clock: systemClock };
    expect(await publishDueReviews(deps, contractId)).toMatchObject({ windowClosed: false, published: 0 });
    // The task ran early: it fails, to be retried, rather than leave the review blind for good.
    await expect(closeReviewWindow(deps, contractId)).rejects.toMatchObject({
      code: 'CONFLICT',
      details: { reason: 'REVIEW_WINDOW_OPEN' },
    });
    expect(await publicReviews(w)).toEqual([]);

    await db
      .updateTable('contracts')
      .set({ review_deadline_at: new Date(Date.now() - 1000) })
      .where('id', '=', contractId)
      .execute();
    const [a, b] = await Promise.all([
      closeReviewWindow(deps, contractId),
      publishDueReviews(deps, contractId),
    ]);
    expect(a.published + b.published).toBe(1);
    expect(await closeReviewWindow(deps, contractId)).toMatchObject({ windowClosed: true, published: 0 });
    expect(await closeReviewWindow(deps, randomUUID() as ContractId)).toEqual({
      windowClosed: false,
      published: 0,
      deadline: null,
    });

    expect((await publicReviews(w)).map((r) => r.id)).toEqual([lone.body.id]);
    expect(await ratingOf(w)).toEqual({ count: 1, average: 5, bayesian: 3.75 });
    expect(await publishedEventsOf(contractId)).toHaveLength(1);
    // The window is closed for the other party now.
    expect((await review(w, contractId)).status).toBe(409);
  });

  it('a hidden review is visible to admins only and leaves the summary once', async () => {
    const [h, w] = await Promise.all([
      registerUser(api, { roles: ['hirer'] }),
      registerUser(api, { roles: ['worker'] }),
    ]);
    const contractId = await insertContract({ hirerId: h.id, workerId: w.id, state: 'completed' });
    const abusive = (await review(w, contractId, { rating: 1, text: 'insults' })).body;
    const fair = (await review(h, contractId, { rating: 4, text: 'Fine.' })).body;
    expect(await ratingOf(h)).toMatchObject({ count: 1, average: 1 });

    const byUser = await api.post(`/v1/admin/reviews/${abusive.id}/hide`, { reason: 'abuse' }, h.accessToken);
    expect(byUser.status).toBe(403);
    expect((await api.get(`/v1/admin/reviews/${abusive.id}`, h.accessToken)).status).toBe(403);
    expect((await api.post(`/v1/admin/reviews/${abusive.id}/hide`, { reason: '' }, adminToken)).status).toBe(
      400,
    );

    const hide = () =>
      api.post<ReviewBody>(`/v1/admin/reviews/${abusive.id}/hide`, { reason: 'abuse' }, adminToken);
    const [x, y] = await Promise.all([hide(), hide()]);
    expect([x.status, y.status]).toEqual([200, 200]);
    expect(x.body.hidden).toMatchObject({ reason: 'abuse' });
    expect((await hide()).status).toBe(200);

    expect(await ratingOf(h)).toEqual({ count: 0, average: null, bayesian: 3.5 });
    expect(await ratingOf(w)).toMatchObject({ count: 1, average: 4 });
    expect(await publicReviews(h)).toEqual([]);
    expect(await publicReviews(h, adminToken)).toEqual([]);
    for (const party of [h, w]) {
      const seen = (await contractReviews(party.accessToken, contractId)).body.data;
      expect(seen.map((r) => r.id)).toEqual([fair.id]);
    }
    const asAdmin = (await contractReviews(adminToken, contractId)).body.data;
    expect(asAdmin.find((r) => r.id === abusive.id)?.hidden).toMatchObject({ reason: 'abuse' });
    const one = await api.get<ReviewBody>(`/v1/admin/reviews/${abusive.id}`, adminToken);
    expect(one.status).toBe(200);
    expect(one.body).toMatchObject({ id: abusive.id, rating: 1, hidden: { reason: 'abuse' } });
    expect((await api.get(`/v1/admin/reviews/${randomUUID()}`, adminToken)).status).toBe(404);
  });

  it('an admin may not hide a review about themself (403), only reviews of others', async () => {
    const [h, w] = await Promise.all([
      registerUser(api, { roles: ['hirer'] }),
      registerUser(api, { roles: ['worker'] }),
    ]);
    const contractId = await insertContract({ hirerId: h.id, workerId: w.id, state: 'completed' });
    const aboutHirer = (await review(w, contractId, { rating: 1, text: 'Paid late.' })).body;
    const aboutWorker = (await review(h, contractId, { rating: 2, text: 'Slow.' })).body;
    // The hirer is made an admin (and logs in again for a token that says so).
    const hirerAsAdmin = await promoteToAdmin(api, handle.db, h, ['hirer']);
    const own = await api.post(`/v1/admin/reviews/${aboutHirer.id}/hide`, { reason: 'unfair' }, hirerAsAdmin);
    expect(own.status).toBe(403);
    expect(await ratingOf(h)).toMatchObject({ count: 1, average: 1 });
    const other = await api.post(
      `/v1/admin/reviews/${aboutWorker.id}/hide`,
      { reason: 'test' },
      hirerAsAdmin,
    );
    expect(other.status).toBe(200);
  });

  it("a user's public list pages newest published first through every review once", async () => {
    const subject = await registerUser(api, { roles: ['worker'] });
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const author = await registerUser(api, { roles: ['hirer'] });
      const contractId = await insertContract({
        hirerId: author.id,
        workerId: subject.id,
        state: 'completed',
      });
      await review(subject, contractId, { rating: 5, text: '' });
      ids.unshift((await review(author, contractId, { rating: 1 + i, text: `review ${i}` })).body.id);
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const query: string = cursor === null ? '' : `&cursor=${cursor}`;
      const page = await api.get<{ data: ReviewBody[]; nextCursor: string | null }>(
        `/v1/users/${subject.id}/reviews?limit=2${query}`,
        stranger.accessToken,
      );
      expect(page.status).toBe(200);
      seen.push(...page.body.data.map((r) => r.id));
      cursor = page.body.nextCursor;
    } while (cursor !== null);
    expect(new Set(seen)).toEqual(new Set(ids));
    const expected = await db
      .selectFrom('reviews')
      .select('id')
      .where('subject_id', '=', subject.id as UserId)
      .orderBy('published_at', 'desc')
      .orderBy('id', 'desc')
      .execute();
    expect(seen).toEqual(expected.map((r) => r.id));
    expect(await ratingOf(subject)).toEqual({ count: 5, average: 3, bayesian: 3.25 });
    expect(
      (await api.get(`/v1/users/${subject.id}/reviews?cursor=nonsense`, stranger.accessToken)).status,
    ).toBe(400);
  });
});

describe('user performance', () => {
  it('counts contracts by outcome, on-time deliveries and money, in one indexed query', async () => {
    const [h, w] = await Promise.all([
      registerUser(api, { roles: ['hirer'] }),
      registerUser(api, { roles: ['worker'] }),
    ]);
    const now = Date.now();
    const due = new Date(now);
    const base = { hirerId: h.id, workerId: w.id, dueAt: due };
    await insertContract({
      ...base,
      state: 'completed',
      amount: 1_000,
      deliveredAt: new Date(now - HOUR_MS),
    });
    await insertContract({
      ...base,
      state: 'completed',
      amount: 2_000,
      deliveredAt: new Date(now + HOUR_MS),
    });
    await insertContract({ ...base, state: 'resolved', amount: 500, deliveredAt: due });
    await insertContract({ ...base, state: 'cancelled', amount: 700 });
    await insertContract({ ...base, state: 'active', amount: 300, deliveredAt: null });

    const profile = await api.get<{ performance: Json }>(`/v1/users/${w.id}`, w.accessToken);
    expect(profile.body.performance).toEqual({
      contracts: 5,
      inProgressContracts: 1,
      completedContracts: 2,
      resolvedContracts: 1,
      cancelledContracts: 1,
      completionRate: 0.75,
      deliveries: 3,
      onTimeDeliveries: 2,
      totalEarned: 3_000,
      totalSpent: 0,
    });
    const hirerView = await api.get<{ performance: Json }>(`/v1/users/${h.id}`, h.accessToken);
    expect(hirerView.body.performance).toMatchObject({
      contracts: 5,
      completionRate: 0.75,
      deliveries: 0,
      onTimeDeliveries: 0,
      totalEarned: 0,
      totalSpent: 3_000,
    });
    const fresh = await api.get<{ performance: Json }>(`/v1/users/${stranger.id}`, stranger.accessToken);
    expect(fresh.body.performance).toMatchObject({ contracts: 0, completionRate: null, totalEarned: 0 });

    // The query as the code sends it: one statement, served by both party indexes.
    const capture = capturingDb(db);
    await userPerformance({ db: capture.db }, w.id as UserId);
    const [query, ...more] = capture.take();
    expect(more).toEqual([]);
    const plan = await explain(db, query as NonNullable<typeof query>, { enable_seqscan: 'off' });
    expect(plan).toMatch(/contracts_hirer_created_idx/);
    expect(plan).toMatch(/contracts_worker_created_idx/);
  });
});

describe('performance money totals', () => {
  it('only in the user’s own profile and for admins: a one-contract hirer’s total is that contract’s amount', async () => {
    const [h, w, rival] = await Promise.all([
      registerUser(api, { roles: ['hirer'] }),
      registerUser(api, { roles: ['worker'] }),
      registerUser(api, { roles: ['worker'] }),
    ]);
    await insertContract({ hirerId: h.id, workerId: w.id, state: 'completed', amount: 5_000 });
    await insertContract({ hirerId: h.id, workerId: w.id, state: 'active', amount: 700, deliveredAt: null });
    const performanceOf = async (subject: Registered, token: string) => {
      const profile = await api.get<{ performance: Json }>(`/v1/users/${subject.id}`, token);
      expect(profile.status).toBe(200);
      return profile.body.performance;
    };
    const counts = {
      contracts: 2,
      inProgressContracts: 1,
      completedContracts: 1,
      resolvedContracts: 0,
      cancelledContracts: 0,
      completionRate: 1,
    };
    // Anyone else, the other party and a rival included: counts and rates, never the totals.
    for (const viewer of [stranger, rival, w]) {
      const seen = await performanceOf(h, viewer.accessToken);
      expect(seen).toMatchObject(counts);
      expect(seen).not.toHaveProperty('totalSpent');
      expect(seen).not.toHaveProperty('totalEarned');
    }
    for (const viewer of [stranger, rival, h]) {
      const seen = await performanceOf(w, viewer.accessToken);
      expect(seen).toMatchObject({ ...counts, deliveries: 1, onTimeDeliveries: 1 });
      expect(Object.keys(seen).filter((key) => key.startsWith('total'))).toEqual([]);
    }
    // The user themself and admins: the totals too.
    expect(await performanceOf(h, h.accessToken)).toMatchObject({
      ...counts,
      totalSpent: 5_000,
      totalEarned: 0,
    });
    expect(await performanceOf(h, adminToken)).toMatchObject({ totalSpent: 5_000, totalEarned: 0 });
    expect(await performanceOf(w, w.accessToken)).toMatchObject({ totalEarned: 5_000, totalSpent: 0 });
    expect(await performanceOf(w, adminToken)).toMatchObject({ totalEarned: 5_000, totalSpent: 0 });
  });
});

describe('admin categories', () => {
  it('admins add and edit categories; others 403; a taken slug 409; unknown 404', async () => {
    const slug = `cat-${randomUUID().slice(0, 8)}`;
    expect((await api.post('/v1/admin/categories', { slug, name: 'Nope' }, hirer.accessToken)).status).toBe(
      403,
    );
    const created = await api.post<{ id: string; slug: string; name: string }>(
      '/v1/admin/categories',
      { slug, name: '  Voice acting ' },
      adminToken,
    );
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ slug, name: 'Voice acting' });

    const dup = await api.post('/v1/admin/categories', { slug, name: 'Again' }, adminToken);
    expect(dup.status).toBe(409);
    expect(dup.body).toMatchObject({ code: 'CONFLICT', reason: 'SLUG_TAKEN' });
    for (const bad of [
      { slug: 'Has Spaces', name: 'x' },
      { slug: 'ok-slug', name: '' },
      { slug: 'a--b', name: 'x' },
    ]) {
      expect((await api.post('/v1/admin/categories', bad, adminToken)).status).toBe(400);
    }

    const patch = (id: string, body: Json, token = adminToken) =>
      api.call<Json>('PATCH', `/v1/admin/categories/${id}`, { token, body });
    expect((await patch(created.body.id, { name: 'Hijack' }, worker.accessToken)).status).toBe(403);
    const renamed = await patch(created.body.id, { name: 'Voice over' });
    expect(renamed.status).toBe(200);
    expect(renamed.body).toMatchObject({ id: created.body.id, slug, name: 'Voice over' });
    const taken = await patch(created.body.id, { slug: 'design' });
    expect(taken.status).toBe(409);
    expect(taken.body).toMatchObject({ reason: 'SLUG_TAKEN' });
    expect((await patch(randomUUID(), { name: 'Ghost' })).status).toBe(404);
    const reslugged = await patch(created.body.id, { slug: `${slug}-2` });
    expect(reslugged.body).toMatchObject({ slug: `${slug}-2`, name: 'Voice over' });

    const list = await api.get<{ data: { id: string; slug: string }[] }>(
      '/v1/categories',
      worker.accessToken,
    );
    expect(list.body.data.find((c) => c.id === created.body.id)?.slug).toBe(`${slug}-2`);
  });
});
