/**
 * Marketplace review 21: a hirer's open jobs are capped (MAX_OPEN_JOBS_PER_HIRER).
 *
 * Bids had a cap (BID_LIMIT), rooms and contacts theirs; jobs had none: one hirer's token (or a
 * script holding it) could post open jobs without end, each listed on the board, searched and
 * pushed to every matching `jobs.watch`, burying everyone else's jobs and growing the table for
 * good. Posting one more than the cap is now 409 CONFLICT `JOB_LIMIT`; closing one (or hiring for
 * it) makes room. Two posts of one hirer at once take turns on the hirer's row, so the cap holds
 * under a burst too. The hirer's earlier jobs are seeded with one SQL insert to keep this cheap.
 */
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, type DbHandle } from '../../src/db/create-db.js';
import { MAX_OPEN_JOBS_PER_HIRER } from '../../src/domain/marketplace/jobs.js';
import { captureLogs, startTestNode, type TestNode } from '../support/context.js';
import { httpClient, type Registered, registerUser } from '../support/http.js';

type Json = Record<string, unknown>;

describe('marketplace review 21: open jobs per hirer', () => {
  let node: TestNode;
  let api: ReturnType<typeof httpClient>;
  let handle: DbHandle;
  let categoryId: string;

  beforeAll(async () => {
    node = await startTestNode();
    api = httpClient(node.node.baseUrl);
    handle = await createDb({ kind: 'postgres', url: node.db.url, poolMax: 2 }, captureLogs().log);
    const someone = await registerUser(api, { roles: ['hirer'] });
    const list = await api.get<{ data: { id: string }[] }>('/v1/categories', someone.accessToken);
    categoryId = list.body.data[0]?.id as string;
  }, 60_000);
  afterAll(async () => {
    await handle?.close();
    await node?.stop();
  });

  /** `count` open jobs of `hirer`, written straight to the table. */
  const seedOpenJobs = (hirer: Registered, count: number) =>
    sql`
      insert into jobs (hirer_id, category_id, title, description, skills, budget_kind, budget_amount,
                        currency, location, remote, status, created_at, updated_at)
      select ${hirer.id}::uuid, ${categoryId}::uuid, 'seeded ' || g, 'seeded', array['seed'],
             'fixed', 1000, 'USD', null, true, 'open', now(), now()
      from generate_series(1, ${count}) as g`.execute(handle.db);

  const post = (hirer: Registered) =>
    api.post<Json>(
      '/v1/jobs',
      {
        title: 'Logo for a bakery',
        description: 'Two colours, vector.',
        categoryId,
        skills: ['illustration'],
        budget: { kind: 'fixed', amount: 8_000, currency: 'USD' },
        remote: true,
      },
      hirer.accessToken,
    );

  it('one more open job than the cap is 409 JOB_LIMIT; closing one makes room', async () => {
    const hirer = await registerUser(api, { roles: ['hirer'] });
    await seedOpenJobs(hirer, MAX_OPEN_JOBS_PER_HIRER - 1);
    const last = await post(hirer);
    expect(last.status).toBe(201);
    const over = await post(hirer);
    expect(over.status).toBe(409);
    expect(over.body).toMatchObject({
      code: 'CONFLICT',
      reason: 'JOB_LIMIT',
      limit: MAX_OPEN_JOBS_PER_HIRER,
    });
    const closed = await api.post<Json>(`/v1/jobs/${last.body.id as string}/close`, {}, hirer.accessToken);
    expect(closed.status).toBe(200);
    expect((await post(hirer)).status).toBe(201);
  });

  it('a burst of posts by one hirer at the cap: exactly the room left is taken', async () => {
    const hirer = await registerUser(api, { roles: ['hirer'] });
    await seedOpenJobs(hirer, MAX_OPEN_JOBS_PER_HIRER - 2);
    const answers = await Promise.all(Array.from({ length: 6 }, () => post(hirer)));
    expect(answers.map((answer) => answer.status).sort()).toEqual([201, 201, 409, 409, 409, 409]);
    const open = await sql<{ n: string }>`
      select count(*) as n from jobs where hirer_id = ${hirer.id}::uuid and status = 'open'`.execute(
      handle.db,
    );
    expect(Number(open.rows[0]?.n)).toBe(MAX_OPEN_JOBS_PER_HIRER);
  });
});
