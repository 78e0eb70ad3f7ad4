/**
 * Notify review 20b: a digest whose task was lost stayed open for good. The digest task is a
 * delayed BullMQ task; a Redis restarted without its data (no AOF, a failover to a replica behind),
 * or an operator cleaning failed tasks, takes it away, and only the user's next emailable
 * notification enqueued it again, so a digest holding a security notice ("new sign-in") was never
 * mailed to a user who got nothing else. Now notifications workers queue the task of every open
 * digest overdue by DIGEST_OVERDUE_MS again. Real PostgreSQL, Redis and BullMQ; the real
 * notifications worker (its sweep every 200 ms here) closes the digest and stores its mail.
 */
import { randomUUID } from 'node:crypto';
import type { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UserId } from '../../protocol/src/ids.js';
import { attachToOpenDigest, insertNotificationOnce } from '../../src/db/repositories/notifications.repo.js';
import { DIGEST_OVERDUE_MS, digestEmailKey } from '../../src/domain/notifications/service.js';
import type { Bus } from '../../src/platform/bus/bus.js';
import { systemClock } from '../../src/platform/clock.js';
import { createTaskQueue, type TaskQueue, taskId } from '../../src/platform/queues/tasks.js';
import { startNotificationsWorker } from '../../src/workers/notifications/processor.js';
import { captureLogs, sharedRedisUrl, uniqueRedisPrefix } from '../support/context.js';
import { insertActor, openPaymentsTestDb, type PaymentsTestDb } from '../support/payments-db.js';
import { untilDefined } from '../support/poll.js';

describe('an open digest whose task was lost', () => {
  let t: PaymentsTestDb;
  let redis: Redis;
  let taskQueue: TaskQueue;
  let worker: Worker | undefined;
  const logs = captureLogs();
  const redisPrefix = uniqueRedisPrefix();

  beforeAll(async () => {
    t = await openPaymentsTestDb(4);
    redis = new Redis(sharedRedisUrl(), { maxRetriesPerRequest: null });
    taskQueue = createTaskQueue(redis, redisPrefix);
  });
  afterAll(async () => {
    await worker?.close();
    await taskQueue?.close();
    redis?.disconnect();
    await t?.close();
  });

  /** A security notice in the user's open digest due at `dueAt`, and no digest task anywhere. */
  const openDigest = async (userId: UserId, dueAt: Date) =>
    t.db.transaction().execute(async (trx) => {
      const { row } = await insertNotificationOnce(trx, {
        userId,
        eventId: randomUUID(),
        type: 'security.new_login',
        title: 'New sign-in to your account',
        body: 'A sign-in from a new device.',
        data: {},
        inApp: true,
        traceId: null,
      });
      return (await attachToOpenDigest(trx, row.id, userId, dueAt)).id;
    });

  const digestStatus = async (id: string) =>
    (
      await t.db
        .selectFrom('notification_digests')
        .select('status')
        .where('id', '=', id)
        .executeTakeFirstOrThrow()
    ).status;

  it('is queued again by the notifications worker and mailed; one not yet overdue is left alone', async () => {
    const lost = await openDigest(
      (await insertActor(t.db, 'lostdigest')).userId,
      new Date(Date.now() - DIGEST_OVERDUE_MS - 60_000),
    );
    const pending = await openDigest(
      (await insertActor(t.db, 'duedigest')).userId,
      new Date(Date.now() - 1_000),
    );

    worker = startNotificationsWorker({
      notifications: {
        db: t.db,
        bus: {} as Bus, // digests push nothing
        clock: systemClock,
        log: logs.log,
        tasks: taskQueue,
        isOnline: async () => false,
        settings: { digestMs: 300_000, unreadAfterMs: 600_000, currency: 'USD' },
      },
      publicUrl: 'http://localhost',
      connection: redis,
      redisPrefix,
      lockMs: 5_000,
      overdueSweepMs: 200,
    });

    await untilDefined(
      async () => ((await digestStatus(lost)) === 'sent' ? true : undefined),
      'the lost digest closed and its mail stored',
      10_000,
    );
    const mail = await t.db
      .selectFrom('emails')
      .select(['status', 'template'])
      .where('idempotency_key', '=', digestEmailKey(lost))
      .executeTakeFirst();
    expect(mail).toEqual({ status: 'pending', template: 'notification-digest' });
    // Handed to the email worker as usual.
    const queue = taskQueue.queues().find((candidate) => candidate.name === 'emails');
    expect(await queue?.getJob(taskId(digestEmailKey(lost)))).toBeDefined();
    // Due a moment ago, not overdue: its own task (here: none) is trusted a while longer.
    expect(await digestStatus(pending)).toBe('open');
  });
});
