/**
 * A BullMQ worker of our task queues, set up the same way for every kind of task: the queues' key
 * prefix, a lock of `lockMs` checked for stalls at the same interval (a task whose worker died is
 * taken up again, at most 3 times), the capped backoff every task is enqueued with (backoff.ts: a
 * worker without its strategy cannot retry them), and one log line per failure — a warning while
 * the task will be retried, an error once the failure is final (out of attempts, or unrecoverable).
 */
import { type Job, type Processor, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { logGate } from '../log-gate.js';
import type { Logger } from '../logger.js';
import { taskWorkerSettings } from './backoff.js';
import { isFinalFailure } from './retry.js';
import { bullPrefix } from './tasks.js';

export interface TaskWorkerOptions {
  readonly connection: Redis;
  readonly redisPrefix: string;
  /** How long a running task's lock lasts, and how often stalled tasks are looked for. */
  readonly lockMs: number;
  /** Tasks one worker runs at once. */
  readonly concurrency: number;
  readonly log: Logger;
  /** Names the tasks in log lines: "<what> task failed", "<what> worker error". */
  readonly what: string;
  /**
   * Told after the log line when a task failed for the last time (the bookkeeping of work that gave
   * up). Must not throw or leave a rejection unhandled.
   */
  readonly onFinalFailure?: (job: Job, error: Error) => void;
}

export function startTaskWorker(queue: string, processor: Processor, options: TaskWorkerOptions): Worker {
  const { log, what } = options;
  const worker = new Worker(queue, processor, {
    connection: options.connection,
    prefix: bullPrefix(options.redisPrefix),
    concurrency: options.concurrency,
    lockDuration: options.lockMs,
    stalledInterval: options.lockMs,
    maxStalledCount: 3,
    settings: taskWorkerSettings,
  });
  worker.on('failed', (job, error) => {
    const final = job !== undefined && isFinalFailure(job, error);
    log[final ? 'error' : 'warn'](
      { err: error, task: job?.name, taskId: job?.id, attempts: job?.attemptsMade },
      `${what} task failed`,
    );
    if (final && job !== undefined) options.onFinalFailure?.(job, error);
  });
  // Once per failed reconnect of each of its connections while Redis is away: at most one line
  // every 10 s, with the count held back (review 31).
  const gate = logGate();
  worker.on('error', (error) => {
    const heldBack = gate();
    if (heldBack !== undefined) log.warn({ err: error, heldBack }, `${what} worker error`);
  });
  return worker;
}
