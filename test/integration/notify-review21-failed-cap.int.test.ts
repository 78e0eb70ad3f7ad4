/**
 * Notify review 21: failed tasks were capped by age only (30 days), so a flood of failures (a bad
 * deploy failing every task, every mail refused) grew Redis without bound — and Redis runs
 * `noeviction`, where a full Redis refuses every write. Each task also kept one stack trace per
 * attempt (54 for the database tasks). Now every task is stored with a count cap on the failed set
 * (FAILED_KEPT per queue, the oldest dropped first) beside the age, and the traces of its last few
 * attempts only. Real Redis and BullMQ: the options read back are the ones BullMQ stored and trims by.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UserId } from '../../protocol/src/ids.js';
import { createTaskQueue, FAILED_KEPT, type TaskQueue, taskId } from '../../src/platform/queues/tasks.js';
import { sharedRedisUrl, uniqueRedisPrefix } from '../support/context.js';

describe('failed task retention', () => {
  let redis: Redis;
  let taskQueue: TaskQueue;

  beforeAll(() => {
    redis = new Redis(sharedRedisUrl(), { maxRetriesPerRequest: null });
    taskQueue = createTaskQueue(redis, uniqueRedisPrefix());
  });
  afterAll(async () => {
    await taskQueue?.close();
    redis?.disconnect();
  });

  it('is capped by count as well as age, and keeps the stack traces of a few attempts', async () => {
    const digestId = crypto.randomUUID();
    await taskQueue.enqueue('notifications.digest', { digestId }, taskId('digest', digestId));
    await taskQueue.enqueue(
      'emails.send',
      { template: 'welcome', userId: crypto.randomUUID() as UserId, key: `welcome.${digestId}` },
      `welcome.${digestId}`,
    );
    const stored = await Promise.all(
      taskQueue.queues().map(async (queue) => (await queue.getJobs(['waiting'])).map((job) => job.opts)),
    );
    const opts = stored.flat();
    expect(opts).toHaveLength(2);
    expect(FAILED_KEPT).toBeGreaterThan(0);
    expect(FAILED_KEPT).toBeLessThanOrEqual(100_000);
    for (const options of opts) {
      expect(options.removeOnFail).toEqual({ age: 30 * 24 * 3600, count: FAILED_KEPT });
      expect(options.stackTraceLimit).toBeGreaterThan(0);
      expect(options.stackTraceLimit).toBeLessThanOrEqual(10);
    }
  });
});
