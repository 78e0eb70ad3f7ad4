/**
 * Review 31 (operator, logs): while Redis is away, every BullMQ queue and worker repeats each
 * failed reconnect of its connections as an `error` event, and each was one warning line: a
 * producer's four queues wrote some 4 lines a second, a worker process's workers more, for the whole
 * outage (the Redis clients themselves log at most every 10 s). One line per 10 s now, with the
 * number held back.
 */
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { loggerToMemory } from '../logger.testing.js';
import { startTaskWorker } from './task-worker.js';
import { createTaskQueue } from './tasks.js';

/** A connection to a port nobody listens on: it fails and reconnects every 100 ms. */
const deadRedis = () =>
  new Redis('redis://127.0.0.1:1', {
    maxRetriesPerRequest: null,
    retryStrategy: () => 100,
    lazyConnect: false,
  });

const opened: Redis[] = [];
afterEach(() => {
  for (const redis of opened.splice(0)) redis.disconnect();
});

describe('connection errors of task queues and workers (review 31)', () => {
  it("passes a producer's queue connection errors on at most once per 10 s", async () => {
    const redis = deadRedis();
    opened.push(redis);
    const calls: number[] = [];
    const queue = createTaskQueue(redis, 'review31', (_error, _queue, heldBack) => calls.push(heldBack));
    queue.queues();
    await new Promise((resolve) => setTimeout(resolve, 800));
    expect(calls).toEqual([0]);
  });

  it("logs a worker's connection errors at most once per 10 s", async () => {
    const { log, lines } = loggerToMemory();
    const redis = deadRedis();
    opened.push(redis);
    const worker = startTaskWorker('emails', async () => undefined, {
      connection: redis,
      redisPrefix: 'review31',
      lockMs: 30_000,
      concurrency: 1,
      log: log,
      what: 'review31',
    });
    for (let i = 0; i < 20; i++) worker.emit('error', new Error('connect ECONNREFUSED 127.0.0.1:1'));
    await new Promise((resolve) => setTimeout(resolve, 800));
    expect(lines.filter((line) => line.msg === 'review31 worker error')).toHaveLength(1);
  });
});
