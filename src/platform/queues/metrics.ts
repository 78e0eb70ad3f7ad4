/**
 * Queue metrics in the process's prom-client registry.
 *
 * Two kinds, because they come from two places:
 * - Queue-wide state (tasks by state, age of the oldest waiting task) is read from Redis when
 *   /metrics is scraped, for every queue named in `tasks`. It is the same on every node that reports
 *   it, so aggregate it with `max by (queue, state)`, never `sum`.
 * - What this process's workers did (completed/failed counters, processing duration) is counted from
 *   the Worker events, per node; `sum` across nodes is the cluster total.
 */
import type { Queue, Worker } from 'bullmq';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { isFinalFailure } from './retry.js';

/** The states reported by `gigwire_tasks`; `waiting` includes prioritized tasks (they wait too). */
export const REPORTED_STATES = ['waiting', 'active', 'delayed', 'failed', 'completed'] as const;

export interface QueueMetrics {
  /**
   * Counts what one worker does. Call it for every worker a process starts: a task that finishes
   * is one `gigwire_tasks_completed_total` or `gigwire_tasks_failed_total` and one duration sample.
   */
  readonly observeWorker: (worker: Worker) => void;
}

/**
 * When a waiting task became due, at the latest that can be told from the task: created plus the
 * delay it was enqueued with (`opts.delay`: BullMQ sets the task's own `delay` to 0 when it moves a
 * due task from delayed to waiting, so that field alone dated a digest 5 min, an unread check
 * 10 min and a contract timer days before it was due), and never before its last attempt began
 * (a task retried or taken back from a dead worker; the back-off it then waited is not recorded,
 * so such a task's age includes its last attempt and back-off).
 */
export function waitingSinceMs(job: {
  readonly timestamp: number;
  readonly delay?: number;
  readonly opts?: { readonly delay?: number };
  readonly processedOn?: number;
}): number {
  const scheduled = job.timestamp + Math.max(0, job.delay ?? 0, job.opts?.delay ?? 0);
  return Math.max(scheduled, job.processedOn ?? 0);
}

/** How long a scrape waits for Redis per queue before it leaves that queue's series out. */
export const QUEUE_SCRAPE_TIMEOUT_MS = 1_000;

/**
 * How long one reading of the queues answers every scrape (a state at most this old), as
 * /health/ready reuses its checks. /metrics takes no rate limit and no credential (probes and
 * scrapers; nginx keeps it internal, but a process's PORT may be reached without it), and each
 * reading is some 40 Redis commands: read per request, a client hammering /metrics turned one cheap
 * request into that much work on the Redis every node shares (review 24).
 */
export const QUEUE_READING_REUSE_MS = 1_000;

/** `read` at most once per `reuseMs` (monotonic): a call within that of the last one shares its result. */
function reusedFor<T>(reuseMs: number, read: () => Promise<T>): () => Promise<T> {
  let last: { readonly at: number; readonly value: Promise<T> } | undefined;
  return () => {
    const at = performance.now();
    if (last !== undefined && at - last.at < reuseMs) return last.value;
    last = { at, value: read() };
    return last.value;
  };
}

/**
 * Reads every queue at once; a queue whose read fails or outlives the timeout is left out (and a
 * late answer is dropped), so a Redis outage (the task connection waits through reconnects) never
 * fails or stalls /metrics.
 */
async function readQueues<T>(
  queues: readonly Queue[],
  read: (queue: Queue) => Promise<T>,
  timeoutMs: number,
): Promise<Array<{ readonly queue: Queue; readonly value: T }>> {
  const settled = await Promise.allSettled(
    queues.map(async (queue) => {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('queue metrics timed out')), timeoutMs);
      });
      try {
        return { queue, value: await Promise.race([read(queue), timeout]) };
      } finally {
        clearTimeout(timer);
      }
    }),
  );
  return settled.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
}

export function registerQueueMetrics(
  registry: Registry,
  queues: () => readonly Queue[],
  options: {
    readonly now?: () => number;
    readonly timeoutMs?: number;
    /**
     * Whether the queues' Redis connection is up now. While it is not, no queue is read: the task
     * connection keeps commands for its reconnect (BullMQ's workers need that), so each reading
     * made during an outage (some 40 commands a second while scraped) waited in its offline queue
     * and all of them went out at once when Redis came back, answering nobody (review 25).
     */
    readonly connected?: () => boolean;
  } = {},
): QueueMetrics {
  const now = options.now ?? Date.now;
  const timeoutMs = options.timeoutMs ?? QUEUE_SCRAPE_TIMEOUT_MS;
  const connected = options.connected ?? (() => true);
  const readable = () => (connected() ? queues() : []);
  const readCounts = reusedFor(QUEUE_READING_REUSE_MS, () =>
    readQueues(
      readable(),
      (queue) => queue.getJobCounts('waiting', 'prioritized', 'active', 'delayed', 'failed', 'completed'),
      timeoutMs,
    ),
  );
  // The wait list is pushed on the left and taken from the right: ascending order starts with
  // the task that has waited longest.
  const readOldest = reusedFor(QUEUE_READING_REUSE_MS, () =>
    readQueues(readable(), (queue) => queue.getJobs(['wait'], 0, 0, true), timeoutMs),
  );
  new Gauge({
    name: 'gigwire_tasks',
    help: 'Tasks in each queue by state, read from Redis at scrape time (the same on every node: aggregate with max).',
    labelNames: ['queue', 'state'],
    registers: [registry],
    async collect() {
      const read = await readCounts();
      this.reset();
      for (const { queue, value: counts } of read) {
        for (const state of REPORTED_STATES) {
          const value = (counts[state] ?? 0) + (state === 'waiting' ? (counts.prioritized ?? 0) : 0);
          this.set({ queue: queue.name, state }, value);
        }
      }
    },
  });
  new Gauge({
    name: 'gigwire_tasks_oldest_waiting_seconds',
    help: 'Age of the oldest task waiting for a worker, in seconds since it became due (0 when none waits).',
    labelNames: ['queue'],
    registers: [registry],
    async collect() {
      const read = await readOldest();
      this.reset();
      for (const {
        queue,
        value: [oldest],
      } of read) {
        const age = oldest === undefined ? 0 : Math.max(0, now() - waitingSinceMs(oldest)) / 1000;
        this.set({ queue: queue.name }, age);
      }
    },
  });

  const completed = new Counter({
    name: 'gigwire_tasks_completed_total',
    help: 'Tasks this node completed, by queue and task name.',
    labelNames: ['queue', 'task'],
    registers: [registry],
  });
  const failed = new Counter({
    name: 'gigwire_tasks_failed_total',
    help: 'Task attempts that failed on this node; final="true" when the task is exhausted (kept in the failed set, retried only by an operator), "false" when it will be retried.',
    labelNames: ['queue', 'task', 'final'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'gigwire_task_duration_seconds',
    help: 'Processing time of one task attempt on this node, by queue and outcome.',
    labelNames: ['queue', 'outcome'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [registry],
  });
  const seconds = (job: { processedOn?: number; finishedOn?: number }) =>
    job.processedOn === undefined
      ? undefined
      : Math.max(0, (job.finishedOn ?? now()) - job.processedOn) / 1000;

  return {
    observeWorker(worker) {
      worker.on('completed', (job) => {
        completed.inc({ queue: worker.name, task: job.name });
        const took = seconds(job);
        if (took !== undefined) duration.observe({ queue: worker.name, outcome: 'completed' }, took);
      });
      worker.on('failed', (job, error) => {
        // BullMQ passes no job when a stalled task hit its limit and was already removed.
        if (job === undefined) {
          failed.inc({ queue: worker.name, task: 'unknown', final: 'true' });
          return;
        }
        const final = isFinalFailure(job, error);
        failed.inc({ queue: worker.name, task: job.name, final: String(final) });
        const took = seconds(job);
        if (took !== undefined) duration.observe({ queue: worker.name, outcome: 'failed' }, took);
      });
    },
  };
}
