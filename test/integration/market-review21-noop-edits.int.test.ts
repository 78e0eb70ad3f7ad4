/**
 * Marketplace review 21: an edit to the values a job or a bid already has changes nothing.
 *
 * A client that sends its edit form whole (every field, most of them as they were), a retry of a
 * PATCH after a lost answer, a second tab saving the same form: each wrote the row again and bumped
 * its version. For a bid that made the hirer's accept (If-Match: the version they read) a 409
 * VERSION_MISMATCH over terms that had not changed; for a job, every other editor's If-Match. Only
 * `{}` was recognised as "nothing to change". Likewise a job whose deadline has passed could not be
 * edited by such a form at all: the unchanged deadline was refused as "must be in the future".
 */
import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, type DbHandle } from '../../src/db/create-db.js';
import { captureLogs, startTestNode, type TestNode } from '../support/context.js';
import { httpClient, type Registered, registerUser } from '../support/http.js';

type Json = Record<string, unknown>;

describe('marketplace review 21: edits that change nothing', () => {
  let node: TestNode;
  let api: ReturnType<typeof httpClient>;
  let handle: DbHandle;
  let hirer: Registered;
  let worker: Registered;
  let categoryId: string;

  beforeAll(async () => {
    node = await startTestNode();
    api = httpClient(node.node.baseUrl);
    handle = await createDb({ kind: 'postgres', url: node.db.url, poolMax: 2 }, captureLogs().log);
    [hirer, worker] = await Promise.all([
      registerUser(api, { roles: ['hirer'] }),
      registerUser(api, { roles: ['worker'] }),
    ]);
    const list = await api.get<{ data: { id: string }[] }>('/v1/categories', hirer.accessToken);
    categoryId = list.body.data[0]?.id as string;
  }, 60_000);
  afterAll(async () => {
    await handle?.close();
    await node?.stop();
  });

  const jobForm = {
    title: 'Logo for a bakery',
    description: 'Two colours, vector.',
    skills: ['illustration', 'logo design'],
    budget: { kind: 'fixed', amount: 40_000, currency: 'USD' },
    location: 'Lyon',
    remote: true,
    deadline: new Date(Date.now() + 30 * 86_400_000).toISOString(),
  };

  const postJob = async () => {
    const job = await api.post<Json>('/v1/jobs', { ...jobForm, categoryId }, hirer.accessToken);
    expect(job.status).toBe(201);
    return job.body as { id: string; version: number };
  };

  const patchJob = (id: string, body: Json, ifMatch?: string) =>
    api.call<Json>('PATCH', `/v1/jobs/${id}`, {
      token: hirer.accessToken,
      ...(ifMatch === undefined ? {} : { headers: { 'if-match': ifMatch } }),
      body,
    });

  it('a bid edit sent again, or with the values the bid has, keeps the version the hirer accepts at', async () => {
    const job = await postJob();
    const bid = await api.call<Json>('POST', `/v1/jobs/${job.id}/bids`, {
      token: worker.accessToken,
      headers: { 'idempotency-key': randomUUID() },
      body: { amount: 35_000, deliveryDays: 7, coverLetter: 'Shipped three of these.' },
    });
    expect(bid.status).toBe(201);
    const id = bid.body.id as string;
    const patch = (body: Json) =>
      api.call<Json>('PATCH', `/v1/bids/${id}`, { token: worker.accessToken, body });

    const same = await patch({ amount: 35_000, deliveryDays: 7, coverLetter: 'Shipped three of these.' });
    expect(same.status).toBe(200);
    expect(same.body).toMatchObject({ version: 0, amount: 35_000 });

    // A real change bumps it once; the same edit retried (its answer lost) does not again.
    const raised = await patch({ amount: 36_000, deliveryDays: 7, coverLetter: 'Shipped three of these.' });
    expect(raised.body).toMatchObject({ version: 1, amount: 36_000 });
    const retried = await patch({ amount: 36_000, deliveryDays: 7, coverLetter: 'Shipped three of these.' });
    expect(retried.status).toBe(200);
    expect(retried.body).toMatchObject({ version: 1, amount: 36_000 });
    const read = await api.get<Json>(`/v1/bids/${id}`, hirer.accessToken);
    expect(read.body).toMatchObject({ version: 1, amount: 36_000 });
  });

  it('a job edit with the values the job has keeps its version; a real change still bumps it once', async () => {
    const job = await postJob();
    // The whole form as posted (skills in another case, as the hirer typed them): nothing changes.
    const same = await patchJob(
      job.id,
      { ...jobForm, categoryId, skills: ['Illustration', 'logo design'], budget: { amount: 40_000 } },
      `"${job.version}"`,
    );
    expect(same.status).toBe(200);
    expect(same.body).toMatchObject({ version: job.version });

    const renamed = await patchJob(job.id, { ...jobForm, categoryId, title: 'Logo for a pastry shop' });
    expect(renamed.body).toMatchObject({ version: job.version + 1, title: 'Logo for a pastry shop' });
    // Another tab's If-Match, read before the rename: stale, 409 (a real change was made since).
    const stale = await patchJob(job.id, { remote: false }, `"${job.version}"`);
    expect(stale.status).toBe(409);
  });

  it('a job whose deadline passed can still be edited by a form that sends that deadline unchanged', async () => {
    const job = await postJob();
    const passed = new Date(Date.now() - 86_400_000);
    await sql`update jobs set deadline = ${passed} where id = ${job.id}`.execute(handle.db);

    const edited = await patchJob(job.id, {
      ...jobForm,
      categoryId,
      deadline: passed.toISOString(),
      description: 'Two colours, vector, and a favicon.',
    });
    expect(edited.status).toBe(200);
    expect(edited.body).toMatchObject({
      description: 'Two colours, vector, and a favicon.',
      deadline: passed.toISOString(),
    });
    // A new deadline in the past is still refused.
    const earlier = await patchJob(job.id, { deadline: new Date(Date.now() - 2 * 86_400_000).toISOString() });
    expect(earlier.status).toBe(400);
  });
});
