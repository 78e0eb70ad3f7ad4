/**
 * The gigwire process, loaded by `main.ts` once that file holds the signals. ROLE selects what it
 * runs (all, api, gateway, worker). Exit codes: 0 after a clean shutdown (also for a SIGTERM/SIGINT
 * that arrived before anything started); 1 on a start failure, a failed or late shutdown, or a fatal
 * error; 2 on invalid configuration (one line on stderr naming the variable).
 */
import cluster from 'node:cluster';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Config, ConfigError, loadProcessConfig } from '../config/index.js';
import { describeError } from '../platform/describe-error.js';
import { createLogger, type Logger } from '../platform/logger.js';
import { runShutdown } from '../platform/shutdown.js';
import type { StopSignals } from './early-signals.js';
import { type RunningNode, startNode } from './start-node.js';
import { StartupWaitAborted } from './startup-wait.js';
import { type StartFailedMessage, superviseProcesses, type UpMessage } from './supervisor.js';

function loadConfigOrExit(): Config {
  try {
    return loadProcessConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`gigwire: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
}

function describeUrls(baseUrl: string, uwsUrl: string | undefined): Record<string, string> {
  return {
    app: `${baseUrl}/`,
    // The REST API's description, not its base path `/v1`, which has no page of its own (404).
    openapi: `${baseUrl}/openapi.json`,
    docs: `${baseUrl}/docs`,
    websocket: uwsUrl ?? `${baseUrl.replace(/^http/, 'ws')}/ws`,
    ready: `${baseUrl}/health/ready`,
    live: `${baseUrl}/health/live`,
    metrics: `${baseUrl}/metrics`,
  };
}

/** Sends `message` to the supervisor when this process is a GATEWAY_PROCESSES copy; whether it went. */
async function tellSupervisor(message: StartFailedMessage): Promise<boolean> {
  const send = process.send?.bind(process);
  if (!cluster.isWorker || send === undefined || !process.connected) return false;
  return new Promise((settle) => {
    try {
      send(message, undefined, {}, (error) => settle(error === null || error === undefined));
    } catch {
      settle(false);
    }
  });
}

export async function runProcess(signals: StopSignals): Promise<void> {
  const config = loadConfigOrExit();
  const log: Logger = createLogger({
    level: config.logLevel,
    pretty: config.logPretty,
    base: { node: config.nodeId, role: config.role },
  });
  const signalledBeforeStart = signals.pending();
  if (signalledBeforeStart !== undefined) {
    log.info({ signal: signalledBeforeStart }, 'signal before start: nothing was started, exiting');
    process.exit(0);
  }
  if (config.gatewayProcesses > 1 && cluster.isPrimary) {
    // GATEWAY_PROCESSES: this process only supervises the copies (supervisor.ts); each runs main().
    process.exit(await superviseProcesses(config, log, signals));
  }

  // A signal may arrive while parts are still starting: shutdown waits for the start to settle, so
  // whatever it started (a redis-server child, the database) is always stopped. SHUTDOWN_TIMEOUT_MS
  // counts from the signal, so a start-up that hangs (a database that never answers) cannot hold the
  // process: at the deadline it exits 1, and the managed redis-server is stopped on exit.
  const shuttingDown = new AbortController();
  const starting = startNode(config, log, { pid: process.pid, shutdown: shuttingDown.signal });
  let stopping: Promise<never> | undefined;
  const stop = (reason: string, exitCode: 0 | 1): Promise<never> => {
    stopping ??= (async () => {
      log.info({ reason }, 'shutting down');
      const deadline = Date.now() + config.shutdownTimeoutMs;
      shuttingDown.abort();
      const node = await Promise.race([
        starting.catch(() => undefined),
        sleep(config.shutdownTimeoutMs, 'timeout' as const),
      ]);
      if (node === 'timeout') {
        log.error(
          { timeoutMs: config.shutdownTimeoutMs, waitingFor: 'start-up' },
          'shutdown did not finish in time',
        );
        process.exit(1);
      }
      const result = await runShutdown(node?.shutdownSteps ?? [], {
        log,
        timeoutMs: Math.max(1, deadline - Date.now()),
      });
      process.exit(exitCode === 0 ? result.exitCode : exitCode);
    })();
    return stopping;
  };
  // Ctrl-C under `npm start` delivers SIGINT twice (from the terminal and forwarded by npm), so a
  // repeated signal must not abort the shutdown; SHUTDOWN_TIMEOUT_MS bounds it instead.
  signals.handOver((signal) => {
    if (stopping !== undefined) log.info({ signal }, 'already shutting down');
    void stop(signal, 0);
  });
  process.on('uncaughtException', (error) => {
    log.fatal({ err: error }, 'uncaught exception');
    void stop('uncaughtException', 1);
  });
  process.on('unhandledRejection', (error) => {
    log.fatal({ err: error }, 'unhandled promise rejection');
    void stop('unhandledRejection', 1);
  });

  let node: RunningNode;
  try {
    node = await starting;
  } catch (error) {
    // A signal came while waiting for PostgreSQL or Redis (STARTUP_WAIT_S): nothing failed, and the
    // shutdown under way ends the process.
    if (error instanceof StartupWaitAborted && stopping !== undefined) await stopping;
    // startNode already stopped what it had started. One readable line for the person who ran the
    // command; the log line carries the stack.
    log.fatal({ err: error }, 'start failed');
    const pglite = config.databaseUrl === undefined ? join(config.dataDir, 'pglite') : undefined;
    const reason = describeError(error, pglite === undefined ? {} : { dir: pglite });
    // A copy under GATEWAY_PROCESSES tells its supervisor, which writes the one line (once, not
    // once per copy) and stops the others instead of restarting this one for ever.
    if (!(await tellSupervisor({ t: 'gigwire.start-failed', reason }))) {
      process.stderr.write(`gigwire: start failed: ${reason}\n`);
    }
    process.exit(1);
  }
  if (stopping === undefined) {
    log.info(
      { urls: describeUrls(node.baseUrl, node.uwsUrl) },
      `gigwire ${config.role} is up at ${node.baseUrl}`,
    );
    if (cluster.isWorker) {
      const up: UpMessage = { t: 'gigwire.up', baseUrl: node.baseUrl, uwsUrl: node.uwsUrl };
      process.send?.(up);
    }
  }
}
