/**
 * Notify review 20b: `gigwire_tasks_oldest_waiting_seconds` dated a delayed task from its creation
 * once it became due. BullMQ sets a task's `delay` to 0 when it moves it from delayed to waiting,
 * and the metric read that field, so a digest (delayed NOTIFY_EMAIL_DIGEST_S), an unread check
 * (UNREAD_EMAIL_AFTER_S) or a contract timer (days) waiting a moment behind a busy worker showed an
 * operator a queue stuck for minutes or days. Real Redis and BullMQ: tasks enqueued with a delay,
 * a worker with one slot that is busy when they come due, the metric read with the clock set to
 * their due time.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { type Job, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UserId } from '../../protocol/src/ids.js';
import { registerQueueMetrics } from '../../src/platform/queues/metrics.js';
import { bullPrefix, createTaskQueue, type TaskQueue } from '../../src/platform/queues/tasks.js';
import { sharedRedisUrl, uniqueRedisPrefix } from '../support/context.js';
import { untilDefined } from '../support/poll.js';

const DELAY_MS = 1_500;

describe('the age of the oldest waiting task', () => {
  let redis: Redis;
  let taskQueue: TaskQueue;
  let worker: Worker | undefined;
  const redisPrefix = uniqueRedisPrefix();
  let release: () => void = () => undefined;

  beforeAll(() => {
    redis = new Redis(sharedRedisUrl(), { maxRetriesPerRequest: null });
    taskQueue = createTaskQueue(redis, redisPrefix);
  });
  afterAll(async () => {
    release();
    await worker?.close(true);
    await taskQueue?.close();
    redis?.disconnect();
  });

  it('counts from when a delayed task became due, not from when it was enqueued', async () => {
    const roomId = crypto.randomUUID();
    const userId = crypto.randomUUID() as UserId;
    for (const readSeq of [1, 2, 3]) {
      await taskQueue.enqueue(
        'notifications.unread-check',
        { roomId, userId, readSeq },
        `unread.${roomId}.${readSeq}`,
        { delayMs: DELAY_MS },
      );
    }
    await sleep(DELAY_MS + 100);
    // One slot, held: its first fetch moves all three due tasks to waiting and takes one of them.
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    worker = new Worker('notifications', async () => held, {
      connection: redis,
      prefix: bullPrefix(redisPrefix),
      concurrency: 1,
    });
    const queue = taskQueue.queues().find((candidate) => candidate.name === 'notifications');
    if (queue === undefined) throw new Error('no notifications queue');
    const waiting = await untilDefined(async () => {
      const jobs: Job[] = await queue.getJobs(['wait'], 0, -1, true);
      return jobs.length === 2 ? jobs : undefined;
    }, 'two due tasks waiting behind the busy worker');
    // Read at the instant the last of them became due: none has waited longer than the few
    // milliseconds between their enqueues.
    const dueAt = Math.max(...waiting.map((job) => job.timestamp + DELAY_MS));
    const registry = new Registry();
    registerQueueMetrics(registry, () => [queue], { now: () => dueAt });
    const gauge = (await registry.getSingleMetric('gigwire_tasks_oldest_waiting_seconds')?.get())?.values;
    const age = gauge?.find((sample) => sample.labels.queue === 'notifications')?.value;
    expect(age).toBeDefined();
    expect(age).toBeLessThan(DELAY_MS / 1000 / 2);
  });
});
