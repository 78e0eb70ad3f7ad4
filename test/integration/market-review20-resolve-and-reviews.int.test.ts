/**
 * Marketplace review 20, over real HTTP: what the parties of a contract learn after it ends.
 *
 * - An admin's resolve of a dispute does not tell the parties which account moderates: the
 *   transition log shows them `actor: "admin"` without an id (admins still see it), and the job
 *   room's system message is not sent under the admin's id. Profiles hide `admin` from roles for
 *   this reason; a dispute between two accounts of one's own pointed a moderator out all the same.
 * - A published review tells the reviewed party which job it is about and how many stars it gave,
 *   in words that fit a hirer as well as a worker (it said "reviewed your work on your job" to both:
 *   the event named neither the job nor the rating).
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, type DbHandle } from '../../src/db/create-db.js';
import { SandboxCard } from '../../src/domain/payments/sandbox-provider.js';
import { captureLogs, startTestNode, type TestNode } from '../support/context.js';
import { httpClient, promoteToAdmin, type Registered, registerUser } from '../support/http.js';
import { acceptBid, placeBid } from '../support/marketplace.js';
import { untilDefined } from '../support/poll.js';

type Json = Record<string, unknown>;

describe('marketplace review 20: resolve and reviews', () => {
  let node: TestNode;
  let api: ReturnType<typeof httpClient>;
  let handle: DbHandle;
  let categoryId: string;

  beforeAll(async () => {
    node = await startTestNode({ OUTBOX_POLL_MS: '20', LEDGER_AUDIT_INTERVAL_S: '0' });
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

  const post = (path: string, token: string, body?: Json) =>
    api.call<Json>('POST', path, {
      token,
      headers: { 'idempotency-key': randomUUID() },
      ...(body === undefined ? {} : { body }),
    });

  /** A hirer, a worker and a contract between them on a job titled `title` (active). */
  async function contract(title: string) {
    const [hirer, worker] = await Promise.all([
      registerUser(api, { roles: ['hirer'] }),
      registerUser(api, { roles: ['worker'] }),
    ]);
    const topUp = await post('/v1/wallet/top-ups', hirer.accessToken, {
      amount: 10_000,
      card: SandboxCard.SUCCEEDS,
    });
    expect(topUp.status).toBe(202);
    await untilDefined(
      async () =>
        (await api.get<{ available: number }>('/v1/wallet', hirer.accessToken)).body.available >= 10_000
          ? true
          : undefined,
      'the top-up',
    );
    const job = await api.post<{ id: string }>(
      '/v1/jobs',
      {
        title,
        description: 'Two colours, vector.',
        categoryId,
        skills: ['illustration'],
        budget: { kind: 'fixed', amount: 8_000, currency: 'USD' },
        remote: true,
      },
      hirer.accessToken,
    );
    expect(job.status).toBe(201);
    const bid = await placeBid(api, worker, job.body.id, { amount: 5_000, deliveryDays: 3 });
    expect(bid.status).toBe(201);
    const started = await acceptBid<{ id: string; roomId: string }>(api, hirer, bid.body);
    expect(started.status).toBe(201);
    return { hirer, worker, contract: started.body };
  }

  it('an admin’s resolve names the admin to admins only: not in the parties’ transition log, not as the room message’s sender', async () => {
    const { hirer, worker, contract: started } = await contract('Logo for a bakery');
    const adminUser = await registerUser(api, { roles: ['worker'] });
    const adminToken = await promoteToAdmin(api, handle.db, adminUser, ['worker']);
    expect((await post(`/v1/contracts/${started.id}/dispute`, worker.accessToken)).status).toBe(200);
    const resolved = await post(`/v1/admin/contracts/${started.id}/resolve`, adminToken, {
      toWorker: 3_000,
      toHirer: 2_000,
      message: 'Split as agreed in the room.',
    });
    expect(resolved.status).toBe(200);

    type Detail = { transitions: { event: string; actor: string; actorId: string | null }[] };
    for (const party of [hirer, worker]) {
      const detail = await api.get<Detail>(`/v1/contracts/${started.id}`, party.accessToken);
      expect(detail.status).toBe(200);
      const resolve = detail.body.transitions.find((t) => t.event === 'resolve');
      expect(resolve).toMatchObject({ actor: 'admin', actorId: null });
      // The parties' own transitions keep their ids.
      expect(detail.body.transitions.find((t) => t.event === 'dispute')?.actorId).toBe(worker.id);
    }
    const asAdmin = await api.get<Detail>(`/v1/contracts/${started.id}`, adminToken);
    expect(asAdmin.body.transitions.find((t) => t.event === 'resolve')?.actorId).toBe(adminUser.id);

    const history = await api.get<{ data: { senderId: string; meta: Json | null }[] }>(
      `/v1/rooms/${started.roomId}/messages`,
      hirer.accessToken,
    );
    expect(history.status).toBe(200);
    const system = history.body.data.filter((m) => m.meta?.system === 'contract.resolved');
    expect(system).toHaveLength(1);
    expect(history.body.data.map((m) => m.senderId)).not.toContain(adminUser.id);
  });

  it('tells the reviewed hirer and worker which job and how many stars, in words that fit each', async () => {
    const { hirer, worker, contract: started } = await contract('Menu board for a café');
    expect((await post(`/v1/contracts/${started.id}/deliver`, worker.accessToken)).status).toBe(200);
    expect((await post(`/v1/contracts/${started.id}/approve`, hirer.accessToken)).status).toBe(200);
    expect(
      (await post(`/v1/contracts/${started.id}/review`, hirer.accessToken, { rating: 5, text: 'Great' }))
        .status,
    ).toBe(201);
    expect(
      (await post(`/v1/contracts/${started.id}/review`, worker.accessToken, { rating: 4, text: 'Clear' }))
        .status,
    ).toBe(201);

    type Page = { data: { type: string; body: string; data: Json }[] };
    const reviewNotice = (user: Registered) =>
      untilDefined(async () => {
        const page = await api.get<Page>('/v1/notifications', user.accessToken);
        return page.body.data.find((n) => n.type === 'review.published');
      }, 'the review notification');
    const [toWorker, toHirer] = await Promise.all([reviewNotice(worker), reviewNotice(hirer)]);
    expect(toWorker.body).toBe(`${hirer.username} reviewed you (5/5) on "Menu board for a café".`);
    expect(toHirer.body).toBe(`${worker.username} reviewed you (4/5) on "Menu board for a café".`);
    expect(toHirer.data).toMatchObject({ contractId: started.id, rating: 4 });
  });
});
