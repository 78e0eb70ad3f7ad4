/**
 * The live job board does not push the job of a locked hirer. Locking an account closes its open
 * jobs, but a post whose request was authenticated before the lock and commits after the lock's
 * closing pass stays open (and a relay batch read between the lock and that pass sees the job
 * open too): its `job.posted` went out to every job board, although the job search already hides
 * every job of a locked hirer. The typical case is an admin locking a spammer mid-flood: the
 * spammer's last posts reached every watcher live after the lock.
 *
 * The post that raced the lock is made here as the REST route makes it (createJobIn in its own
 * transaction, acting as the hirer), right after the admin's lock answered.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CategoryId, JobId, UserId } from '../../protocol/src/ids.js';
import { createDb, type DbHandle } from '../../src/db/create-db.js';
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
    // The spammer's post that was authenticated before the lock commits now, after its closing pass.
    const raced = await handle.db
      .transaction()
      .execute((trx) =>
        createJobIn(
          trx,
          { clock: systemClock, settings: { currency: 'USD' } },
          { userId: spammer.id as UserId, roles: ['hirer'] },
          job,
        ),
      );
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
});
