/**
 * Whether this node's event loop was just stalled. Frames that arrived while the loop was held (a
 * long GC, a burst of work, a slow synchronous call) are handled together once it runs again, and a
 * connection's token bucket, measured when frames are handled, not when they arrived, refuses what
 * a client sent at an honest pace. Those refusals must not count as the client's abuse (20 strikes
 * close it 1008, "do not reconnect"): the connection asks this before striking.
 *
 * A tick every TICK_MS notes how late it ran. libuv runs due timers before polling sockets in each
 * loop iteration, so after a stall this tick has noted it before the frames queued behind it are
 * handled; they fall inside the grace that follows.
 */
import type { Timers } from '../platform/timers.js';

const TICK_MS = 100;
/** A tick this much later than due means the loop was held. */
const STALL_MS = 500;
/** Refusals within this long after a stall ended are the stall's, not the client's. */
const GRACE_MS = 2_000;

export interface LoopStalls {
  readonly recentlyStalled: () => boolean;
  readonly stop: () => void;
}

/** `now`: milliseconds on a monotonic clock. */
export function watchLoopStalls(timers: Timers, now: () => number): LoopStalls {
  let stalledUntil = Number.NEGATIVE_INFINITY;
  let dueAt = now() + TICK_MS;
  let cancel = timers.schedule(TICK_MS, function tick() {
    const at = now();
    if (at - dueAt >= STALL_MS) stalledUntil = at + GRACE_MS;
    dueAt = at + TICK_MS;
    cancel = timers.schedule(TICK_MS, tick);
  });
  return {
    recentlyStalled: () => now() < stalledUntil,
    stop: () => cancel(),
  };
}
