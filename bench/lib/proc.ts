/**
 * Reads CPU time and resident memory of processes from /proc (Linux only): utime + stime from
 * /proc/<pid>/stat (clock ticks, converted with `getconf CLK_TCK`) and VmRSS from
 * /proc/<pid>/status. A process that has exited reads as zero, so a sample over a set of pids (the
 * server's PostgreSQL backends come and go) never throws.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

let clockTicks: number | undefined;

/** Clock ticks per second of /proc/<pid>/stat times (usually 100). */
export function clockTicksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number.parseInt(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim(), 10);
    } catch {
      clockTicks = 100;
    }
    if (!Number.isFinite(clockTicks) || clockTicks <= 0) clockTicks = 100;
  }
  return clockTicks;
}

/** utime + stime of one process (or, with `tid`, of one of its threads) in µs, or 0 when it is gone. */
export function cpuMicros(pid: number, tid?: number): number {
  let stat: string;
  try {
    stat = readFileSync(tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`, 'utf8');
  } catch {
    return 0;
  }
  // The command name (field 2) may hold spaces and parentheses: split after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields after the name start at field 3 (state); utime is field 14, stime field 15.
  const utime = Number(fields[14 - 3]);
  const stime = Number(fields[15 - 3]);
  return ((utime + stime) * 1_000_000) / clockTicksPerSecond();
}

/** VmRSS of one process in bytes, or 0 when it is gone. */
export function rssBytes(pid: number): number {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return 0;
  }
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  return match?.[1] === undefined ? 0 : Number(match[1]) * 1024;
}

/** CPU µs per pid at one instant; deltas are taken per pid so exited/new pids count correctly. */
export type CpuSnapshot = ReadonlyMap<number, number>;

export function snapshotCpu(pids: readonly number[]): CpuSnapshot {
  return new Map(pids.map((pid) => [pid, cpuMicros(pid)]));
}

/**
 * CPU µs spent between two snapshots, summed over pids. A pid present only in `after` (started in
 * the window) counts its whole CPU time; one present only in `before` (exited) counts nothing more.
 */
export function cpuDelta(before: CpuSnapshot, after: CpuSnapshot): number {
  let total = 0;
  for (const [pid, end] of after) total += Math.max(0, end - (before.get(pid) ?? 0));
  return total;
}

export function totalRss(pids: readonly number[]): number {
  return pids.reduce((sum, pid) => sum + rssBytes(pid), 0);
}

/** A CPU meter over a fixed set of pids (re-evaluated at each read) and a wall-clock window. */
export class CpuMeter {
  readonly #pids: () => readonly number[];
  #before: CpuSnapshot;
  #startedAt: number;

  constructor(pids: () => readonly number[]) {
    this.#pids = pids;
    this.#before = snapshotCpu(pids());
    this.#startedAt = performance.now();
  }

  /** CPU µs and wall ms since construction. */
  read(): { readonly cpuUs: number; readonly wallMs: number } {
    const after = snapshotCpu(this.#pids());
    return { cpuUs: cpuDelta(this.#before, after), wallMs: performance.now() - this.#startedAt };
  }
}

/** Machine-wide CPU time from the first line of /proc/stat, in µs summed over all CPUs. */
export interface MachineCpu {
  /** user + nice + system: time spent running processes (irq/softirq excluded). */
  readonly processUs: number;
  /** Time the hypervisor ran something else while a vCPU wanted to run. */
  readonly stealUs: number;
}

export function machineCpu(): MachineCpu {
  let line = '';
  try {
    line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
  } catch {
    return { processUs: 0, stealUs: 0 };
  }
  const [, user, nice, system, , , , , steal] = line.trim().split(/\s+/).map(Number);
  const toUs = (ticks: number | undefined) => ((ticks ?? 0) * 1_000_000) / clockTicksPerSecond();
  return { processUs: toUs(user) + toUs(nice) + toUs(system), stealUs: toUs(steal) };
}

/**
 * Nanoseconds the main thread of `pid` (its thread id is the pid) spent runnable but waiting for a
 * core, from /proc/<pid>/task/<pid>/schedstat (its second field); 0 when it is gone.
 */
export function mainThreadWaitNs(pid: number): number {
  try {
    return Number(readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'utf8').split(' ')[1] ?? 0) || 0;
  } catch {
    return 0;
  }
}

/**
 * How the main threads of a set of processes (re-evaluated at each read) shared their core over a
 * wall-clock window: the time each waited for it while runnable, and the CPU their other threads
 * (V8's GC helpers, libuv's pool) used. A server pinned to one core shares it with those threads:
 * while they run, its event loop waits, which no loop-lag probe inside the process can tell apart
 * from work of its own.
 */
export class MainThreadMeter {
  readonly #pids: () => readonly number[];
  readonly #before: Map<number, { waitNs: number; processUs: number; mainUs: number }>;
  readonly #startedAt: number;

  constructor(pids: () => readonly number[]) {
    this.#pids = pids;
    this.#before = this.#snapshot();
    this.#startedAt = performance.now();
  }

  #snapshot() {
    return new Map(
      this.#pids().map((pid) => [
        pid,
        { waitNs: mainThreadWaitNs(pid), processUs: cpuMicros(pid), mainUs: cpuMicros(pid, pid) },
      ]),
    );
  }

  /**
   * `mainWaitShare`: the main thread's run-queue wait over the window (of the process that waited
   * most: a supervisor's idle main thread would dilute a mean);
   * `helperBusy`: CPU of the processes' other threads, in cores. Processes that started or ended
   * within the window count from their first or to their last reading.
   */
  read(): { readonly mainWaitShare: number; readonly helperBusy: number } {
    const after = this.#snapshot();
    const wallMs = performance.now() - this.#startedAt;
    let mostWaitNs = 0;
    let helperUs = 0;
    for (const [pid, end] of after) {
      const start = this.#before.get(pid) ?? { waitNs: 0, processUs: 0, mainUs: 0 };
      mostWaitNs = Math.max(mostWaitNs, end.waitNs - start.waitNs);
      helperUs += Math.max(0, end.processUs - start.processUs - (end.mainUs - start.mainUs));
    }
    return {
      mainWaitShare: wallMs > 0 ? mostWaitNs / 1e6 / wallMs : 0,
      helperBusy: wallMs > 0 ? helperUs / 1000 / wallMs : 0,
    };
  }
}
