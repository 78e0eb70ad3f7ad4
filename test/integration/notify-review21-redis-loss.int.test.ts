/**
 * Notify review 21: tasks lost with Redis's data were lost for good. The outbox relay enqueues an
 * event's tasks and marks the event published; a Redis restarted without its data (no persistence,
 * a failover to an empty replica, a flush) then takes every task not yet run — a security notice's
 * `notifications.deliver`, the verification mail's `emails.send` — and nothing enqueued them again.
 * Now the relay keeps a marker among the queues' keys and, finding it gone, relays every published
 * event still kept again (same task ids, idempotent tasks). Real PostgreSQL, Redis and BullMQ; the
 * data loss is every key of the test's queues deleted, as a flush would.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, type DbHandle } from '../../src/db/create-db.js';
import { insertOutboxEvent } from '../../src/db/repositories/outbox.repo.js';
import { startOutboxRelay } from '../../src/domain/events/relay.js';
import { systemClock } from '../../src/platform/clock.js';
import { bullPrefix, createTaskQueue, type TaskQueue, taskId } from '../../src/platform/queues/tasks.js';
import {
  captureLogs,
  createMigratedDatabase,
  sharedRedisUrl,
  type TestDatabase,
  uniqueRedisPrefix,
} from '../support/context.js';
import { insertActor } from '../support/payments-db.js';
import { untilDefined } from '../support/poll.js';

describe('the task queues losing their data', () => {
  let database: TestDatabase;
  let handle: DbHandle;
  let redis: Redis;
  let tasks: TaskQueue;
  const logs = captureLogs();
  const redisPrefix = uniqueRedisPrefix();

  beforeAll(async () => {
    database = await createMigratedDatabase();
    handle = await createDb({ kind: 'postgres', url: database.url, poolMax: 2 }, logs.log);
    redis = new Redis(sharedRedisUrl(), { maxRetriesPerRequest: null });
    tasks = createTaskQueue(redis, redisPrefix);
  });
  afterAll(async () => {
    await tasks?.close();
    redis?.disconnect();
    await handle?.close();
    await database?.drop();
  });

  /** Deletes every key of this test's task queues, as a Redis restarted without its data. */
  const loseQueueData = async () => {
    const keys = await redis.keys(`${bullPrefix(redisPrefix)}*`);
    if (keys.length > 0) await redis.del(...keys);
    return keys.length;
  };
  const job = (queueName: string, id: string) =>
    tasks
      .queues()
      .find((queue) => queue.name === queueName)
      ?.getJob(id);

  it('relays the published events again, so their tasks exist again', async () => {
    const { userId } = await insertActor(handle.db, 'redisloss');
    const registered = await insertOutboxEvent(handle.db, 'user.registered', { userId });
    const login = await insertOutboxEvent(handle.db, 'user.new_login', {
      userId,
      ip: '192.0.2.1',
      userAgent: 'test',
    });
    const relay = startOutboxRelay({
      db: handle.db,
      taskQueue: tasks,
      clock: systemClock,
      log: logs.log,
      pollMs: 20,
      queueData: { redis, redisPrefix },
    });
    const expected = [
      ['emails', taskId(registered, 'verify-email')],
      ['notifications', taskId(login, userId)],
    ] as const;
    const allThere = async () => {
      for (const [queue, id] of expected) if ((await job(queue, id)) === undefined) return undefined;
      return true;
    };
    try {
      await untilDefined(allThere, 'the tasks of both events', 5_000);
      expect(await loseQueueData()).toBeGreaterThan(0);
      expect(await allThere()).toBeUndefined();
      await untilDefined(allThere, 'the tasks enqueued again', 5_000);
      const published = await handle.db
        .selectFrom('outbox_events')
        .select('id')
        .where('published_at', 'is', null)
        .execute();
      expect(published).toHaveLength(0);
      const relayedAgain = await untilDefined(
        async () => logs.lines().find((line) => line.msg === 'published outbox events relayed again'),
        'the end of the relaying again',
        5_000,
      );
      expect(relayedAgain).toMatchObject({ level: 40, events: 2 });
    } finally {
      await relay.stop();
    }
  });
});
