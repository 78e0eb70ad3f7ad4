/**
 * Locked hirers and the live job board (review 20). Locking an account closes its open jobs, but
 * a post authenticated before the lock could commit after the lock's closing pass and stay open;
 * its `job.posted` then went out to every job board, although the job search hides every job of a
 * locked hirer (the typical case: an admin locking a spammer mid-flood). Now:
 * - the post reads its hirer's row FOR SHARE (jobs.ts createJobIn), so it is refused once the lock
 *   committed (or the lock waits for it and the closing pass closes its job), and a bid likewise;
 * - the push itself leaves out jobs of locked hirers (jobs.repo findOpenJobs), for a job left open
 *   anyway (the closing pass failed: it runs after the lock, outside its transaction).
 * The post that raced the lock is made as the REST route makes it (createJobIn in its own
 * transaction, acting as the hirer), right after the admin's lock answered; the job left open is
 * written with the repository functions the post uses, skipping its check.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CategoryId, JobId, UserId } from '../../protocol/src/ids.js';
import { createDb, type DbHandle } from '../../src/db/create-db.js';
import { insertJob } from '../../src/db/repositories/jobs.repo.js';
import { insertOutboxEvent } from '../../src/db/repositories/outbox.repo.js';
import { placeBidIn } from '../../src/domain/marketplace/bids.js';
import { MarketplaceEvent } from '../../src/domain/marketplace/events.js';
import { createJobIn } from '../../src/domain/marketplace/jobs.js';
import { systemClock } from '../../src/platform/clock.js';
import { captureLogs, startTestNode, type TestNode } from '../support/context.js';
import { httpClient, promoteToAdmin, registerUser } from '../support/http.js';
import { openSocket, type TestSocket, type WireFrame } from '../support/ws-client.js';

describe('rooms review 20: the job board and locked hirers', () => {
  let testNode: TestNode;
  let handle: DbHandle;
  const sockets: TestSocket[] = [];

  beforeAll(async () => {
    testNode = await startTestNode();
    handle = await createDb({ kind: 'postgres', url: testNode.db.url, poolMax: 2 }, captureLogs().log);
  }, 60_000);
  afterAll(async () => {
    for (const socket of sockets) socket.close();
    await handle?.close();
    await testNode?.stop();
  });

  it('does not push job.posted for a job whose hirer was locked before the push went out', async () => {
    const { node } = testNode;
    const api = httpClient(node.baseUrl);
    const spammer = await registerUser(api, { roles: ['hirer'] });
    const honest = await registerUser(api, { roles: ['hirer'] });
    const watcherUser = await registerUser(api, { roles: ['worker'] });
    const moderator = await registerUser(api, { roles: ['worker'] });
    const adminToken = await promoteToAdmin(api, handle.db, moderator, ['worker']);
    const categories = await api.get<{ data: { id: string }[] }>('/v1/categories', honest.accessToken);
    const categoryId = categories.body.data[0]?.id as CategoryId;

    const watcher = await openSocket(
      node.uwsUrl ?? `${node.baseUrl.replace(/^http/, 'ws')}/ws`,
      watcherUser.accessToken,
    );
    sockets.push(watcher);
    await watcher.next((frame) => frame.t === 'hello');
    expect(await watcher.request('jobs.watch', {})).toMatchObject({ t: 'ok' });

    const job = {
      categoryId,
      title: 'Cheap followers, DM me',
      description: 'Spam.',
      skills: [],
      budget: { kind: 'fixed' as const, amount: 1_000n, currency: 'USD' },
      remote: true,
    };
    const locked = await api.post(`/v1/admin/users/${spammer.id}/lock`, undefined, adminToken);
    expect(locked.status).toBe(204);
    // The spammer's post that was authenticated before the lock commits now: refused.
    const post = (trx: Parameters<typeof createJobIn>[0]) =>
      createJobIn(
        trx,
        { clock: systemClock, settings: { currency: 'USD' } },
        { userId: spammer.id as UserId, roles: ['hirer'] },
        job,
      );
    await expect(handle.db.transaction().execute(post)).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
    // A job of theirs left open anyway (the closing pass after the lock failed), with its event.
    const raced = await handle.db.transaction().execute(async (trx) => {
      const row = await insertJob(trx, {
        hirerId: spammer.id as UserId,
        categoryId,
        title: job.title,
        description: job.description,
        skills: [],
        budgetKind: 'fixed',
        budgetAmount: job.budget.amount,
        currency: 'USD',
        location: null,
        remote: true,
        deadline: null,
        now: new Date(),
      });
      await insertOutboxEvent(trx, MarketplaceEvent.jobPosted, {
        jobId: row.id,
        hirerId: row.hirer_id,
        categoryId: row.category_id,
        skills: row.skills,
        notify: [],
      });
      return { id: row.id };
    });
    const hidden = await api.get<{ data: { id: JobId }[] }>('/v1/jobs', honest.accessToken);
    expect(hidden.body.data.some((j) => j.id === raced.id)).toBe(false);

    // A later post by someone else is pushed: the relay has announced the raced one by then.
    const later = await api.post<{ id: string }>(
      '/v1/jobs',
      { ...job, title: 'Port a build to Gradle', budget: { kind: 'fixed', amount: 40_000, currency: 'USD' } },
      honest.accessToken,
    );
    expect(later.status).toBe(201);
    const isPosted = (id: string) => (frame: WireFrame) =>
      frame.t === 'job.posted' && (frame.d as { id: string }).id === id;
    await watcher.next(isPosted(later.body.id));
    expect(watcher.frames.some(isPosted(raced.id))).toBe(false);
  }, 30_000);

  it("refuses a bid made after the bidder's lock, which would sit in the hirer's list", async () => {
    const { node } = testNode;
    const api = httpClient(node.baseUrl);
    const hirer = await registerUser(api, { roles: ['hirer'] });
    const worker = await registerUser(api, { roles: ['worker'] });
    const moderator = await registerUser(api, { roles: ['worker'] });
    const adminToken = await promoteToAdmin(api, handle.db, moderator, ['worker']);
    const categories = await api.get<{ data: { id: string }[] }>('/v1/categories', hirer.accessToken);
    const posted = await api.post<{ id: JobId }>(
      '/v1/jobs',
      {
        categoryId: categories.body.data[0]?.id,
        title: 'Fix a flaky build',
        description: 'CI fails one run in ten.',
        skills: [],
        budget: { kind: 'fixed', amount: 20_000, currency: 'USD' },
        remote: true,
      },
      hirer.accessToken,
    );
    expect(posted.status).toBe(201);
    expect((await api.post(`/v1/admin/users/${worker.id}/lock`, undefined, adminToken)).status).toBe(204);
    // The worker's bid authenticated before the lock commits now: refused, nothing pending.
    await expect(
      handle.db
        .transaction()
        .execute((trx) =>
          placeBidIn(
            trx,
            { clock: systemClock },
            { userId: worker.id as UserId, roles: ['worker'] },
            posted.body.id,
            { amount: 15_000n, deliveryDays: 3, coverLetter: '' },
          ),
        ),
    ).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
    const bids = await api.get<{ data: unknown[] }>(`/v1/jobs/${posted.body.id}/bids`, hirer.accessToken);
    expect(bids.body.data).toEqual([]);
  }, 30_000);
});
