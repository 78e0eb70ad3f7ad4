/**
 * Closing a BullMQ worker within a bound. `worker.close()` lets active tasks finish, then ends the
 * worker's connections; but when its blocking connection is parked in ioredis' `reconnecting` state
 * (Redis restarted or unreachable a moment ago) it waits for an `end` event that never comes
 * (BullMQ issues #2430, #4656), and one hung close would hold the whole shutdown past
 * SHUTDOWN_TIMEOUT_MS. After `graceMs` the worker's connections are dropped instead: a task cut
 * short is picked up again as stalled by another worker, and every task is idempotent.
 */
import type { Worker } from 'bullmq';
import type { Logger } from '../logger.js';

export const WORKER_CLOSE_GRACE_MS = 2_000;

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
      dropTimer = setTimeout(resolve, graceMs);
    }),
  ]);
  clearTimeout(dropTimer);
}
