/**
 * Keeps the uWebSockets.js listener away from the process's file-descriptor limit (security review
 * 20). uWS cannot cap the connections it accepts (this build has no per-connection hook; a socket
 * that never finishes its request is only closed by uWS's own ~10–20 s HTTP timeout), so one
 * client opening a few thousand connections a second could use up the node's descriptors. At
 * EMFILE, uSockets' accept fails and it returns with the connection still queued: its epoll loop
 * then spins a whole core (measured: ~950 ms of CPU per second), while every other part of the node
 * fails to open anything (REST connections, PostgreSQL and Redis reconnects, files).
 *
 * So the open descriptors are counted (/proc/self/fd, Linux, off the event loop: open-files.ts; a
 * synchronous readdir of 15 000 entries held the event loop ~13 ms, and reading it entry by entry
 * cost ~25–65 µs of CPU per connection opened in the bench's connect storm) every second while fewer than NEAR × WS_FD_RESERVE are free, every FAR_MS
 * otherwise; when fewer than WS_FD_RESERVE are left under the soft limit, the WS_PORT listener
 * stops accepting (queued and new connections are refused by the kernel; sockets open stay), and
 * it listens again once twice that many are free (a reserve above a quarter of the limit is taken
 * as a quarter, so a small limit never keeps the port shut for good). REST (with its own caps) and
 * open sockets keep working meanwhile;
 * `gigwire_ws_listener_paused` says so, next to prom-client's `process_open_fds`/`process_max_fds`.
 */
import { readFileSync } from 'node:fs';
import { Gauge, type Registry } from 'prom-client';
import type { Logger } from '../platform/logger.js';
import { countOpenFiles } from '../platform/open-files.js';

export interface PausableListener {
  /** Stops accepting (the listen socket is closed; open sockets stay). */
  readonly pause: () => void;
  /** Listens again on the same port; false if that failed (tried again on the next check). */
  readonly resume: () => boolean;
}

export interface FdGuardOptions {
  readonly listener: PausableListener;
  /** Descriptors kept free: below it the listener pauses; at twice it, it listens again. 0 = off. */
  readonly reserve: number;
  readonly log: Logger;
  readonly metrics: Registry;
  readonly intervalMs?: number;
  /** For tests: the open descriptors and the soft limit (undefined when unknown: nothing is done). */
  readonly openFiles?: () => number | undefined | Promise<number | undefined>;
  readonly maxFiles?: () => number | undefined;
}

/** Counted every second while fewer than NEAR × the reserve are free; else every FAR_MS. */
const NEAR = 4;
const FAR_MS = 5_000;

/** The soft RLIMIT_NOFILE (Node raises it to the hard limit at start), or undefined off Linux. */
function softFileLimit(): number | undefined {
  try {
    const line = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    return line?.[1] === undefined ? undefined : Number(line[1]);
  } catch {
    return undefined;
  }
}

/** Starts the guard; returns its stop. One check runs at once. */
export function startFdGuard(options: FdGuardOptions): {
  readonly stop: () => void;
  /** Counts now (joins a count under way); resolves once its outcome is applied. */
  readonly check: () => Promise<void>;
} {
  const paused = new Gauge({
    name: 'gigwire_ws_listener_paused',
    help: 'Whether WS_PORT has stopped accepting because fewer than WS_FD_RESERVE file descriptors are free (1) or accepts (0).',
    registers: [options.metrics],
  });
  paused.set(0);
  if (options.reserve === 0) return { stop: () => undefined, check: async () => undefined };
  const openFiles = options.openFiles ?? countOpenFiles;
  const limit = options.maxFiles?.() ?? softFileLimit();
  // A reserve of most of the limit would keep WS_PORT shut for good: at most a quarter of it.
  const reserve = limit === undefined ? options.reserve : Math.min(options.reserve, Math.floor(limit / 4));
  if (reserve < options.reserve) {
    options.log.warn(
      { limit, reserve: options.reserve, used: reserve },
      'WS_FD_RESERVE is more than a quarter of the file-descriptor limit: a quarter is kept free instead',
    );
  }
  let isPaused = false;
  /** Free descriptors at the last count (undefined before one). */
  let lastFree: number | undefined;
  const apply = (open: number | undefined) => {
    if (open === undefined || limit === undefined) return;
    const free = limit - open;
    lastFree = free;
    if (!isPaused && free < reserve) {
      options.listener.pause();
      isPaused = true;
      paused.set(1);
      options.log.warn(
        { openFiles: open, limit, reserve },
        'few file descriptors left: WS_PORT stops accepting until twice WS_FD_RESERVE are free',
      );
    } else if (isPaused && free >= reserve * 2) {
      if (!options.listener.resume()) return;
      isPaused = false;
      paused.set(0);
      options.log.warn({ openFiles: open, limit }, 'file descriptors free again: WS_PORT accepts');
    }
  };
  let checking: Promise<void> | undefined;
  const check = (): Promise<void> => {
    checking ??= (async () => {
      try {
        apply(await openFiles());
      } catch (error) {
        options.log.warn({ err: error }, 'file descriptors not counted');
      } finally {
        checking = undefined;
      }
    })();
    return checking;
  };
  const nearMs = options.intervalMs ?? 1_000;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;
  const loop = () => {
    void check().finally(() => {
      if (stopped) return;
      const near = lastFree === undefined || lastFree < reserve * NEAR;
      timer = setTimeout(loop, near ? nearMs : Math.max(nearMs, FAR_MS));
      timer.unref();
    });
  };
  loop();
  return {
    stop: () => {
      stopped = true;
      clearTimeout(timer);
    },
    check,
  };
}
