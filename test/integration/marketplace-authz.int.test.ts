/**
 * The marketplace's authorization matrix (issue 12 Done-when) over real HTTP: for every jobs, bids,
 * contracts, reviews and category route, who gets what — the owner or party, the other party, a
 * rival bidder, a stranger with every role, an administrator. Refusals are 403 (you may know it
 * exists, you may not do this) or 404 (you may not know it exists); a 404 body names nothing of the
 * resource. The matrix is checked against the OpenAPI document, so a new marketplace route without
 * a row fails here. A blind review is its author's alone (admins too get 404 until it is published);
 * a hidden review is visible to nobody but admins.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SandboxCard } from '../../src/domain/payments/sandbox-provider.js';
import { startTestNode, type TestNode } from '../support/context.js';
import { httpClient, type Registered, registerUser } from '../support/http.js';

type Json = Record<string, unknown>;
type Who = 'hirer' | 'worker' | 'rival' | 'stranger' | 'admin';
const ADMIN = { email: 'authz-admin@example.test', password: 'Cobalt-Marmot-81#' };
const PROBLEM_KEYS = new Set([
  'type',
  'title',
  'status',
  'detail',
  'code',
  'requestId',
  'instance',
  'errors',
]);

describe('marketplace authorization matrix', () => {
  let testNode: TestNode;
  let api: ReturnType<typeof httpClient>;
  const users = {} as Record<Who, Registered>;
  let adminToken: string;
  let categoryId: string;
  /** Ids of the fixtures: an open job with two bids, and a job under a delivered contract. */
  const ids: Record<string, string> = {};

  const post = (path: string, token: string, body?: Json, headers: Record<string, string> = {}) =>
    api.call<Json>('POST', path, {
      token,
      headers: { 'idempotency-key': randomUUID(), ...headers },
      ...(body === undefined ? {} : { body }),
    });

  beforeAll(async () => {
    testNode = await startTestNode({
      ADMIN_EMAIL: ADMIN.email,
      ADMIN_PASSWORD: ADMIN.password,
      OUTBOX_POLL_MS: '20',
    });
    api = httpClient(testNode.node.baseUrl);
    const login = await api.post<{ accessToken: string }>('/v1/auth/login', {
      login: ADMIN.email,
      password: ADMIN.password,
    });
    adminToken = login.body.accessToken;
    users.hirer = await registerUser(api, { roles: ['hirer'] });
    users.worker = await registerUser(api, { roles: ['worker'] });
    users.rival = await registerUser(api, { roles: ['worker'] });
    users.stranger = await registerUser(api, { roles: ['hirer', 'worker'] });
    users.admin = { ...users.stranger, id: '', accessToken: adminToken };
    const me = await api.get<{ id: string }>('/v1/me', adminToken);
    users.admin = { ...users.admin, id: me.body.id };
    const categories = await api.get<{ data: { id: string }[] }>('/v1/categories', adminToken);
    categoryId = categories.body.data[0]?.id as string;
    const topUp = await post('/v1/wallet/top-ups', users.hirer.accessToken, {
      amount: 100_000,
      card: SandboxCard.SUCCEEDS,
    });
    expect(topUp.status).toBe(202);
    for (let i = 0; i < 400; i++) {
      const wallet = await api.get<{ available: number }>('/v1/wallet', users.hirer.accessToken);
      if (wallet.body.available >= 100_000) break;
      await sleep(25);
    }
    const newJob = async () =>
      (
        await api.post<Json>(
          '/v1/jobs',
          {
            title: 'Translate a menu',
            description: 'Italian to English, two pages.',
            categoryId,
            skills: ['italian'],
            budget: { kind: 'fixed', amount: 20_000, currency: 'USD' },
          },
          users.hirer.accessToken,
        )
      ).body.id as string;
    const placeBid = async (who: Who, jobId: string) =>
      (await post(`/v1/jobs/${jobId}/bids`, users[who].accessToken, { amount: 10_000, deliveryDays: 2 }))
        .body as { id: string; version: number };
    const bid = async (who: Who, jobId: string) => (await placeBid(who, jobId)).id;
    /** The hirer accepts a bid at the version it was placed with (If-Match is required). */
    const accept = async (placed: { id: string; version: number }) =>
      (
        await post(`/v1/bids/${placed.id}/accept`, users.hirer.accessToken, undefined, {
          'if-match': `"${placed.version}"`,
        })
      ).body.id as string;
    ids.openJob = await newJob();
    ids.bid = await bid('worker', ids.openJob);
    ids.rivalBid = await bid('rival', ids.openJob);
    ids.hiredJob = await newJob();
    const hiredBid = await placeBid('worker', ids.hiredJob);
    await bid('rival', ids.hiredJob);
    ids.contract = await accept(hiredBid);
    // A second contract, completed with the worker's review still blind.
    const doneJob = await newJob();
    ids.doneContract = await accept(await placeBid('worker', doneJob));
    await post(`/v1/contracts/${ids.doneContract}/deliver`, users.worker.accessToken);
    await post(`/v1/contracts/${ids.doneContract}/approve`, users.hirer.accessToken);
    const review = await api.post<Json>(
      `/v1/contracts/${ids.doneContract}/review`,
      { rating: 2, text: 'Slow to answer' },
      users.worker.accessToken,
    );
    expect(review.status).toBe(201);
    ids.blindReview = review.body.id as string;
  });
  afterAll(async () => {
    await testNode?.stop();
  });

  interface Row {
    readonly method: 'GET' | 'POST' | 'PATCH';
    readonly path: string;
    readonly route: string;
    readonly body?: Json;
    readonly headers?: Record<string, string>;
    /** Expected status per caller; callers left out are not checked for this row. */
    readonly expect: Partial<Record<Who, number>>;
  }

  // Refusals only (and reads whose content is checked below): a row never changes anything.
  const rows = (): Row[] => [
    {
      method: 'PATCH',
      route: '/v1/jobs/{id}',
      path: `/v1/jobs/${ids.openJob}`,
      body: { title: 'Mine now' },
      expect: { worker: 403, rival: 403, stranger: 403, admin: 403 },
    },
    {
      method: 'POST',
      route: '/v1/jobs/{id}/close',
      path: `/v1/jobs/${ids.openJob}/close`,
      expect: { worker: 403, rival: 403, stranger: 403, admin: 403 },
    },
    {
      method: 'POST',
      route: '/v1/jobs/{id}/bids',
      path: `/v1/jobs/${ids.openJob}/bids`,
      body: { amount: 1, deliveryDays: 1 },
      expect: { hirer: 403, worker: 409 },
    },
    {
      method: 'POST',
      route: '/v1/jobs/{id}/bids',
      path: `/v1/jobs/${ids.hiredJob}/bids`,
      body: { amount: 1, deliveryDays: 1 },
      expect: { stranger: 409 },
    },
    {
      method: 'POST',
      route: '/v1/jobs',
      path: '/v1/jobs',
      body: {
        title: 'x',
        description: 'x',
        categoryId: randomUUID(),
        budget: { kind: 'fixed', amount: 1, currency: 'USD' },
      },
      expect: { worker: 403, rival: 403 },
    },
    {
      method: 'GET',
      route: '/v1/bids/{id}',
      path: `/v1/bids/${ids.bid}`,
      expect: { hirer: 200, worker: 200, admin: 200, rival: 404, stranger: 404 },
    },
    {
      method: 'PATCH',
      route: '/v1/bids/{id}',
      path: `/v1/bids/${ids.bid}`,
      body: { amount: 5 },
      expect: { hirer: 403, rival: 404, stranger: 404 },
    },
    {
      method: 'POST',
      route: '/v1/bids/{id}/withdraw',
      path: `/v1/bids/${ids.bid}/withdraw`,
      expect: { hirer: 403, rival: 404, stranger: 404 },
    },
    {
      method: 'POST',
      route: '/v1/bids/{id}/accept',
      path: `/v1/bids/${ids.bid}/accept`,
      // The version it was placed with (the PATCH row above is refused, so it never changes).
      headers: { 'if-match': '"0"' },
      expect: { worker: 403, rival: 404, stranger: 404 },
    },
    {
      method: 'GET',
      route: '/v1/contracts/{id}',
      path: `/v1/contracts/${ids.contract}`,
      expect: { hirer: 200, worker: 200, admin: 200, rival: 404, stranger: 404 },
    },
    {
      method: 'POST',
      route: '/v1/contracts/{id}/deliver',
      path: `/v1/contracts/${ids.contract}/deliver`,
      expect: { hirer: 403, rival: 404, stranger: 404, admin: 403 },
    },
    {
      method: 'POST',
      route: '/v1/contracts/{id}/request-changes',
      path: `/v1/contracts/${ids.contract}/request-changes`,
      expect: { hirer: 409, worker: 409, rival: 404, stranger: 404 },
    },
    {
      method: 'POST',
      route: '/v1/contracts/{id}/approve',
      path: `/v1/contracts/${ids.contract}/approve`,
      expect: { hirer: 409, rival: 404, stranger: 404 },
    },
    {
      method: 'POST',
      route: '/v1/contracts/{id}/cancel',
      path: `/v1/contracts/${ids.doneContract}/cancel`,
      expect: { hirer: 409, worker: 409, rival: 404, stranger: 404, admin: 409 },
    },
    {
      method: 'POST',
      route: '/v1/contracts/{id}/cancel',
      path: `/v1/contracts/${ids.contract}/cancel`,
      expect: { admin: 403, rival: 404, stranger: 404 },
    },
    {
      method: 'POST',
      route: '/v1/contracts/{id}/dispute',
      path: `/v1/contracts/${ids.contract}/dispute`,
      expect: { admin: 403, rival: 404, stranger: 404 },
    },
    {
      method: 'POST',
      route: '/v1/admin/contracts/{id}/resolve',
      path: `/v1/admin/contracts/${ids.contract}/resolve`,
      body: { toWorker: 10_000, toHirer: 0 },
      expect: { hirer: 403, worker: 403, rival: 403, stranger: 403, admin: 409 },
    },
    {
      method: 'POST',
      route: '/v1/contracts/{id}/review',
      path: `/v1/contracts/${ids.contract}/review`,
      body: { rating: 5 },
      expect: { hirer: 409, rival: 404, stranger: 404, admin: 404 },
    },
    {
      method: 'POST',
      route: '/v1/contracts/{id}/review',
      path: `/v1/contracts/${ids.doneContract}/review`,
      body: { rating: 5 },
      expect: { worker: 409, rival: 404, stranger: 404 },
    },
    {
      method: 'GET',
      route: '/v1/contracts/{id}/reviews',
      path: `/v1/contracts/${ids.doneContract}/reviews`,
      expect: { hirer: 200, worker: 200, admin: 200, rival: 404, stranger: 404 },
    },
    {
      method: 'GET',
      route: '/v1/admin/reviews/{id}',
      path: `/v1/admin/reviews/${ids.blindReview}`,
      expect: { hirer: 403, worker: 403, stranger: 403, admin: 404 },
    },
    {
      method: 'POST',
      route: '/v1/admin/reviews/{id}/hide',
      path: `/v1/admin/reviews/${ids.blindReview}/hide`,
      body: { reason: 'x' },
      expect: { hirer: 403, worker: 403, stranger: 403 },
    },
    {
      method: 'POST',
      route: '/v1/admin/categories',
      path: '/v1/admin/categories',
      body: { slug: 'nope', name: 'Nope' },
      expect: { hirer: 403, worker: 403, stranger: 403 },
    },
    {
      method: 'PATCH',
      route: '/v1/admin/categories/{id}',
      path: `/v1/admin/categories/${categoryId}`,
      body: { name: 'Renamed' },
      expect: { hirer: 403, worker: 403, stranger: 403 },
    },
    {
      method: 'GET',
      route: '/v1/jobs/{id}',
      path: `/v1/jobs/${ids.openJob}`,
      expect: { hirer: 200, worker: 200, stranger: 200 },
    },
    {
      method: 'GET',
      route: '/v1/jobs/{id}/bids',
      path: `/v1/jobs/${ids.openJob}/bids`,
      expect: { hirer: 200, worker: 200, rival: 200, stranger: 200 },
    },
    { method: 'GET', route: '/v1/jobs', path: '/v1/jobs', expect: { stranger: 200 } },
    { method: 'GET', route: '/v1/categories', path: '/v1/categories', expect: { stranger: 200 } },
    { method: 'GET', route: '/v1/me/bids', path: '/v1/me/bids', expect: { stranger: 200 } },
    {
      method: 'GET',
      route: '/v1/me/contracts',
      path: '/v1/me/contracts',
      expect: { stranger: 200, rival: 200 },
    },
    {
      method: 'GET',
      route: '/v1/users/{id}/reviews',
      path: `/v1/users/${users.hirer?.id}/reviews`,
      expect: { stranger: 200, hirer: 200 },
    },
    {
      method: 'GET',
      route: '/v1/users/{id}/reviews',
      path: `/v1/users/${randomUUID()}/reviews`,
      expect: { stranger: 404, admin: 404 },
    },
  ];

  const call = (row: Row, who: Who) =>
    api.call<Json>(row.method, row.path, {
      token: users[who].accessToken,
      headers: { 'idempotency-key': randomUUID(), ...row.headers },
      ...(row.body === undefined ? {} : { body: row.body }),
    });

  it('every marketplace route of the OpenAPI document has a row', async () => {
    const document = (await (await fetch(`${testNode.node.baseUrl}/openapi.json`)).json()) as {
      paths: Record<string, Record<string, unknown>>;
    };
    const marketplace =
      /^\/v1\/(jobs|bids|contracts|categories|me\/(bids|contracts)|users\/\{id\}\/reviews|admin\/(contracts|reviews|categories))/;
    const listed = Object.entries(document.paths)
      .filter(([path]) => marketplace.test(path))
      .flatMap(([path, methods]) => Object.keys(methods).map((method) => `${method.toUpperCase()} ${path}`))
      .sort();
    const covered = [...new Set(rows().map((row) => `${row.method} ${row.route}`))].sort();
    expect(covered).toEqual(listed);
  });

  it('each caller gets the status of its row, and a 404 names nothing of the resource', async () => {
    const failures: string[] = [];
    for (const row of rows()) {
      for (const [who, status] of Object.entries(row.expect) as [Who, number][]) {
        const response = await call(row, who);
        if (response.status !== status) {
          failures.push(
            `${row.method} ${row.route} as ${who}: ${response.status} (want ${status}) ${JSON.stringify(response.body)}`,
          );
          continue;
        }
        if (status === 404 || status === 403) {
          const extra = Object.keys(response.body ?? {}).filter((key) => !PROBLEM_KEYS.has(key));
          if (status === 404 && extra.length > 0)
            failures.push(`${row.method} ${row.route} as ${who}: 404 reveals ${extra}`);
          const text = JSON.stringify(response.body);
          for (const secret of [users.hirer.id, users.worker.id, 'Translate a menu']) {
            if (status === 404 && text.includes(secret))
              failures.push(`${row.method} ${row.route} as ${who}: 404 names ${secret}`);
          }
        }
      }
    }
    expect(failures).toEqual([]);
  });

  it('reads show each caller only their share', async () => {
    const job = async (who: Who) =>
      (await api.get<Json>(`/v1/jobs/${ids.openJob}`, users[who].accessToken)).body;
    expect(((await job('hirer')).bids as Json[]).map((bid) => bid.id).sort()).toEqual(
      [ids.bid, ids.rivalBid].sort(),
    );
    expect((await job('worker')).bids).toBeUndefined();
    expect((await job('stranger')).bids).toBeUndefined();
    expect((await job('stranger')).bidCount).toBe(2);
    const bidsSeenBy = async (who: Who) =>
      (
        (await api.get<{ data: Json[] }>(`/v1/jobs/${ids.openJob}/bids`, users[who].accessToken)).body.data ??
        []
      ).map((bid) => bid.id);
    expect(await bidsSeenBy('worker')).toEqual([ids.bid]);
    expect(await bidsSeenBy('rival')).toEqual([ids.rivalBid]);
    expect(await bidsSeenBy('stranger')).toEqual([]);
    const contractsOf = async (who: Who) =>
      (await api.get<{ data: Json[] }>('/v1/me/contracts', users[who].accessToken)).body.data.map(
        (c) => c.id,
      );
    expect(await contractsOf('stranger')).toEqual([]);
    expect(await contractsOf('rival')).toEqual([]);
    expect((await contractsOf('worker')).sort()).toEqual([ids.contract, ids.doneContract].sort());
    // The blind review: its author sees it; the other party, strangers and the public list do not.
    const reviewsOfContract = async (who: Who) =>
      (
        await api.get<{ data: Json[] }>(`/v1/contracts/${ids.doneContract}/reviews`, users[who].accessToken)
      ).body.data.map((review) => review.id);
    expect(await reviewsOfContract('worker')).toEqual([ids.blindReview]);
    expect(await reviewsOfContract('hirer')).toEqual([]);
    const publicReviews = async (who: Who) =>
      (await api.get<{ data: Json[] }>(`/v1/users/${users.hirer.id}/reviews`, users[who].accessToken)).body
        .data;
    expect(await publicReviews('stranger')).toEqual([]);
  });

  it('a hidden review is visible to nobody but admins', async () => {
    // The hirer reviews too: both are published, then an admin hides the worker's.
    const second = await api.post<Json>(
      `/v1/contracts/${ids.doneContract}/review`,
      { rating: 5, text: 'Great work' },
      users.hirer.accessToken,
    );
    expect(second.status).toBe(201);
    const publicReviews = async (who: Who) =>
      (
        await api.get<{ data: Json[] }>(`/v1/users/${users.hirer.id}/reviews`, users[who].accessToken)
      ).body.data.map((review) => review.id);
    expect(await publicReviews('stranger')).toEqual([ids.blindReview]);
    const hidden = await api.post<Json>(
      `/v1/admin/reviews/${ids.blindReview}/hide`,
      { reason: 'Personal data' },
      adminToken,
    );
    expect(hidden.status).toBe(200);
    for (const who of ['stranger', 'hirer', 'worker', 'rival', 'admin'] as const) {
      expect(await publicReviews(who)).toEqual([]);
    }
    for (const who of ['hirer', 'worker'] as const) {
      const seen = (
        await api.get<{ data: Json[] }>(`/v1/contracts/${ids.doneContract}/reviews`, users[who].accessToken)
      ).body.data.map((review) => review.id);
      expect(seen).not.toContain(ids.blindReview);
    }
    const asAdmin = await api.get<Json>(`/v1/admin/reviews/${ids.blindReview}`, adminToken);
    expect(asAdmin.status).toBe(200);
    expect(asAdmin.body).toMatchObject({ id: ids.blindReview, hidden: { reason: 'Personal data' } });
    const profile = await api.get<{ rating: { count: number } }>(
      `/v1/users/${users.hirer.id}`,
      users.stranger.accessToken,
    );
    expect(profile.body.rating.count).toBe(0);
  });
});
