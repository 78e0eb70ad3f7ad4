/**
 * Open-loop constant-rate scheduling: event i is due at startAt + i / rate, whatever happened to
 * earlier events (no waiting for acks), so a slow server shows up as latency instead of a lower
 * offered rate. A 1 ms timer fires every due event; an event fired more than LATE_MS after its due
 * time is counted late, which is how a saturated load generator gives itself away.
 */
import type { ScheduleStats } from '../lib/ipc.js';
import { wallMs } from '../lib/stats.js';

// A VM's idle vCPU takes milliseconds to wake for a timer; lateness below this is that, not load.
export const LATE_MS = 10;

export interface ScheduleOptions {
  readonly startAt: number;
  readonly durationMs: number;
  /** Events per second. */
  readonly rate: number;
  /** Fires event `i`, due at wall ms `dueAt`. */
  readonly fire: (i: number, dueAt: number) => void;
}

export function runOpenLoop(options: ScheduleOptions): Promise<ScheduleStats> {
  const total = Math.floor((options.durationMs * options.rate) / 1000);
  const interval = 1000 / options.rate;
  let next = 0;
  let late = 0;
  let maxLagMs = 0;
  return new Promise((resolve) => {
    if (total === 0) {
      resolve({ sent: 0, late: 0, maxLagMs: 0 });
      return;
    }
    const tick = () => {
      const now = wallMs();
      const due = Math.min(total, Math.floor((now - options.startAt) / interval) + 1);
      while (next < due) {
        const dueAt = options.startAt + next * interval;
        const lag = wallMs() - dueAt;
        if (lag > LATE_MS) late += 1;
        if (lag > maxLagMs) maxLagMs = lag;
        options.fire(next, dueAt);
        next += 1;
      }
      if (next >= total) {
        resolve({ sent: next, late, maxLagMs });
        return;
      }
      const wait = options.startAt + next * interval - wallMs();
      setTimeout(tick, Math.max(1, Math.min(wait, 50)));
    };
    setTimeout(tick, Math.max(0, options.startAt - wallMs()));
  });
}
