/**
 * Timers as a port: everything that waits (actor passivation, ask timeouts, shutdown deadlines, an
 * actor's own flush timers) schedules through it, so unit tests move time by hand instead of sleeping.
 * `Clock` (clock.ts) answers "what time is it" for domain rules; `Timers` also answers "wake me later".
 */

/** Cancels a scheduled callback. Idempotent, and harmless after the callback ran. */
export type CancelTimer = () => void;

export interface Timers {
  /** Current time in milliseconds since the Unix epoch. */
  readonly now: () => number;
  /**
   * Runs `callback` once, `delayMs` milliseconds from now (0 = as soon as possible, never
   * synchronously). `delayMs` must be finite, ≥ 0 and ≤ MAX_TIMER_DELAY_MS: Node fires longer delays
   * after 1 ms, so they are refused with a RangeError instead. The callback must not throw.
   */
  readonly schedule: (delayMs: number, callback: () => void) => CancelTimer;
}

/** Longest delay a Node timer honours (2^31 − 1 ms, about 24.8 days). */
export const MAX_TIMER_DELAY_MS = 2_147_483_647;

function assertDelay(delayMs: number): void {
  if (!(Number.isFinite(delayMs) && delayMs >= 0 && delayMs <= MAX_TIMER_DELAY_MS)) {
    throw new RangeError(`timer delay must be between 0 and ${MAX_TIMER_DELAY_MS} ms (got ${delayMs})`);
  }
}

/** Real time. Timers are unref()ed: a pending passivation or ask timeout never keeps a process alive. */
export const systemTimers: Timers = {
  now: () => Date.now(),
  schedule: (delayMs, callback) => {
    assertDelay(delayMs);
    const handle = setTimeout(callback, delayMs);
    handle.unref();
    return () => clearTimeout(handle);
  },
};

/** A hand-driven clock for unit tests. */
export interface ManualTimers extends Timers {
  /**
   * Moves the clock forward by `ms` and runs every callback that falls due, in due-time order (ties in
   * scheduling order), each with `now()` equal to its due time; callbacks scheduled by those callbacks
   * run too when they fall due within the same advance. Synchronous: await a macrotask afterwards to let
   * promise chains started by the callbacks settle. A throwing callback propagates out of `advance`.
   */
  readonly advance: (ms: number) => void;
  /** Callbacks scheduled and neither run nor cancelled yet. */
  readonly pending: () => number;
}

interface ManualEntry {
  readonly dueAt: number;
  readonly callback: () => void;
}

/** Callbacks run per advance before it is taken for a callback that keeps rescheduling itself at 0 ms. */
const RUNAWAY_LIMIT = 1_000_000;

/** A ManualTimers whose clock starts at `startMs` (ms since the epoch, default 0). */
export function createManualTimers(startMs = 0): ManualTimers {
  // Sorted by dueAt; an entry is inserted after every entry due at the same time, so ties keep order.
  const queue: ManualEntry[] = [];
  let now = startMs;

  const cancel = (entry: ManualEntry): void => {
    const index = queue.indexOf(entry);
    if (index >= 0) queue.splice(index, 1);
  };

  return {
    now: () => now,
    schedule: (delayMs, callback) => {
      assertDelay(delayMs);
      const entry: ManualEntry = { dueAt: now + delayMs, callback };
      let index = queue.length;
      while (index > 0 && (queue[index - 1]?.dueAt ?? Number.NEGATIVE_INFINITY) > entry.dueAt) index--;
      queue.splice(index, 0, entry);
      return () => cancel(entry);
    },
    advance: (ms) => {
      if (!(Number.isFinite(ms) && ms >= 0)) throw new RangeError(`cannot advance by ${ms} ms`);
      const target = now + ms;
      for (let ran = 0; ; ran++) {
        const next = queue[0];
        if (next === undefined || next.dueAt > target) break;
        if (ran === RUNAWAY_LIMIT) {
          throw new Error(
            `more than ${RUNAWAY_LIMIT} timer callbacks in one advance: a callback reschedules itself`,
          );
        }
        queue.shift();
        now = next.dueAt;
        next.callback();
      }
      now = target;
    },
    pending: () => queue.length,
  };
}

/**
 * Runs `task` every `periodMs` on `timers` until the returned function is called. The next run is
 * scheduled when the previous one's promise settled, so a slow run (a stalled Redis) never piles
 * runs up; a rejected run is the task's own business (it should log), the next one still comes.
 */
export function every(timers: Timers, periodMs: number, task: () => void | Promise<void>): CancelTimer {
  let cancelNext: CancelTimer = () => undefined;
  let stopped = false;
  const run = () => {
    Promise.resolve()
      .then(task)
      .catch(() => undefined)
      .finally(() => {
        if (!stopped) cancelNext = timers.schedule(periodMs, run);
      });
  };
  cancelNext = timers.schedule(periodMs, run);
  return () => {
    stopped = true;
    cancelNext();
  };
}
