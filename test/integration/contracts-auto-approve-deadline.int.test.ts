/**
 * The auto-approve deadline decides by the clock, not by when its delayed task runs (over real HTTP,
 * one node running every role). A delivery's `autoApproveAt` has passed while its task still waits
 * in the queue (a backlog, a restarting worker): the hirer's request-changes and dispute are 409
 * INVALID_TRANSITION (guard `beforeAutoApprove`), a retry with the same Idempotency-Key too (a
 * refusal stores nothing), GET /v1/contracts/:id offers only `approve`; then the real task runs
 * (promoted in the queue) and completes the contract, the escrow is released to the worker once.
 *
 * Time: the node's clock is the real one; the deadline is moved into the past in the database
 * (CONTRACT_AUTO_APPROVE_S is left at its default of 14 days, so the task cannot run by itself).
 */
import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ContractId } from '../../protocol/src/ids.js';
import { createDb, type DbHandle } from '../../src/db/create-db.js';
import { SandboxCard } from '../../src/domain/payments/sandbox-provider.js';
import { bullPrefix, taskId, tasks } from '../../src/platform/queues/tasks.js';
import {
  captureLogs,
  sharedRedisUrl,
  startTestNode,
  type TestNode,
  uniqueRedisPrefix,
} from '../support/context.js';
import { httpClient, type Registered, registerUser } from '../support/http.js';
import { untilDefined } from '../support/poll.js';

type Json = Record<string, unknown>;
const ADMIN = { email: 'deadline-admin@example.test', password: 'Umber-Heron-58&' };

describe('the auto-approve deadline, past but its task not yet run', () => {
  let testNode: TestNode;
  let api: ReturnType<typeof httpClient>;
  let handle: DbHandle;
  let redis: Redis;
  let queue: Queue;
  let adminToken: string;
  let categoryId: string;
  const prefix = uniqueRedisPrefix();

  beforeAll(async () => {
    testNode = await startTestNode({
      ADMIN_EMAIL: ADMIN.email,
      ADMIN_PASSWORD: ADMIN.password,
      REDIS_PREFIX: prefix,
      OUTBOX_POLL_MS: '20',
      PLATFORM_FEE_BPS: '1000',
      LEDGER_AUDIT_INTERVAL_S: '0',
    });
    api = httpClient(testNode.node.baseUrl);
    handle = await createDb({ kind: 'postgres', url: testNode.db.url, poolMax: 2 }, captureLogs().log);
    redis = new Redis(sharedRedisUrl(), { maxRetriesPerRequest: null });
    queue = new Queue(tasks['contracts.auto-approve'].queue, {
      connection: redis,
      prefix: bullPrefix(prefix),
    });
    const login = await api.post<{ accessToken: string }>('/v1/auth/login', {
      login: ADMIN.email,
      password: ADMIN.password,
    });
    expect(login.status).toBe(200);
    adminToken = login.body.accessToken;
    const list = await api.get<{ data: { id: string; slug: string }[] }>('/v1/categories', adminToken);
    categoryId = list.body.data.find((c) => c.slug === 'design')?.id as string;
  }, 60_000);

  afterAll(async () => {
    const audit = await api?.get<{ findings: unknown[] }>('/v1/admin/ledger/audit', adminToken);
    await queue?.close();
    redis?.disconnect();
    await handle?.close();
    await testNode?.stop();
    expect(audit?.body.findings).toEqual([]);
  });

  const post = (path: string, token: string, body?: Json, headers: Record<string, string> = {}) =>
    api.call<Json>('POST', path, {
      token,
      headers: { 'idempotency-key': randomUUID(), ...headers },
      ...(body === undefined ? {} : { body }),
    });
  const wallet = async (user: Registered) =>
    (await api.get<{ available: number }>('/v1/wallet', user.accessToken)).body.available;

  it('refuses request-changes and dispute (409, also on a retry), offers only approve; the task then pays the worker once', async () => {
    const hirer = await registerUser(api, { roles: ['hirer'] });
    const worker = await registerUser(api, { roles: ['worker'] });
    expect(
      (await post('/v1/wallet/top-ups', hirer.accessToken, { amount: 50_000, card: SandboxCard.SUCCEEDS }))
        .status,
    ).toBe(202);
    await untilDefined(async () => ((await wallet(hirer)) >= 50_000 ? true : undefined), 'the top-up');
    const job = await api.post<Json>(
      '/v1/jobs',
      {
        title: 'Label for a jam jar',
        description: 'One colour.',
        categoryId,
        skills: ['illustration'],
        budget: { kind: 'fixed', amount: 40_000, currency: 'USD' },
        remote: true,
      },
      hirer.accessToken,
    );
    expect(job.status).toBe(201);
    const bid = await post(`/v1/jobs/${job.body.id}/bids`, worker.accessToken, {
      amount: 40_000,
      deliveryDays: 3,
      coverLetter: 'Sure.',
    });
    expect(bid.status).toBe(201);
    const accepted = await post(`/v1/bids/${bid.body.id}/accept`, hirer.accessToken, undefined, {
      'if-match': `"${bid.body.version}"`,
    });
    expect(accepted.status).toBe(201);
    const contractId = accepted.body.id as ContractId;
    const delivered = await post(`/v1/contracts/${contractId}/deliver`, worker.accessToken);
    expect(delivered.status).toBe(200);
    const version = delivered.body.version as number;
    const timer = taskId('contract', contractId, 'auto-approve', String(version));
    // The relay scheduled the timer for the deadline (14 days away).
    await untilDefined(
      async () => ((await queue.getJobState(timer)) === 'delayed' ? true : undefined),
      'the auto-approve task',
    );
    const detailOf = async (user: Registered) =>
      (await api.get<Json>(`/v1/contracts/${contractId}`, user.accessToken)).body;
    expect((await detailOf(hirer)).available).toEqual(['request_changes', 'approve', 'dispute']);

    // The deadline passes; the task is still waiting in the queue.
    const deadline = new Date(Date.now() - 1_000);
    await handle.db
      .updateTable('contracts')
      .set({ auto_approve_at: deadline })
      .where('id', '=', contractId)
      .execute();
    const hirerView = await detailOf(hirer);
    expect(hirerView).toMatchObject({ state: 'delivered', version, autoApproveAt: deadline.toISOString() });
    expect(hirerView.available).toEqual(['approve']);
    expect((await detailOf(worker)).available).toEqual([]);

    const key = randomUUID();
    for (const attempt of [1, 2]) {
      // The same key twice: a refusal stores nothing, so the retry is refused again (not replayed).
      const changes = await post(
        `/v1/contracts/${contractId}/request-changes`,
        hirer.accessToken,
        { message: 'One more round' },
        { 'idempotency-key': key, 'if-match': `"${version}"` },
      );
      expect(changes.status, `attempt ${attempt}`).toBe(409);
      expect(changes.body).toMatchObject({
        code: 'INVALID_TRANSITION',
        state: 'delivered',
        event: 'request_changes',
        guard: 'beforeAutoApprove',
        autoApproveAt: deadline.toISOString(),
      });
      expect(changes.headers.get('idempotent-replayed')).toBeNull();
    }
    for (const user of [hirer, worker]) {
      const dispute = await post(`/v1/contracts/${contractId}/dispute`, user.accessToken, {
        message: 'Not what we agreed',
      });
      expect(dispute.status).toBe(409);
      expect(dispute.body).toMatchObject({
        code: 'INVALID_TRANSITION',
        event: 'dispute',
        guard: 'beforeAutoApprove',
      });
    }
    // A stale If-Match is still answered as a version conflict.
    const stale = await post(`/v1/contracts/${contractId}/dispute`, hirer.accessToken, undefined, {
      'if-match': `"${version - 1}"`,
    });
    expect(stale.status).toBe(409);
    expect(stale.body).toMatchObject({ code: 'CONFLICT', reason: 'VERSION_MISMATCH' });
    expect(await detailOf(hirer)).toMatchObject({ state: 'delivered', version });

    // The worker catches up: the real task runs and completes the contract; the escrow goes once.
    await (await queue.getJob(timer))?.promote();
    const done = await untilDefined(async () => {
      const detail = await detailOf(hirer);
      return detail.state === 'completed' ? detail : undefined;
    }, 'the auto-approve task');
    expect((done.transitions as Json[]).at(-1)).toMatchObject({ event: 'auto_approve', actor: 'timer' });
    expect(done.available).toEqual([]);
    await untilDefined(async () => ((await wallet(worker)) > 0 ? true : undefined), 'the release');
    const releases = await handle.db
      .selectFrom('ledger_transactions')
      .select(sql<number>`count(*)::int`.as('n'))
      .where('kind', '=', 'escrow_release')
      .where('contract_id', '=', contractId)
      .executeTakeFirstOrThrow();
    expect(releases.n).toBe(1);
    expect(await wallet(worker)).toBe(36_000); // 40 000 − 10 % fee
    expect(await wallet(hirer)).toBe(10_000);
  }, 60_000);
});
