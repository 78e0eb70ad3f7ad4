/**
 * Jobs, bids and categories over real HTTP (issue 12 §1–2, REST part): status codes of the rules,
 * the hirer's view of a job with its bids, Idempotency-Key on POST bids (a retry gets the first
 * answer, never a second bid), search query parsing, and the routes in the OpenAPI document.
 */
import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningNode } from '../../src/bin/start-node.js';
import { createDb } from '../../src/db/create-db.js';
import * as fourDigitYearDeadlines from '../../src/db/migrations/0020_four_digit_year_deadlines.js';
import { startTestNode, type TestNode } from '../support/context.js';
import { httpClient, type Registered, registerUser } from '../support/http.js';

type Json = Record<string, unknown>;

describe('jobs over REST', () => {
  let testNode: TestNode;
  let node: RunningNode;
  let api: ReturnType<typeof httpClient>;
  let hirer: Registered;
  let worker: Registered;
  let stranger: Registered;
  let categoryId: string;
  let currency: string;

  beforeAll(async () => {
    testNode = await startTestNode();
    ({ node } = testNode);
    api = httpClient(node.baseUrl);
    hirer = await registerUser(api, { roles: ['hirer'] });
    worker = await registerUser(api, { roles: ['worker'] });
    stranger = await registerUser(api, { roles: ['worker'] });
    const list = await api.get<{ data: { id: string; slug: string }[] }>('/v1/categories', hirer.accessToken);
    expect(list.status).toBe(200);
    categoryId = list.body.data.find((c) => c.slug === 'software-development')?.id as string;
    const wallet = await api.get<{ currency: string }>('/v1/wallet', hirer.accessToken);
    currency = wallet.status === 200 ? wallet.body.currency : 'USD';
  });
  afterAll(async () => {
    await testNode.stop();
  });

  const postJob = (token: string, overrides: Json = {}) =>
    api.post<Json>(
      '/v1/jobs',
      {
        title: 'Fix a flaky Kotlin build',
        description: 'Gradle caches go stale in CI.',
        categoryId,
        skills: ['Kotlin', 'Gradle'],
        budget: { kind: 'fixed', amount: 30_000, currency },
        remote: true,
        ...overrides,
      },
      token,
    );

  const bid = (token: string, jobId: string, key: string, body: Json = {}) =>
    api.call<Json>('POST', `/v1/jobs/${jobId}/bids`, {
      token,
      headers: { 'idempotency-key': key },
      body: { amount: 25_000, deliveryDays: 5, coverLetter: 'Done this before.', ...body },
    });

  it('needs a signed-in user', async () => {
    expect((await api.get('/v1/jobs')).status).toBe(401);
    expect((await api.get('/v1/categories')).status).toBe(401);
  });

  it('a hirer posts (201), a worker may not (403), bad input is 400', async () => {
    const created = await postJob(hirer.accessToken);
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      status: 'open',
      hirerId: hirer.id,
      skills: ['kotlin', 'gradle'],
      budget: { kind: 'fixed', amount: 30_000, currency },
      version: 0,
      closedAt: null,
    });
    expect((await postJob(worker.accessToken)).status).toBe(403);
    expect(
      (await postJob(hirer.accessToken, { budget: { kind: 'fixed', amount: 0, currency } })).status,
    ).toBe(400);
    expect((await postJob(hirer.accessToken, { categoryId: randomUUID() })).status).toBe(400);
    expect((await postJob(hirer.accessToken, { surprise: true })).status).toBe(400);
  });

  it('a deadline past year 9999 in UTC is 400 on POST and PATCH, and never leaves a job that answers 500', async () => {
    // 9999-12-31T23:59:59Z at -00:01 is 10000-01-01T00:00:59Z: valid RFC 3339 in, but toISOString
    // writes "+010000-…", which no response schema accepts.
    const beyond = '9999-12-31T23:59:59.999-00:01';
    const title = `Far deadline ${randomUUID().slice(0, 8)}`;
    const posted = await postJob(hirer.accessToken, { title, deadline: beyond });
    expect(posted.status).toBe(400);
    expect(posted.body).toMatchObject({ code: 'VALIDATION_FAILED' });
    const open = await postJob(hirer.accessToken, { title });
    expect(open.status).toBe(201);
    const patched = await api.call<Json>('PATCH', `/v1/jobs/${open.body.id}`, {
      token: hirer.accessToken,
      body: { deadline: beyond },
    });
    expect(patched.status).toBe(400);
    expect(patched.body).toMatchObject({ code: 'VALIDATION_FAILED' });
    // The last instant a four-digit year names is still a deadline.
    const last = await api.call<Json>('PATCH', `/v1/jobs/${open.body.id}`, {
      token: hirer.accessToken,
      body: { deadline: '9999-12-31T23:59:59.999Z' },
    });
    expect(last.status).toBe(200);
    expect(last.body.deadline).toBe('9999-12-31T23:59:59.999Z');
    // Nobody's reads of the job or of the board break.
    expect((await api.get(`/v1/jobs/${open.body.id}`, worker.accessToken)).status).toBe(200);
    expect((await api.get(`/v1/jobs?hirerId=${hirer.id}`, worker.accessToken)).status).toBe(200);
  });

  it('migration 0020 brings a deadline an older version stored past year 9999 back to the last instant, so the job reads again', async () => {
    const job = await postJob(hirer.accessToken, { title: `Stored far ${randomUUID().slice(0, 8)}` });
    expect(job.status).toBe(201);
    const client = new pg.Client({ connectionString: testNode.db.url });
    await client.connect();
    try {
      // What versions before the 400 stored: 9999-12-31T23:59:59Z at -00:01.
      await client.query(`update jobs set deadline = '9999-12-31T23:59:59.999-00:01' where id = $1`, [
        job.body.id,
      ]);
      expect((await api.get(`/v1/jobs/${job.body.id}`, worker.accessToken)).status).toBe(500);
      const handle = await createDb(
        { kind: 'postgres', url: testNode.db.url, poolMax: 1 },
        testNode.logs.log,
      );
      try {
        await fourDigitYearDeadlines.up(handle.db as Kysely<unknown>);
      } finally {
        await handle.close();
      }
    } finally {
      await client.end();
    }
    const read = await api.get<Json>(`/v1/jobs/${job.body.id}`, worker.accessToken);
    expect(read.status).toBe(200);
    expect(read.body.deadline).toBe('9999-12-31T23:59:59.999Z');
    expect((await api.get(`/v1/jobs?hirerId=${hirer.id}`, worker.accessToken)).status).toBe(200);
  });

  it('jobs: a repeated POST with the same Idempotency-Key posts one job; another body with it is 422', async () => {
    const key = randomUUID();
    const title = `Idempotent post ${key.slice(0, 8)}`;
    const post = (body: Json = {}) =>
      api.call<Json>('POST', '/v1/jobs', {
        token: hirer.accessToken,
        headers: { 'idempotency-key': key },
        body: {
          title,
          description: 'Posted once, whatever the retries.',
          categoryId,
          skills: ['Kotlin'],
          budget: { kind: 'fixed', amount: 12_000, currency },
          remote: true,
          ...body,
        },
      });
    const first = await post();
    expect(first.status).toBe(201);
    const retry = await post();
    expect(retry.status).toBe(201);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(retry.body).toEqual(first.body);
    const mine = await api.get<{ data: { id: string; title: string }[] }>(
      `/v1/jobs?hirerId=${hirer.id}&limit=100`,
      hirer.accessToken,
    );
    expect(mine.status).toBe(200);
    expect(mine.body.data.filter((job) => job.title === title)).toHaveLength(1);
    // The same key for another job is refused, not silently answered with the first one.
    expect((await post({ title: `${title} (changed)` })).status).toBe(422);
    // An empty key is refused; no key at all posts as before.
    const empty = await api.call('POST', '/v1/jobs', {
      token: hirer.accessToken,
      headers: { 'idempotency-key': '' },
      body: { title, description: 'x', categoryId, budget: { kind: 'fixed', amount: 100, currency } },
    });
    expect(empty.status).toBe(400);
    // A worker's key does not make a worker a hirer (the effect runs, refused: nothing stored).
    const refused = await api.call('POST', '/v1/jobs', {
      token: worker.accessToken,
      headers: { 'idempotency-key': randomUUID() },
      body: { title, description: 'x', categoryId, budget: { kind: 'fixed', amount: 100, currency } },
    });
    expect(refused.status).toBe(403);
  });

  it('bids: Idempotency-Key required, a retry replays the first answer, a second live bid is 409', async () => {
    const job = (await postJob(hirer.accessToken)).body as { id: string };
    const missing = await api.call('POST', `/v1/jobs/${job.id}/bids`, {
      token: worker.accessToken,
      body: { amount: 1, deliveryDays: 1 },
    });
    expect(missing.status).toBe(400);

    const key = randomUUID();
    const first = await bid(worker.accessToken, job.id, key);
    expect(first.status).toBe(201);
    expect(first.body).toMatchObject({ status: 'pending', amount: 25_000, workerId: worker.id });
    const retry = await bid(worker.accessToken, job.id, key);
    expect(retry.status).toBe(201);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(retry.body).toEqual(first.body);

    const second = await bid(worker.accessToken, job.id, randomUUID());
    expect(second.status).toBe(409);
    expect(second.body).toMatchObject({ code: 'CONFLICT', reason: 'LIVE_BID_EXISTS' });
    expect((await bid(hirer.accessToken, job.id, randomUUID())).status).toBe(403);
    expect((await bid(worker.accessToken, randomUUID(), randomUUID())).status).toBe(404);
  });

  it('the hirer sees the bids on the job, others only the count; foreign bids are 404', async () => {
    const job = (await postJob(hirer.accessToken)).body as { id: string };
    const placed = (await bid(worker.accessToken, job.id, randomUUID())).body as { id: string };

    const asHirer = await api.get<Json>(`/v1/jobs/${job.id}`, hirer.accessToken);
    expect(asHirer.status).toBe(200);
    expect(asHirer.body).toMatchObject({ bidCount: 1, bids: [{ id: placed.id }] });
    const asStranger = await api.get<Json>(`/v1/jobs/${job.id}`, stranger.accessToken);
    expect(asStranger.body.bidCount).toBe(1);
    expect(asStranger.body).not.toHaveProperty('bids');

    expect((await api.get(`/v1/bids/${placed.id}`, stranger.accessToken)).status).toBe(404);
    expect((await api.get(`/v1/bids/${placed.id}`, hirer.accessToken)).status).toBe(200);
    const strangerList = await api.get<{ data: unknown[] }>(`/v1/jobs/${job.id}/bids`, stranger.accessToken);
    expect(strangerList.body.data).toEqual([]);
    const hirerList = await api.get<{ data: { id: string }[] }>(`/v1/jobs/${job.id}/bids`, hirer.accessToken);
    expect(hirerList.body.data.map((b) => b.id)).toEqual([placed.id]);
    const mine = await api.get<{ data: { id: string }[] }>('/v1/me/bids', worker.accessToken);
    expect(mine.body.data.map((b) => b.id)).toContain(placed.id);

    const patch = await api.call<Json>('PATCH', `/v1/bids/${placed.id}`, {
      token: worker.accessToken,
      body: { amount: 24_000 },
    });
    expect(patch.status).toBe(200);
    expect(patch.body).toMatchObject({ amount: 24_000, coverLetter: 'Done this before.' });
    expect(
      (await api.call('PATCH', `/v1/bids/${placed.id}`, { token: hirer.accessToken, body: { amount: 1 } }))
        .status,
    ).toBe(403);
    expect((await api.post(`/v1/bids/${placed.id}/withdraw`, undefined, worker.accessToken)).status).toBe(
      200,
    );
    expect((await api.post(`/v1/bids/${placed.id}/withdraw`, undefined, worker.accessToken)).status).toBe(
      409,
    );
  });

  it('PATCH with If-Match, close, and 409 on a closed job', async () => {
    const job = (await postJob(hirer.accessToken)).body as { id: string };
    const ok = await api.call<Json>('PATCH', `/v1/jobs/${job.id}`, {
      token: hirer.accessToken,
      headers: { 'if-match': '"0"' },
      body: { title: 'Fix a flaky Gradle build', budget: { amount: 35_000 } },
    });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({
      title: 'Fix a flaky Gradle build',
      budget: { amount: 35_000 },
      version: 1,
    });
    const stale = await api.call('PATCH', `/v1/jobs/${job.id}`, {
      token: hirer.accessToken,
      headers: { 'if-match': '"0"' },
      body: { title: 'x' },
    });
    expect(stale.status).toBe(409);
    expect(
      (await api.call('PATCH', `/v1/jobs/${job.id}`, { token: worker.accessToken, body: { title: 'x' } }))
        .status,
    ).toBe(403);
    expect((await api.post(`/v1/jobs/${job.id}/close`, undefined, worker.accessToken)).status).toBe(403);
    const closed = await api.post<Json>(`/v1/jobs/${job.id}/close`, undefined, hirer.accessToken);
    expect(closed.status).toBe(200);
    expect(closed.body.status).toBe('closed');
    const late = await bid(stranger.accessToken, job.id, randomUUID());
    expect(late.status).toBe(409);
    expect(late.body).toMatchObject({ reason: 'JOB_NOT_OPEN', state: 'closed' });
    expect((await api.post(`/v1/jobs/${job.id}/close`, undefined, hirer.accessToken)).status).toBe(409);
  });

  it('search finds stored (NFC) text when the query spells it decomposed, in q and in location', async () => {
    const tag = randomUUID().slice(0, 8);
    // Posted composed ("é" U+00E9; the edge normalises bodies to NFC anyway).
    const created = await postJob(hirer.accessToken, {
      title: `Café menu board ${tag}`,
      location: `Montréal ${tag}`,
    });
    expect(created.status).toBe(201);
    const found = async (query: string) =>
      (await api.get<{ data: Json[] }>(`/v1/jobs?${query}`, worker.accessToken)).body.data.map((j) => j.id);
    const nfd = (text: string) => encodeURIComponent(text.normalize('NFD'));
    expect(`café ${tag}`.normalize('NFD')).not.toBe(`café ${tag}`);
    expect(await found(`q=${nfd(`café ${tag}`)}`)).toEqual([created.body.id]);
    expect(await found(`location=${nfd(`montréal ${tag}`)}`)).toEqual([created.body.id]);
    expect(await found(`q=${nfd(`café ${tag}`)}&location=${nfd('Montréal')}&sort=relevance`)).toEqual([
      created.body.id,
    ]);
  });

  it('search parses its query: text, comma lists, booleans, budget range; bad values are 400', async () => {
    const marker = `quokka${randomUUID().slice(0, 6)}`;
    for (let i = 0; i < 5; i++) {
      const created = await postJob(hirer.accessToken, {
        title: `${marker} task ${i}`,
        skills: i % 2 === 0 ? ['rust', 'wasm'] : ['rust'],
        remote: i % 2 === 0,
        budget: { kind: 'hourly', amount: 1_000 * (i + 1), currency },
      });
      expect(created.status).toBe(201);
    }
    const search = (query: string) =>
      api.get<{ data: Json[]; nextCursor: string | null }>(`/v1/jobs?${query}`, worker.accessToken);
    expect((await search(`q=${marker}`)).body.data).toHaveLength(5);
    expect((await search(`q=${marker}&skills=Rust,wasm`)).body.data).toHaveLength(3);
    expect((await search(`q=${marker}&remote=false`)).body.data).toHaveLength(2);
    expect(
      (await search(`q=${marker}&budgetMin=2000&budgetMax=4000&budgetKind=hourly`)).body.data,
    ).toHaveLength(3);
    const first = await search(`q=${marker}&sort=newest&limit=2`);
    expect(first.body.data.map((j) => j.title)).toEqual([`${marker} task 4`, `${marker} task 3`]);
    const next = await search(
      `q=${marker}&sort=newest&limit=2&cursor=${encodeURIComponent(first.body.nextCursor ?? '')}`,
    );
    expect(next.body.data.map((j) => j.title)).toEqual([`${marker} task 2`, `${marker} task 1`]);
    // A cursor pages only the list that made it: another list says so instead of skipping rows.
    const jobsCursor = encodeURIComponent(first.body.nextCursor ?? '');
    for (const path of [`/v1/me/bids?cursor=${jobsCursor}`, `/v1/users?cursor=${jobsCursor}`]) {
      const mixed = await api.get<Json>(path, worker.accessToken);
      expect(mixed.status, path).toBe(400);
      expect(JSON.stringify(mixed.body), path).toContain('cursor of another list');
    }
    // The sort changed between pages: each order's cursor is another list's to the other.
    const byRelevance = await search(`q=${marker}&sort=relevance&limit=2`);
    expect(byRelevance.body.nextCursor).toContain('~');
    for (const query of [
      `q=${marker}&sort=relevance&cursor=${jobsCursor}`,
      `q=${marker}&sort=newest&cursor=${encodeURIComponent(byRelevance.body.nextCursor ?? '')}`,
    ]) {
      const mixed = await search(query);
      expect(mixed.status, query).toBe(400);
      expect(JSON.stringify(mixed.body), query).toContain('cursor of another list');
    }
    // A relevance cursor still continues its own order.
    const secondByRelevance = await search(
      `q=${marker}&sort=relevance&limit=2&cursor=${encodeURIComponent(byRelevance.body.nextCursor ?? '')}`,
    );
    expect(secondByRelevance.status).toBe(200);
    expect(secondByRelevance.body.data).toHaveLength(2);
    for (const bad of [
      'remote=yes',
      'budgetMin=-1',
      'status=open,sleeping',
      'sort=cheapest',
      'cursor=zzz',
      'limit=0',
    ]) {
      expect((await search(bad)).status, bad).toBe(400);
    }
  });

  it('every route is in the OpenAPI document with an operationId', async () => {
    const doc = await api.get<{ paths: Record<string, Record<string, { operationId?: string }>> }>(
      '/openapi.json',
    );
    const ops = Object.values(doc.body.paths).flatMap((methods) =>
      Object.values(methods).map((op) => op.operationId),
    );
    for (const id of [
      'listCategories',
      'searchJobs',
      'createJob',
      'getJob',
      'updateJob',
      'closeJob',
      'placeBid',
      'listJobBids',
      'listMyBids',
      'getBid',
      'updateBid',
      'withdrawBid',
    ]) {
      expect(ops).toContain(id);
    }
  });
});
