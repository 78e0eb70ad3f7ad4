/**
 * A task that failed for good (out of attempts during a database outage) is not lost: enqueuing its
 * id again retries it. The digest case end to end on real PostgreSQL, Redis, BullMQ and SMTP: a
 * security notification opens a digest, the digest task runs out of attempts against a dropped
 * database, three later notifications attach to the still-open digest and re-enqueue it, and the
 * one digest mail with all four goes out. Before the fix BullMQ ignored those adds (the failed task
 * kept the id for 30 days): the digest stayed open, overdue, its security mail never sent.
 *
 * Also the producer's rules (a failed task retried once per enqueue, however many enqueue at once;
 * waiting, delayed and completed tasks left alone) and the workers' capped backoff (a worker
 * without the strategy cannot retry a task of its type).
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Queue, UnrecoverableError, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UserId } from '../../protocol/src/ids.js';
import { createDb, type DbHandle } from '../../src/db/create-db.js';
import type { AuthService } from '../../src/domain/auth/service.js';
import type { ContractDeps } from '../../src/domain/marketplace/contracts.js';
import { deliver, type NotificationsDeps } from '../../src/domain/notifications/service.js';
import { createMemoryBus } from '../../src/platform/bus/bus.js';
import { systemClock } from '../../src/platform/clock.js';
import { taskWorkerSettings } from '../../src/platform/queues/backoff.js';
import {
  bullPrefix,
  createTaskQueue,
  type QueueName,
  type TaskQueue,
  taskId,
  tasks,
} from '../../src/platform/queues/tasks.js';
import { startEmailWorker } from '../../src/workers/emails/processor.js';
import { createMailTransport } from '../../src/workers/emails/transport.js';
import { startMarketplaceWorker } from '../../src/workers/marketplace/processor.js';
import { startNotificationsWorker } from '../../src/workers/notifications/processor.js';
import {
  captureLogs,
  createMigratedDatabase,
  sharedRedisUrl,
  type TestDatabase,
  uniqueRedisPrefix,
} from '../support/context.js';
import { insertActor } from '../support/payments-db.js';
import { untilDefined } from '../support/poll.js';
import { startSmtpServer, type TestSmtpServer } from '../support/smtp.js';

const queueOf = (producer: TaskQueue, name: QueueName): Queue => {
  const queue = producer.queues().find((candidate) => candidate.name === name);
  if (queue === undefined) throw new Error(`no queue ${name}`);
  return queue;
};

const stateIs = (queue: Queue, jobId: string, state: string) => async () =>
  (await queue.getJobState(jobId)) === state ? true : undefined;

describe('a task that failed for good is retried when enqueued again', () => {
  let db: TestDatabase;
  let handle: DbHandle;
  /** A pool on a database dropped at start: every query fails, as in an outage. */
  let down: DbHandle;
  let redis: Redis;
  let smtp: TestSmtpServer;
  const logs = captureLogs();
  const closers: (() => Promise<unknown>)[] = [];

  beforeAll(async () => {
    db = await createMigratedDatabase();
    handle = await createDb({ kind: 'postgres', url: db.url, poolMax: 4 }, logs.log);
    const gone = await createMigratedDatabase();
    down = await createDb({ kind: 'postgres', url: gone.url, poolMax: 2 }, logs.log);
    await gone.drop();
    redis = new Redis(sharedRedisUrl(), { maxRetriesPerRequest: null });
    smtp = await startSmtpServer();
  });
  afterAll(async () => {
    for (const close of closers.reverse()) await close().catch(() => undefined);
    redis?.disconnect();
    await down?.close().catch(() => undefined);
    await handle?.close();
    await smtp?.close();
    await db?.drop();
  });

  const producerFor = (prefix: string) => {
    const producer = createTaskQueue(redis, prefix);
    closers.push(() => producer.close());
    return producer;
  };

  it('sends the digest whose task ran out of attempts during an outage once a later notification re-enqueues it', async () => {
    const prefix = uniqueRedisPrefix();
    const producer = producerFor(prefix);
    const notificationsQueue = queueOf(producer, 'notifications');
    /**
     * The first notification's digest task as the producer adds it, but with 3 attempts instead of
     * the 54 (3 to 3.8 hours) an outage would have to outlast: same id, same capped backoff.
     */
    const shortBudget: Pick<TaskQueue, 'enqueue'> = {
      enqueue: async (name, payload, key, options) => {
        await notificationsQueue.add(name, payload, {
          jobId: taskId(key),
          delay: Math.max(0, options?.delayMs ?? 0),
          attempts: 3,
          backoff: tasks[name].backoff,
        });
      },
    };
    const deps = (db: DbHandle['db'], queue: Pick<TaskQueue, 'enqueue'>): NotificationsDeps => ({
      db,
      bus: createMemoryBus(),
      clock: systemClock,
      log: logs.log,
      tasks: queue,
      isOnline: async () => false,
      settings: { digestMs: 300, unreadAfterMs: 1_000, currency: 'USD' },
    });
    const workerDeps = (db: DbHandle['db']) => ({
      notifications: deps(db, producer),
      publicUrl: 'http://localhost',
      connection: redis,
      redisPrefix: prefix,
      lockMs: 5_000,
    });
    const securityNotice = (ip: string) =>
      ({ userId: user.userId, type: 'security.new_login', data: { ip } }) as const;

    const user = await insertActor(handle.db, 'digest');
    const { email } = await handle.db
      .selectFrom('users')
      .select('email')
      .where('id', '=', user.userId)
      .executeTakeFirstOrThrow();
    const digests = () =>
      handle.db
        .selectFrom('notification_digests')
        .selectAll()
        .where('user_id', '=', user.userId as UserId)
        .execute();

    // The outage: the worker that takes the digest task reaches no database.
    const outageWorker = startNotificationsWorker(workerDeps(down.db));
    expect(
      await deliver(deps(handle.db, shortBudget), `probe.${randomUUID()}`, securityNotice('203.0.113.1'), {
        currency: 'USD',
      }),
    ).toBe('stored');
    const [digest] = await digests();
    if (digest === undefined) throw new Error('no digest opened');
    const digestTask = taskId('digest', digest.id);
    await untilDefined(stateIs(notificationsQueue, digestTask, 'failed'), 'the digest task to fail for good');
    await outageWorker.close();
    const failed = await notificationsQueue.getJob(digestTask);
    expect(failed?.attemptsMade).toBe(3);
    // Retried with the capped backoff (the worker's strategy), not "Unknown backoff strategy".
    expect(logs.text()).not.toContain('Unknown backoff strategy');
    expect((await digests()).map((row) => row.status)).toEqual(['open']);

    // The database is back: three more notifications for the same user, then healthy workers (the
    // first re-enqueue retries the digest task at once: a worker running already could send the
    // digest before the other two attach).
    for (const ip of ['203.0.113.2', '203.0.113.3', '203.0.113.4']) {
      // Each attaches to the open (overdue) digest and enqueues its task again under the same id.
      expect(
        await deliver(deps(handle.db, producer), `probe.${randomUUID()}`, securityNotice(ip), {
          currency: 'USD',
        }),
      ).toBe('stored');
    }

    const notificationsWorker = startNotificationsWorker(workerDeps(handle.db));
    closers.push(() => notificationsWorker.close());
    const transport = createMailTransport(smtp.url);
    const emailWorker = startEmailWorker({
      db: handle.db,
      auth: {} as AuthService, // a digest mail is stored before its task: no token is issued
      transport,
      clock: systemClock,
      log: logs.log,
      connection: redis,
      redisPrefix: prefix,
      publicUrl: 'http://localhost',
      mailFrom: 'gigwire <noreply@example.test>',
      lockMs: 5_000,
    });
    closers.push(async () => {
      await emailWorker.close();
      transport.close();
    });
    const mail = await smtp.waitFor((m) => m.to.includes(email), 20_000);
    expect(mail.subject).toBe('4 new notifications on gigwire');
    for (const ip of ['203.0.113.1', '203.0.113.2', '203.0.113.3', '203.0.113.4'])
      expect(mail.body).toContain(ip);
    const after = await digests();
    expect(after.map((row) => row.status)).toEqual(['sent']);
    expect(after[0]?.id).toBe(digest.id);
    await untilDefined(stateIs(notificationsQueue, digestTask, 'completed'), 'the digest task to complete');
    // Retried once with a fresh count, not once per re-enqueue: one run after the retry.
    expect((await notificationsQueue.getJob(digestTask))?.attemptsMade).toBe(1);
    // Time for a duplicate to show up (another enqueue, a second run).
    await sleep(1_000);
    expect(smtp.accepted().filter((m) => m.to.includes(email))).toHaveLength(1);
  }, 60_000);

  it('retries a failed task once per enqueue however many enqueue at once, and leaves other states alone', async () => {
    const prefix = uniqueRedisPrefix();
    const producer = producerFor(prefix);
    const marketplace = queueOf(producer, 'marketplace');
    let outcome: 'fail' | 'succeed' = 'fail';
    const runs = new Map<string, number>();
    const worker = new Worker(
      'marketplace',
      async (job) => {
        runs.set(job.id ?? '', (runs.get(job.id ?? '') ?? 0) + 1);
        // A permanent refusal (as an escrow task refused by the contract's state).
        if (outcome === 'fail') throw new UnrecoverableError('refused');
      },
      { connection: redis, prefix: bullPrefix(prefix), settings: taskWorkerSettings },
    );
    closers.push(() => worker.close());

    const key = `permanent.${randomUUID()}`;
    const contractId = randomUUID();
    await producer.enqueue('reviews.publish', { contractId }, key);
    await untilDefined(stateIs(marketplace, key, 'failed'), 'the task to fail');
    expect(runs.get(key)).toBe(1);

    // Five enqueues at once: BullMQ's retry is atomic, one of them moves it, the others find it gone
    // from the failed set; none throws.
    await Promise.all(
      Array.from({ length: 5 }, () => producer.enqueue('reviews.publish', { contractId }, key)),
    );
    await untilDefined(async () => ((runs.get(key) ?? 0) >= 2 ? true : undefined), 'the retry to run');
    await untilDefined(stateIs(marketplace, key, 'failed'), 'the retried task to fail again');
    await sleep(500);
    expect(runs.get(key)).toBe(2);
    expect((await marketplace.getJob(key))?.attemptsMade).toBe(1);

    // The cause is gone: the next enqueue retries it and it completes; after that enqueues are no-ops.
    outcome = 'succeed';
    await producer.enqueue('reviews.publish', { contractId }, key);
    await untilDefined(stateIs(marketplace, key, 'completed'), 'the task to complete');
    await producer.enqueue('reviews.publish', { contractId }, key);
    await sleep(500);
    expect(runs.get(key)).toBe(3);
    expect(await marketplace.getJobState(key)).toBe('completed');

    // A delayed timer enqueued again stays delayed (not run early, not duplicated).
    const timer = `timer.${randomUUID()}`;
    await producer.enqueue('reviews.publish', { contractId }, timer, { delayMs: 3_600_000 });
    await producer.enqueue('reviews.publish', { contractId }, timer, { delayMs: 3_600_000 });
    expect(await marketplace.getJobState(timer)).toBe('delayed');
    expect(runs.get(timer)).toBeUndefined();
  }, 60_000);

  it('retries a database-bound task with the capped backoff in the real worker while the database is down', async () => {
    const prefix = uniqueRedisPrefix();
    const producer = producerFor(prefix);
    const marketplace = queueOf(producer, 'marketplace');
    const worker = startMarketplaceWorker({
      // closeReviewWindow needs only these; every query fails (the database is gone).
      contracts: { db: down.db, clock: systemClock } as unknown as ContractDeps,
      log: logs.log,
      connection: redis,
      redisPrefix: prefix,
      lockMs: 5_000,
    });
    closers.push(() => worker.close());
    const key = `reviews.${randomUUID()}`;
    await producer.enqueue('reviews.publish', { contractId: randomUUID() }, key);
    // Waits of 0.8–1 s, then 1.6–2 s: three attempts in about 3 s, then still scheduled.
    await untilDefined(
      async () => ((await marketplace.getJob(key))?.attemptsMade ?? 0) >= 3 || undefined,
      '3 attempts',
      15_000,
    );
    const job = await marketplace.getJob(key);
    expect(job?.opts.attempts).toBe(54);
    expect(job?.opts.backoff).toEqual({ type: 'capped-exponential', delay: 1_000, jitter: 0.2 });
    expect(['delayed', 'waiting', 'active']).toContain(await marketplace.getJobState(key));
    expect(logs.text()).not.toContain('Unknown backoff strategy');
  }, 30_000);
});
