import { EventEmitter } from 'node:events';
import { type Queue, UnrecoverableError, type Worker } from 'bullmq';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { registerQueueMetrics, waitingSinceMs } from './metrics.js';

/** Stand-ins with only what the metrics read; the real queues are covered by console.int.test.ts. */
const queueLike = (name: string, read: <T>(value: T) => Promise<T>, waiting: unknown[] = []) =>
  ({
    name,
    getJobCounts: () => read({ waiting: 2, prioritized: 1, active: 1, delayed: 0, failed: 3, completed: 9 }),
    getJobs: () => read(waiting),
  }) as unknown as Queue;

describe('queue metrics', () => {
  it('leaves out a queue whose Redis read fails or hangs, and still answers the scrape', async () => {
    const registry = new Registry();
    registerQueueMetrics(
      registry,
      () => [
        queueLike('good', async (value) => value, [{ timestamp: 1_000, delay: 500 }]),
        queueLike('broken', () => Promise.reject(new Error('connection is closed'))),
        queueLike('stalled', () => new Promise(() => undefined)),
      ],
      { now: () => 4_500, timeoutMs: 20 },
    );
    const text = await registry.metrics();
    expect(text).toContain('gigwire_tasks{queue="good",state="waiting"} 3');
    expect(text).toContain('gigwire_tasks{queue="good",state="failed"} 3');
    expect(text).toContain('gigwire_tasks_oldest_waiting_seconds{queue="good"} 3');
    expect(text).not.toContain('queue="broken"');
    expect(text).not.toContain('queue="stalled"');
  });

  it('reads no queue while its Redis connection is down (nothing left queued for the reconnect)', async () => {
    const registry = new Registry();
    let reads = 0;
    const counted = <T>(value: T) => {
      reads += 1;
      return Promise.resolve(value);
    };
    registerQueueMetrics(registry, () => [queueLike('emails', counted)], { connected: () => false });
    expect(await registry.metrics()).not.toContain('queue="emails"');
    expect(reads).toBe(0);
    const upRegistry = new Registry();
    registerQueueMetrics(upRegistry, () => [queueLike('emails', counted)], { connected: () => true });
    expect(await upRegistry.metrics()).toContain('gigwire_tasks{queue="emails",state="waiting"} 3');
    expect(reads).toBe(2);
  });

  it('counts completions, retried and final failures, and their durations from worker events', async () => {
    const registry = new Registry();
    const metrics = registerQueueMetrics(registry, () => []);
    const worker = Object.assign(new EventEmitter(), { name: 'payments' }) as unknown as Worker;
    metrics.observeWorker(worker);
    const job = (attemptsMade: number) => ({
      name: 'payments.submit',
      attemptsMade,
      opts: { attempts: 3 },
      processedOn: 1_000,
      finishedOn: 1_250,
    });
    worker.emit('completed', job(1) as never, undefined, 'active');
    worker.emit('failed', job(1) as never, new Error('timeout'), 'active');
    worker.emit('failed', job(3) as never, new Error('timeout'), 'active');
    worker.emit('failed', job(1) as never, new UnrecoverableError('bad'), 'active');
    const text = await registry.metrics();
    expect(text).toContain('gigwire_tasks_completed_total{queue="payments",task="payments.submit"} 1');
    expect(text).toContain(
      'gigwire_tasks_failed_total{queue="payments",task="payments.submit",final="false"} 1',
    );
    expect(text).toContain(
      'gigwire_tasks_failed_total{queue="payments",task="payments.submit",final="true"} 2',
    );
    expect(text).toContain('gigwire_task_duration_seconds_sum{queue="payments",outcome="failed"} 0.75');
    expect(text).toContain('gigwire_task_duration_seconds_count{queue="payments",outcome="completed"} 1');
  });

  it('dates a waiting task from when it became due', () => {
    expect(waitingSinceMs({ timestamp: 10, delay: 5 })).toBe(15);
    expect(waitingSinceMs({ timestamp: 10 })).toBe(10);
  });
});
