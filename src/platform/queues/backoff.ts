/**
 * The retry schedule of database-bound tasks: exponential from a base delay, each wait capped, each
 * wait jittered downwards. BullMQ's built-in `exponential` has no cap (2^(n-1)·delay grows without
 * bound), so a budget of hours means either a few attempts with waits of hours at the end (a task
 * sits idle long after the outage ended) or, as before, many short waits that an outage of minutes
 * exhausts. Capped, the budget is hours and a task retries at most CAP after its cause went away.
 *
 * BullMQ calls a custom strategy for any backoff type that is not built in; every worker of our
 * queues passes `taskWorkerSettings` so that it can compute it (a worker without it cannot retry a
 * task of this type: BullMQ throws "Unknown backoff strategy" and the task is left to the stalled
 * check).
 */
import type { BackoffStrategy } from 'bullmq';

/** The backoff type of database-bound tasks (see `cappedExponentialDelay`). */
export const CAPPED_EXPONENTIAL = 'capped-exponential';
/** No wait between two attempts is longer than this. */
export const BACKOFF_CAP_MS = 5 * 60_000;

export interface CappedBackoff {
  /** The first wait, doubled after each failure until BACKOFF_CAP_MS. */
  readonly delayMs: number;
  /** Each wait is drawn uniformly from [w·(1−jitter), w], BullMQ's own meaning of `jitter`. */
  readonly jitter: number;
  readonly capMs?: number;
}

/**
 * The wait after the `attemptsMade`-th failed attempt (1 after the first):
 * min(cap, delay·2^(attemptsMade−1)), minus up to `jitter` of it so that tasks failed together by
 * one outage do not all come back in the same instant. `random` in [0, 1).
 */
export function cappedExponentialDelay(
  attemptsMade: number,
  backoff: CappedBackoff,
  random: () => number = Math.random,
): number {
  const cap = backoff.capMs ?? BACKOFF_CAP_MS;
  const exponent = Math.max(0, Math.floor(attemptsMade) - 1);
  // 2^exponent overflows to Infinity long after the cap is reached; min() keeps it finite.
  const nominal = Math.min(cap, backoff.delayMs * 2 ** exponent);
  const jitter = Math.min(1, Math.max(0, backoff.jitter));
  return Math.floor(nominal * (1 - jitter * random()));
}

/** The least and the most time a task with `attempts` attempts spends waiting between them. */
export function retryBudget(attempts: number, backoff: CappedBackoff): { minMs: number; maxMs: number } {
  let maxMs = 0;
  let minMs = 0;
  for (let failed = 1; failed < attempts; failed++) {
    maxMs += cappedExponentialDelay(failed, { ...backoff, jitter: 0 });
    minMs += cappedExponentialDelay(failed, backoff, () => 1);
  }
  return { minMs, maxMs };
}

/**
 * The strategy BullMQ calls for a non built-in type. Any such type is treated as capped exponential
 * (a type a newer release added still gets retried, never failed for good), with the task's own
 * `delay` and `jitter`.
 */
export const taskBackoffStrategy: BackoffStrategy = (attemptsMade, _type, _error, job) => {
  const options = job?.opts.backoff;
  const delayMs =
    typeof options === 'number' ? options : typeof options?.delay === 'number' ? options.delay : 1_000;
  const jitter = typeof options === 'object' && typeof options.jitter === 'number' ? options.jitter : 0;
  return cappedExponentialDelay(attemptsMade, { delayMs, jitter });
};

/** Worker `settings` every worker of our queues passes (the custom backoff above). */
export const taskWorkerSettings = { backoffStrategy: taskBackoffStrategy } as const;
