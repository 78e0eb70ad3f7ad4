/**
 * Closing a BullMQ worker within a bound. `worker.close()` lets active tasks finish, then ends the
 * worker's connections; but when its blocking connection is parked in ioredis' `reconnecting` state
 * (Redis restarted or unreachable a moment ago) it waits for an `end` event that never comes
 * (BullMQ issues #2430, #4656), and one hung close would hold the whole shutdown past
 * SHUTDOWN_TIMEOUT_MS. After `graceMs` the worker's connections are dropped instead: a task cut
 * short is picked up again as stalled by another worker, and every task is idempotent.
 *
 * `closeWorkers` closes a process's workers together: one after another, the later ones kept taking
 * tasks while the first closed, and four slow closes added up past the shutdown deadline.
 */
import type { Worker } from 'bullmq';
import type { Logger } from '../logger.js';

/** Long enough for a task in flight to finish (an SMTP server's reply after DATA takes seconds). */
export const WORKER_CLOSE_GRACE_MS = 4_000;
/** How long dropping a hung worker's connections may take before the shutdown moves on. */
const DROP_WAIT_MS = 1_000;

export async function closeWorker(
  worker: Pick<Worker, 'close' | 'disconnect' | 'name'>,
  log: Pick<Logger, 'warn'>,
  graceMs: number = WORKER_CLOSE_GRACE_MS,
): Promise<void> {
  const closing = worker.close();
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), graceMs);
  });
  const outcome = await Promise.race([closing.then(() => 'closed' as const), timedOut]);
  clearTimeout(timer);
  if (outcome === 'closed') return;
  closing.catch(() => undefined);
  log.warn({ queue: worker.name, graceMs }, 'worker did not close in time; dropping its connections');
  let dropTimer: NodeJS.Timeout | undefined;
  await Promise.race([
    worker.disconnect().catch(() => undefined),
    new Promise<void>((resolve) => {
      dropTimer = setTimeout(resolve, DROP_WAIT_MS);
    }),
  ]);
  clearTimeout(dropTimer);
}

/** Closes all the workers at once, each within `graceMs` (see closeWorker). */
export async function closeWorkers(
  workers: readonly Pick<Worker, 'close' | 'disconnect' | 'name'>[],
  log: Pick<Logger, 'warn'>,
  graceMs: number = WORKER_CLOSE_GRACE_MS,
): Promise<void> {
  await Promise.all(workers.map((worker) => closeWorker(worker, log, graceMs)));
}
