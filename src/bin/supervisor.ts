/**
 * `GATEWAY_PROCESSES=N` (N > 1): `npm start` becomes a supervisor of N copies of the node on this
 * machine. The copies are node:cluster workers running this same entry file with the same ROLE, so:
 * - WS_PORT is shared by the kernel: uWebSockets.js (uSockets) binds with SO_REUSEPORT unless told
 *   LIBUS_LISTEN_EXCLUSIVE_PORT, so every copy binds the same port and Linux spreads new connections
 *   over them (test/integration/gateway-processes.int.test.ts proves both receive connections);
 * - PORT (REST, health, metrics and the fallback /ws) is shared by node:cluster: the supervisor owns
 *   the listening socket and hands connections round-robin to the copies (Node 20's net.Server has no
 *   reusePort option; it came in 22.12).
 * Each copy is named `<NODE_ID>-g<i>` (the same name after a restart, like a compose service), runs
 * its own ordered shutdown, and is restarted with backoff when it dies after serving (one that
 * cannot start stops them all: judgeCopyDeath). The supervisor itself opens
 * no database or Redis connection. If the supervisor dies, node:cluster makes the copies exit at once
 * when their IPC channel closes, so none is left orphaned.
 */
import cluster, { type Worker } from 'node:cluster';
import { createServer } from 'node:net';
import type { Config } from '../config/index.js';
import type { Logger } from '../platform/logger.js';
import { createMetricsMerger } from './copy-metrics.js';
import type { StopSignals } from './early-signals.js';

/** What a copy sends its supervisor once it serves (run-process.ts). */
export interface UpMessage {
  readonly t: 'gigwire.up';
  readonly baseUrl: string;
  readonly uwsUrl: string | undefined;
}

/** What a copy sends its supervisor when its start failed, just before it exits 1 (run-process.ts). */
export interface StartFailedMessage {
  readonly t: 'gigwire.start-failed';
  /** The line a single process writes after `gigwire: start failed: `. */
  readonly reason: string;
}

const messageType = (message: unknown): unknown =>
  typeof message === 'object' && message !== null ? (message as { t?: unknown }).t : undefined;
const isUpMessage = (message: unknown): message is UpMessage => messageType(message) === 'gigwire.up';
const isStartFailedMessage = (message: unknown): message is StartFailedMessage =>
  messageType(message) === 'gigwire.start-failed' &&
  typeof (message as { reason?: unknown }).reason === 'string';

/** Backoff before restarting a copy that died `failuresInRow` times without running a minute: 1 s doubling to 30 s. */
export function restartDelayMs(failuresInRow: number): number {
  return Math.min(30_000, 1_000 * 2 ** Math.max(0, failuresInRow - 1));
}

/** A copy that ran this long before dying counts as healthy: its next restart waits only 1 s. */
const HEALTHY_RUN_MS = 60_000;

/**
 * Start failures in a row (deaths before serving) of a copy that had served, after which the
 * supervisor gives up: with the backoff above that is about 15 s of restarts plus the starts.
 */
export const START_FAILURES_LIMIT = 5;

/** What the supervisor knows when a copy dies on its own (not stopped by the supervisor). */
export interface CopyDeath {
  readonly code: number | null;
  /** It served (told the supervisor it was up) in this life. */
  readonly served: boolean;
  /** Every copy has served since the supervisor started (the start as a whole succeeded). */
  readonly allServedOnce: boolean;
  /** Deaths before serving of this copy in a row, this one not counted. */
  readonly startFailuresInRow: number;
}

export type CopyVerdict =
  | { readonly action: 'restart' }
  | { readonly action: 'stop'; readonly exitCode: 1 | 2; readonly why: 'config' | 'start' | 'start-loop' };

/**
 * Restart a dead copy, or stop them all? A copy that dies after serving is restarted (a crash). One
 * that fails its start is not, while the supervisor is still starting: every copy shares its
 * configuration, database and ports, so a single process would have exited 1 with the same line
 * (bad settings, a taken port, a database migrated by a newer version); restarting it for ever only
 * hid that line in a loop. Once all had served, a copy that then fails START_FAILURES_LIMIT starts
 * in a row stops them all too, so the service manager sees the failure.
 */
export function judgeCopyDeath(death: CopyDeath): CopyVerdict {
  if (death.code === 2) return { action: 'stop', exitCode: 2, why: 'config' };
  if (death.served) return { action: 'restart' };
  if (!death.allServedOnce) return { action: 'stop', exitCode: 1, why: 'start' };
  if (death.startFailuresInRow + 1 >= START_FAILURES_LIMIT) {
    return { action: 'stop', exitCode: 1, why: 'start-loop' };
  }
  return { action: 'restart' };
}

/** NODE_ID allows 64 characters: the base is cut so `-g<i>` always fits. */
export function childNodeId(base: string, index: number): string {
  const suffix = `-g${index}`;
  return `${base.slice(0, 64 - suffix.length)}${suffix}`;
}

/** A port free a moment ago on `host`: WS_PORT=0 must become one port that every copy binds. */
async function pickFreePort(host: string): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

interface Slot {
  readonly index: number;
  readonly nodeId: string;
  worker: Worker | undefined;
  startedAt: number;
  failuresInRow: number;
  restartTimer: NodeJS.Timeout | undefined;
  up: UpMessage | undefined;
  /** Deaths before serving in a row (reset when the copy serves). */
  startFailuresInRow: number;
  /** The reason the copy gave for its failed start, in this life. */
  startFailure: string | undefined;
}

/**
 * Runs `then` once the copy's IPC channel has closed too (at most 1 s after its exit): node:cluster
 * may report the exit before the last message, its reason for a failed start, has been read.
 */
function afterChannelClosed(worker: Worker, then: () => void): void {
  if (!worker.isConnected()) {
    then();
    return;
  }
  let done = false;
  const once = () => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    then();
  };
  const timer = setTimeout(once, 1_000);
  worker.once('disconnect', once);
}

/**
 * Starts the copies and supervises them until SIGTERM/SIGINT, then stops them all (each runs its
 * own ordered shutdown, bounded by SHUTDOWN_TIMEOUT_MS; one still alive a second later is
 * SIGKILLed). Resolves with the exit code for the supervisor: 0 when every copy stopped cleanly.
 */
export async function superviseProcesses(config: Config, log: Logger, signals: StopSignals): Promise<number> {
  const wsPort = config.ws.port === 0 ? await pickFreePort(config.host) : config.ws.port;
  const slots: Slot[] = Array.from({ length: config.gatewayProcesses }, (_, i) => ({
    index: i + 1,
    nodeId: childNodeId(config.nodeId, i + 1),
    worker: undefined,
    startedAt: 0,
    failuresInRow: 0,
    restartTimer: undefined,
    up: undefined,
    startFailuresInRow: 0,
    startFailure: undefined,
  }));
  let stopping = false;
  let announced = false;
  /** Exit code of each copy stopped by the supervisor (a signal other than our SIGTERM counts as 1). */
  const exitCodes = new Map<number, number>();
  let forcedExitCode: number | undefined;
  const exitCodeOf = (all: readonly Slot[]) =>
    forcedExitCode ?? (all.every((slot) => (exitCodes.get(slot.index) ?? 0) === 0) ? 0 : 1);
  let resolveStopped: (code: number) => void = () => undefined;
  const stopped = new Promise<number>((resolve) => {
    resolveStopped = resolve;
  });

  // /metrics of any copy shows every serving copy's series (copy-metrics.ts).
  const metricsMerger = createMetricsMerger(
    () => slots.flatMap((slot) => (slot.up !== undefined && slot.worker !== undefined ? [slot.worker] : [])),
    log,
  );
  const announceWhenAllUp = () => {
    if (announced || stopping || slots.some((slot) => slot.up === undefined)) return;
    announced = true;
    const first = slots[0]?.up;
    log.info(
      {
        processes: slots.map((slot) => ({ nodeId: slot.nodeId, pid: slot.worker?.process.pid })),
        urls: { websocket: first?.uwsUrl, openapi: `${first?.baseUrl}/openapi.json` },
      },
      `gigwire ${config.role} ×${slots.length} is up at ${first?.baseUrl}`,
    );
  };

  const start = (slot: Slot) => {
    slot.restartTimer = undefined;
    slot.up = undefined;
    slot.startFailure = undefined;
    slot.startedAt = Date.now();
    const worker = cluster.fork({
      NODE_ID: slot.nodeId,
      GATEWAY_PROCESSES: '1',
      WS_PORT: String(wsPort),
    });
    slot.worker = worker;
    metricsMerger.serve(worker);
    worker.on('message', (message: unknown) => {
      if (isStartFailedMessage(message)) {
        slot.startFailure = message.reason;
        return;
      }
      if (!isUpMessage(message)) return;
      slot.up = message;
      slot.startFailuresInRow = 0;
      log.info({ child: slot.nodeId, pid: worker.process.pid }, 'gateway process up');
      announceWhenAllUp();
    });
    worker.on('exit', (code, signal) => {
      slot.worker = undefined;
      if (stopping) {
        // Killed by the SIGTERM sent below (or Ctrl-C's SIGINT, which reaches the whole group):
        // the copy was still loading its modules, since main.ts handles both before it starts
        // anything, so nothing of it was running: a clean stop. SIGKILL (stuck) is not.
        exitCodes.set(slot.index, code ?? (signal === 'SIGTERM' || signal === 'SIGINT' ? 0 : 1));
        log.info({ child: slot.nodeId, code, signal }, 'gateway process stopped');
        if (slots.every((s) => s.worker === undefined)) resolveStopped(exitCodeOf(slots));
        return;
      }
      afterChannelClosed(worker, () => died(slot, code, signal));
    });
  };

  const died = (slot: Slot, code: number | null, signal: string | null) => {
    if (stopping) return;
    const verdict = judgeCopyDeath({
      code,
      served: slot.up !== undefined,
      allServedOnce: announced,
      startFailuresInRow: slot.startFailuresInRow,
    });
    if (verdict.action === 'stop') {
      const reason =
        slot.startFailure ??
        `it exited ${code === null ? `on ${signal}` : `with code ${code}`} before it was up`;
      if (verdict.why === 'config') {
        // Invalid configuration: every copy would fail alike, so restarting cannot help.
        log.fatal({ child: slot.nodeId }, 'gateway process refused its configuration; stopping all');
      } else {
        const failures = slot.startFailuresInRow + 1;
        log.fatal(
          { child: slot.nodeId, code, signal, reason, ...(verdict.why === 'start-loop' ? { failures } : {}) },
          verdict.why === 'start'
            ? 'gateway process failed to start; stopping every gateway process, not restarting it'
            : 'gateway process keeps failing to start; stopping every gateway process',
        );
        process.stderr.write(
          verdict.why === 'start'
            ? `gigwire: start failed: ${reason} (gateway process ${slot.nodeId}; every gateway process stopped)\n`
            : `gigwire: gateway process ${slot.nodeId} failed to start ${failures} times in a row after it had served, last: ${reason}; every gateway process stopped\n`,
        );
      }
      void stopAll(verdict.exitCode);
      return;
    }
    if (slot.up === undefined) slot.startFailuresInRow += 1;
    slot.failuresInRow = Date.now() - slot.startedAt >= HEALTHY_RUN_MS ? 1 : slot.failuresInRow + 1;
    const delayMs = restartDelayMs(slot.failuresInRow);
    log.error(
      {
        child: slot.nodeId,
        code,
        signal,
        restartInMs: delayMs,
        ...(slot.up === undefined ? { reason: slot.startFailure } : {}),
      },
      slot.up === undefined
        ? 'gateway process failed to start; restarting it'
        : 'gateway process died; restarting it',
    );
    slot.restartTimer = setTimeout(() => start(slot), delayMs);
  };

  const stopAll = async (exitCode?: number) => {
    if (stopping) return;
    stopping = true;
    forcedExitCode = exitCode;
    for (const slot of slots) {
      if (slot.restartTimer !== undefined) clearTimeout(slot.restartTimer);
      slot.restartTimer = undefined;
    }
    const running = slots.filter((slot) => slot.worker !== undefined);
    if (running.length === 0) {
      resolveStopped(exitCodeOf(slots));
      return;
    }
    for (const slot of running) {
      const worker = slot.worker;
      worker?.process.kill('SIGTERM');
    }
    // Each copy bounds its own shutdown by SHUTDOWN_TIMEOUT_MS; one that outlives that is stuck.
    const killTimer = setTimeout(() => {
      for (const slot of slots) {
        if (slot.worker === undefined) continue;
        log.error({ child: slot.nodeId }, 'gateway process did not stop in time; SIGKILL');
        slot.worker.process.kill('SIGKILL');
      }
    }, config.shutdownTimeoutMs + 1_000);
    killTimer.unref();
  };

  signals.handOver((signal) => {
    log.info({ signal }, stopping ? 'already shutting down' : 'shutting down every gateway process');
    void stopAll();
  });

  log.info(
    { processes: slots.length, wsPort, port: config.port, role: config.role },
    'starting gateway processes',
  );
  // A signal held while the modules loaded or the port was picked stopped everything already.
  if (!stopping) for (const slot of slots) start(slot);
  return stopped;
}
