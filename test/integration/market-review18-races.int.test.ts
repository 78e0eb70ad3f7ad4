/**
 * Marketplace review 18: races and retries over real HTTP. Two accepts of one job, an accept racing
 * the worker's withdraw or the hirer's close, two parties firing transitions at once, a transition
 * racing the auto-approve timer, retried requests after a lost answer, and two reviews at once:
 * each ends in exactly one outcome, one contract per job, and money moved once.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ContractId } from '../../protocol/src/ids.js';
import { createDb, type DbHandle } from '../../src/db/create-db.js';
import { autoApprove } from '../../src/domain/marketplace/contracts.js';
import { SandboxCard } from '../../src/domain/payments/sandbox-provider.js';
import { systemClock } from '../../src/platform/clock.js';
import { captureLogs, startTestNode, type TestNode } from '../support/context.js';
import { httpClient, promoteToAdmin, type Registered, registerUser } from '../support/http.js';
import { acceptBid, placeBid } from '../support/marketplace.js';
import { untilDefined } from '../support/poll.js';

type Json = Record<string, unknown>;
const ATTEMPTS = 3;

describe('marketplace review 18: races and retries', () => {
  let node: TestNode;
  let api: ReturnType<typeof httpClient>;
  let handle: DbHandle;
  let categoryId: string;

  beforeAll(async () => {
    node = await startTestNode({
      OUTBOX_POLL_MS: '20',
      CONTRACT_AUTO_APPROVE_S: '1',
      REVIEW_WINDOW_S: '600',
      LEDGER_AUDIT_INTERVAL_S: '0',
    });
    api = httpClient(node.node.baseUrl);
    handle = await createDb({ kind: 'postgres', url: node.db.url, poolMax: 4 }, captureLogs().log);
    const someone = await registerUser(api, { roles: ['hirer'] });
    const list = await api.get<{ data: { id: string; slug: string }[] }>(
      '/v1/categories',
      someone.accessToken,
    );
    categoryId = list.body.data.find((c) => c.slug === 'design')?.id as string;
  }, 60_000);
  afterAll(async () => {
    await handle?.close();
    await node?.stop();
  });

  const post = (path: string, token: string, options: { body?: Json; key?: string; ifMatch?: string } = {}) =>
    api.call<Json>('POST', path, {
      token,
      headers: {
        'idempotency-key': options.key ?? randomUUID(),
        ...(options.ifMatch === undefined ? {} : { 'if-match': options.ifMatch }),
      },
      ...(options.body === undefined ? {} : { body: options.body }),
    });
  const available = async (user: Registered) =>
    (await api.get<{ available: number }>('/v1/wallet', user.accessToken)).body.available;

  async function topUp(user: Registered, amount: number) {
    const started = await post('/v1/wallet/top-ups', user.accessToken, {
      body: { amount, card: SandboxCard.SUCCEEDS },
    });
    expect(started.status).toBe(202);
    await untilDefined(async () => ((await available(user)) >= amount ? true : undefined), 'the top-up');
  }

  async function jobOf(hirer: Registered, amount = 10_000) {
    const job = await api.post<Json>(
      '/v1/jobs',
      {
        title: 'Logo for a bakery',
        description: 'Two colours, vector.',
        categoryId,
        skills: ['illustration'],
        budget: { kind: 'fixed', amount, currency: 'USD' },
        remote: true,
      },
      hirer.accessToken,
    );
    expect(job.status).toBe(201);
    return job.body as { id: string };
  }

  async function bidOn(jobId: string, worker: Registered, amount = 8_000) {
    const bid = await placeBid(api, worker, jobId, {
      amount,
      deliveryDays: 3,
      coverLetter: 'Happy to help.',
    });
    expect(bid.status).toBe(201);
    return bid.body as { id: string; version: number };
  }

  const accept = (hirer: Registered, bid: { id: string; version: number }, key?: string) =>
    acceptBid<Json>(api, hirer, bid, key);

  const holdsOfJob = async (jobId: string) => {
    const rows = await handle.db
      .selectFrom('contracts')
      .innerJoin('ledger_transactions', 'ledger_transactions.contract_id', 'contracts.id')
      .select('ledger_transactions.kind')
      .where('contracts.job_id', '=', jobId as never)
      .execute();
    return rows.map((row) => row.kind);
  };
  const contractsOfJob = async (jobId: string) =>
    handle.db
      .selectFrom('contracts')
      .select('id')
      .where('job_id', '=', jobId as never)
      .execute();
  const moneyOf = async (contractId: string) =>
    (
      await handle.db
        .selectFrom('ledger_transactions')
        .select('kind')
        .where('contract_id', '=', contractId as never)
        .execute()
    )
      .map((row) => row.kind)
      .sort();

  /** A new job of `hirer`'s with a new worker's bid of `amount` on it: what a race starts from. */
  async function jobWithBid(hirer: Registered, amount: number) {
    const worker = await registerUser(api, { roles: ['worker'] });
    const job = await jobOf(hirer);
    const bid = await bidOn(job.id, worker, amount);
    return { worker, job, bid };
  }

  /** A hirer with a funded wallet, a worker, and a contract between them (active, version 1). */
  async function contract(amount = 8_000) {
    const [hirer, worker] = await Promise.all([
      registerUser(api, { roles: ['hirer'] }),
      registerUser(api, { roles: ['worker'] }),
    ]);
    await topUp(hirer, amount * 2);
    const job = await jobOf(hirer);
    const bid = await bidOn(job.id, worker, amount);
    const started = await accept(hirer, bid);
    expect(started.status).toBe(201);
    return { hirer, worker, job, contract: started.body as { id: string; version: number } };
  }

  it('two bids of one job accepted at once: one contract, one escrow hold, the other 409 and rejected', async () => {
    const hirer = await registerUser(api, { roles: ['hirer'] });
    await topUp(hirer, 100_000);
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const before = await available(hirer);
      const job = await jobOf(hirer);
      const workers = await Promise.all([
        registerUser(api, { roles: ['worker'] }),
        registerUser(api, { roles: ['worker'] }),
      ]);
      const bids = await Promise.all(workers.map((worker, i) => bidOn(job.id, worker, 5_000 + i)));
      const answers = await Promise.all(bids.map((bid) => accept(hirer, bid)));
      const statuses = answers.map((a) => a.status).sort();
      expect(statuses).toEqual([201, 409]);
      const won = answers.find((a) => a.status === 201)?.body as { bidId: string; amount: number };
      const lost = answers.find((a) => a.status === 409)?.body as Json;
      expect(lost).toMatchObject({ code: 'INVALID_TRANSITION', reason: 'JOB_NOT_OPEN' });
      expect(await contractsOfJob(job.id)).toHaveLength(1);
      expect(await holdsOfJob(job.id)).toEqual(['escrow_hold']);
      expect(await available(hirer)).toBe(before - won.amount);
      const other = bids.find((bid) => bid.id !== won.bidId) as { id: string };
      const seen = await api.get<Json>(`/v1/bids/${other.id}`, hirer.accessToken);
      expect(seen.body).toMatchObject({ status: 'rejected' });
    }
  });

  it('the same accept resent at once with one Idempotency-Key: one contract, one hold, the twin replays it', async () => {
    const hirer = await registerUser(api, { roles: ['hirer'] });
    await topUp(hirer, 50_000);
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const before = await available(hirer);
      const { job, bid } = await jobWithBid(hirer, 4_000);
      const key = randomUUID();
      const answers = await Promise.all([accept(hirer, bid, key), accept(hirer, bid, key)]);
      for (const answer of answers) expect([201, 409]).toContain(answer.status);
      const ok = answers.filter((a) => a.status === 201);
      expect(ok.length).toBeGreaterThanOrEqual(1);
      expect(new Set(ok.map((a) => a.body.id)).size).toBe(1);
      // A retry after the lost answer (later) replays the first one.
      const retry = await accept(hirer, bid, key);
      expect(retry.status).toBe(201);
      expect(retry.headers.get('idempotent-replayed')).toBe('true');
      expect(retry.body.id).toBe(ok[0]?.body.id);
      expect(await contractsOfJob(job.id)).toHaveLength(1);
      expect(await holdsOfJob(job.id)).toEqual(['escrow_hold']);
      expect(await available(hirer)).toBe(before - 4_000);
      // A retry under a NEW key (the client lost the key too) is a clear 409, not a second contract.
      const fresh = await accept(hirer, bid);
      expect(fresh.status).toBe(409);
      expect(await holdsOfJob(job.id)).toEqual(['escrow_hold']);
    }
  });

  it('accept racing the worker’s withdraw and the hirer’s close: exactly one wins, no hold without a contract', async () => {
    const hirer = await registerUser(api, { roles: ['hirer'] });
    await topUp(hirer, 50_000);
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const before = await available(hirer);
      const { worker, job, bid } = await jobWithBid(hirer, 3_000);
      const [accepted, withdrawn] = await Promise.all([
        accept(hirer, bid),
        api.call<Json>('POST', `/v1/bids/${bid.id}/withdraw`, { token: worker.accessToken }),
      ]);
      expect([accepted.status, withdrawn.status].sort()).toEqual(
        accepted.status === 201 ? [201, 409] : [200, 409],
      );
      const bidNow = (await api.get<Json>(`/v1/bids/${bid.id}`, worker.accessToken)).body;
      const contracts = await contractsOfJob(job.id);
      if (accepted.status === 201) {
        expect(bidNow.status).toBe('accepted');
        expect(contracts).toHaveLength(1);
        expect(await available(hirer)).toBe(before - 3_000);
      } else {
        expect(bidNow.status).toBe('withdrawn');
        expect(contracts).toHaveLength(0);
        expect(await available(hirer)).toBe(before);
      }

      const job2 = await jobOf(hirer);
      const bid2 = await bidOn(job2.id, worker, 3_000);
      const before2 = await available(hirer);
      const [accepted2, closed] = await Promise.all([
        accept(hirer, bid2),
        api.call<Json>('POST', `/v1/jobs/${job2.id}/close`, { token: hirer.accessToken }),
      ]);
      const jobNow = (await api.get<Json>(`/v1/jobs/${job2.id}`, hirer.accessToken)).body;
      if (accepted2.status === 201) {
        expect(closed.status).toBe(409);
        expect(jobNow.status).toBe('in_progress');
        expect(await contractsOfJob(job2.id)).toHaveLength(1);
        expect(await available(hirer)).toBe(before2 - 3_000);
      } else {
        expect(accepted2.status).toBe(409);
        expect(closed.status).toBe(200);
        expect(jobNow.status).toBe('closed');
        expect(await contractsOfJob(job2.id)).toHaveLength(0);
        expect(await available(hirer)).toBe(before2);
      }
    }
  });

  it('accept racing the worker raising the bid: escrow holds only the amount the hirer saw', async () => {
    const hirer = await registerUser(api, { roles: ['hirer'] });
    await topUp(hirer, 60_000);
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const { worker, job, bid } = await jobWithBid(hirer, 3_000);
      const before = await available(hirer);
      const [accepted, raised] = await Promise.all([
        accept(hirer, bid),
        api.call<Json>('PATCH', `/v1/bids/${bid.id}`, { token: worker.accessToken, body: { amount: 9_000 } }),
      ]);
      if (accepted.status === 201) {
        expect(raised.status).toBe(409);
        expect(accepted.body.amount).toBe(3_000);
        expect(await available(hirer)).toBe(before - 3_000);
      } else {
        expect(raised.status).toBe(200);
        expect(accepted.status).toBe(409);
        expect(accepted.body).toMatchObject({ reason: 'VERSION_MISMATCH', version: bid.version + 1 });
        expect(await contractsOfJob(job.id)).toHaveLength(0);
        expect(await available(hirer)).toBe(before);
      }
    }
  });

  it('accept racing a new bid on the job: no bid is left pending on a job in progress', async () => {
    const hirer = await registerUser(api, { roles: ['hirer', 'worker'] });
    await topUp(hirer, 30_000);
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const [first, late] = await Promise.all([
        registerUser(api, { roles: ['worker'] }),
        registerUser(api, { roles: ['worker'] }),
      ]);
      const job = await jobOf(hirer);
      // The hirer may not bid on their own job, whatever roles they hold.
      const own = await post(`/v1/jobs/${job.id}/bids`, hirer.accessToken, {
        body: { amount: 100, deliveryDays: 1, coverLetter: 'me' },
      });
      expect(own.status).toBe(403);
      const bid = await bidOn(job.id, first, 2_000);
      const [accepted, placed] = await Promise.all([
        accept(hirer, bid),
        post(`/v1/jobs/${job.id}/bids`, late.accessToken, {
          body: { amount: 1_000, deliveryDays: 2, coverLetter: 'Me too.' },
        }),
      ]);
      expect(accepted.status).toBe(201);
      expect([201, 409]).toContain(placed.status);
      const bids = await handle.db
        .selectFrom('bids')
        .select('status')
        .where('job_id', '=', job.id as never)
        .execute();
      expect(bids.map((b) => b.status).sort()).toEqual(
        placed.status === 201 ? ['accepted', 'rejected'] : ['accepted'],
      );
    }
  });

  it('one wallet, two jobs accepted at once, enough for one: one contract, the other INSUFFICIENT_FUNDS, never overdrawn', async () => {
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const hirer = await registerUser(api, { roles: ['hirer'] });
      await topUp(hirer, 5_000);
      const workers = await Promise.all([
        registerUser(api, { roles: ['worker'] }),
        registerUser(api, { roles: ['worker'] }),
      ]);
      const jobs = await Promise.all([jobOf(hirer), jobOf(hirer)]);
      const bids = await Promise.all(jobs.map((job, i) => bidOn(job.id, workers[i] as Registered, 4_000)));
      const answers = await Promise.all(bids.map((bid) => accept(hirer, bid)));
      expect(answers.map((a) => a.status).sort()).toEqual([201, 409]);
      expect(answers.find((a) => a.status === 409)?.body).toMatchObject({ code: 'INSUFFICIENT_FUNDS' });
      expect(await available(hirer)).toBe(1_000);
      const lost = jobs[answers.findIndex((a) => a.status === 409)] as { id: string };
      expect(await contractsOfJob(lost.id)).toHaveLength(0);
      expect((await api.get<Json>(`/v1/jobs/${lost.id}`, hirer.accessToken)).body.status).toBe('open');
    }
  });

  it('the hirer cancels while the worker cancels, disputes or delivers: one transition, refunded at most once', async () => {
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const { hirer, worker, contract: c } = await contract(2_000);
      const other = (['cancel', 'dispute', 'deliver'] as const)[attempt % 3];
      const answers = await Promise.all([
        post(`/v1/contracts/${c.id}/cancel`, hirer.accessToken),
        post(`/v1/contracts/${c.id}/${other}`, worker.accessToken),
      ]);
      expect(answers.map((a) => a.status).sort()).toEqual([200, 409]);
      const detail = (await api.get<Json>(`/v1/contracts/${c.id}`, hirer.accessToken)).body;
      const events = (detail.transitions as { event: string }[]).map((t) => t.event);
      // One of the two applied (a delivery may be auto-approved a second later: not counted here).
      expect(events.filter((e) => e === 'cancel' || e === other)).toHaveLength(1);
      if (detail.state === 'cancelled') {
        await untilDefined(
          async () => ((await moneyOf(c.id)).includes('escrow_refund') ? true : undefined),
          'the refund',
        );
        await sleep(200);
        expect(await moneyOf(c.id)).toEqual(['escrow_hold', 'escrow_refund']);
      } else if (other === 'dispute') {
        expect(detail.state).toBe('disputed');
        expect(await moneyOf(c.id)).toEqual(['escrow_hold']);
      } else {
        expect(['delivered', 'completed']).toContain(detail.state);
        expect(await moneyOf(c.id)).not.toContain('escrow_refund');
      }
    }
  });

  it('approve racing a dispute and the auto-approve timer on a delivery: completed once, released once', async () => {
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const { hirer, worker, contract: c } = await contract(2_500);
      const delivered = await post(`/v1/contracts/${c.id}/deliver`, worker.accessToken);
      expect(delivered.status).toBe(200);
      const version = delivered.body.version as number;
      const autoApproveAt = Date.parse(delivered.body.autoApproveAt as string);
      if (attempt === 0) {
        // Before the deadline: the hirer's approve and the worker's dispute race.
        const answers = await Promise.all([
          post(`/v1/contracts/${c.id}/approve`, hirer.accessToken),
          post(`/v1/contracts/${c.id}/dispute`, worker.accessToken),
        ]);
        // Normally one 200 and one 409; on a very slow machine the 1 s timer may beat both (two 409s).
        for (const answer of answers) expect([200, 409]).toContain(answer.status);
        expect(answers.filter((a) => a.status === 200).length).toBeLessThanOrEqual(1);
        const state = (await api.get<Json>(`/v1/contracts/${c.id}`, hirer.accessToken)).body.state;
        if (state === 'disputed') {
          expect(answers[1]?.status).toBe(200);
          expect(await moneyOf(c.id)).toEqual(['escrow_hold']);
          continue;
        }
      } else {
        // Past the deadline: the hirer's approve, their retry and the timer (run here too) race.
        while (Date.now() <= autoApproveAt) await sleep(50);
        const deps = {
          db: handle.db,
          clock: systemClock,
          settings: { currency: 'USD', platformFeeBps: 0, autoApproveMs: 1_000, reviewWindowMs: 600_000 },
        };
        const key = randomUUID();
        const [approved, retried, timer] = await Promise.all([
          post(`/v1/contracts/${c.id}/approve`, hirer.accessToken, { key }),
          post(`/v1/contracts/${c.id}/approve`, hirer.accessToken, { key }),
          autoApprove(deps, c.id as ContractId, version),
        ]);
        expect([200, 409]).toContain(approved.status);
        expect([200, 409]).toContain(retried.status);
        expect(['applied', 'stale']).toContain(timer);
      }
      const detail = (await api.get<Json>(`/v1/contracts/${c.id}`, hirer.accessToken)).body;
      expect(detail.state).toBe('completed');
      const log = detail.transitions as { event: string }[];
      expect(log.filter((t) => t.event === 'approve' || t.event === 'auto_approve')).toHaveLength(1);
      await untilDefined(
        async () => ((await moneyOf(c.id)).includes('escrow_release') ? true : undefined),
        'the release',
      );
      await sleep(200);
      expect(await moneyOf(c.id)).toEqual(['escrow_hold', 'escrow_release']);
    }
  });

  it('two admins resolve one dispute at once with different splits: one split applies, the escrow moves once', async () => {
    const admins = await Promise.all([registerUser(api), registerUser(api)]);
    const tokens = await Promise.all(
      admins.map((admin) => promoteToAdmin(api, handle.db, admin, ['worker'])),
    );
    for (let attempt = 0; attempt < 2; attempt++) {
      const { hirer, worker, contract: c } = await contract(3_000);
      expect((await post(`/v1/contracts/${c.id}/dispute`, worker.accessToken)).status).toBe(200);
      const splits = [
        { toWorker: 3_000, toHirer: 0 },
        { toWorker: 0, toHirer: 3_000 },
      ];
      const answers = await Promise.all(
        tokens.map((token, i) => post(`/v1/admin/contracts/${c.id}/resolve`, token, { body: splits[i] })),
      );
      expect(answers.map((a) => a.status).sort()).toEqual([200, 409]);
      const detail = (await api.get<Json>(`/v1/contracts/${c.id}`, hirer.accessToken)).body;
      expect(detail.state).toBe('resolved');
      expect((detail.transitions as { event: string }[]).filter((t) => t.event === 'resolve')).toHaveLength(
        1,
      );
      await untilDefined(
        async () => ((await moneyOf(c.id)).includes('escrow_split') ? true : undefined),
        'the split',
      );
      await sleep(200);
      expect(await moneyOf(c.id)).toEqual(['escrow_hold', 'escrow_split']);
      // Reviews after a resolve are open; after a cancel they are not.
      expect(
        (await post(`/v1/contracts/${c.id}/review`, hirer.accessToken, { body: { rating: 3, text: '' } }))
          .status,
      ).toBe(201);
    }
    const cancelled = await contract(1_000);
    expect(
      (await post(`/v1/contracts/${cancelled.contract.id}/cancel`, cancelled.worker.accessToken)).status,
    ).toBe(200);
    const refused = await post(`/v1/contracts/${cancelled.contract.id}/review`, cancelled.hirer.accessToken, {
      body: { rating: 1, text: 'x' },
    });
    expect(refused.status).toBe(409);
    expect(refused.body).toMatchObject({ code: 'INVALID_TRANSITION', state: 'cancelled' });
  });

  it('reviews: two at once by one author (with or without one key) → one review; strangers and early reviews refused', async () => {
    const { hirer, worker, contract: c } = await contract(1_500);
    const stranger = await registerUser(api, { roles: ['hirer', 'worker'] });
    const early = await post(`/v1/contracts/${c.id}/review`, hirer.accessToken, {
      body: { rating: 5, text: 'x' },
    });
    expect(early.status).toBe(409);
    expect(early.body).toMatchObject({ code: 'INVALID_TRANSITION', state: 'active' });
    expect((await post(`/v1/contracts/${c.id}/deliver`, worker.accessToken)).status).toBe(200);
    expect((await post(`/v1/contracts/${c.id}/approve`, hirer.accessToken)).status).toBe(200);
    const foreign = await post(`/v1/contracts/${c.id}/review`, stranger.accessToken, {
      body: { rating: 1, text: 'x' },
    });
    expect(foreign.status).toBe(404);
    const key = randomUUID();
    const body = { rating: 4, text: 'Good work.' };
    const same = await Promise.all([
      post(`/v1/contracts/${c.id}/review`, hirer.accessToken, { key, body }),
      post(`/v1/contracts/${c.id}/review`, hirer.accessToken, { key, body }),
    ]);
    for (const answer of same) expect([201, 409]).toContain(answer.status);
    expect(same.some((a) => a.status === 201)).toBe(true);
    const replay = await post(`/v1/contracts/${c.id}/review`, hirer.accessToken, { key, body });
    expect(replay.status).toBe(201);
    const unkeyed = await Promise.all([
      post(`/v1/contracts/${c.id}/review`, worker.accessToken, { body }),
      post(`/v1/contracts/${c.id}/review`, worker.accessToken, { body }),
    ]);
    expect(unkeyed.map((a) => a.status).sort()).toEqual([201, 409]);
    expect(unkeyed.find((a) => a.status === 409)?.body).toMatchObject({ reason: 'REVIEW_EXISTS' });
    const rows = await handle.db
      .selectFrom('reviews')
      .select(['author_id', 'published_at'])
      .where('contract_id', '=', c.id as never)
      .execute();
    expect(rows).toHaveLength(2);
    expect(rows.every((row) => row.published_at !== null)).toBe(true);
    const ratings = await handle.db
      .selectFrom('user_ratings')
      .selectAll()
      .where('user_id', 'in', [hirer.id, worker.id] as never[])
      .execute();
    expect(ratings.map((r) => Number(r.rating_count)).sort()).toEqual([1, 1]);
  });
  it('edits of one job sent at once without If-Match all apply, in turn (none answers 409)', async () => {
    const hirer = await registerUser(api, { roles: ['hirer'] });
    const job = await jobOf(hirer);
    const before = await api.get<{ version: number }>(`/v1/jobs/${job.id}`, hirer.accessToken);
    const titles = Array.from({ length: 6 }, (_, i) => `Logo, take ${i + 1}`);
    const answers = await Promise.all(
      titles.map((title) =>
        api.call<Json>('PATCH', `/v1/jobs/${job.id}`, { token: hirer.accessToken, body: { title } }),
      ),
    );
    expect(answers.map((a) => a.status)).toEqual(titles.map(() => 200));
    const after = await api.get<{ version: number; title: string }>(`/v1/jobs/${job.id}`, hirer.accessToken);
    expect(after.body.version).toBe(before.body.version + titles.length);
    expect(titles).toContain(after.body.title);
  });
});
