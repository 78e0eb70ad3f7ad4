/**
 * Waiting at start for a PostgreSQL or Redis that is still starting up (STARTUP_WAIT_S). Started
 * together with its database (docker compose without healthchecks, systemd units, a Kubernetes
 * pod), a node meets "connection refused" or PostgreSQL's 57P03 "the database system is starting
 * up" for the first seconds. Such a failure is tried again after a short pause (0.25 s doubling
 * to 2 s), with one line on stderr per wait, until the bound is spent; then the last failure is
 * thrown as before. A permanent failure (wrong password, missing database) is thrown at once.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { describeError } from '../platform/describe-error.js';
import { isUnreachableCode } from '../platform/errors.js';
import type { Logger } from '../platform/logger.js';

/** The first pause; each next one doubles, up to MAX_PAUSE_MS. */
const FIRST_PAUSE_MS = 250;
const MAX_PAUSE_MS = 2_000;

/** Thrown when shutdown began while waiting: nothing failed, the process is being stopped. */
export class StartupWaitAborted extends Error {
  override readonly name = 'StartupWaitAborted';
}

export interface StartupWaitOptions {
  /**
   * Longest wait in ms (STARTUP_WAIT_S × 1000), counted from the start of the first attempt that
   * failed, so an attempt that took long to fail (an address that does not answer: PostgreSQL's
   * 5 s connect timeout) is part of it; 0 = none.
   */
  readonly boundMs: number;
  /** What is waited for, as shown: `PostgreSQL at db:5432`. */
  readonly what: string;
  /** Whether a failure may go away by itself soon (a server starting up), so waiting may help. */
  readonly isTransient: (error: unknown) => boolean;
  /** Shows one wait: `line` is ready for stderr (without the `gigwire: ` prefix). */
  readonly report: (line: string, error: unknown) => void;
  /** Aborted when the process begins to shut down: the wait ends with StartupWaitAborted. */
  readonly signal?: AbortSignal | undefined;
  /** Test seams. */
  readonly now?: () => number;
  readonly pause?: (ms: number, signal: AbortSignal | undefined) => Promise<void>;
}

export interface StartupWait {
  /**
   * Runs `work` until it succeeds, fails permanently, or the bound (shared by every `run` of this
   * wait) is spent; then throws its last failure unchanged.
   */
  run<T>(work: () => Promise<T>): Promise<T>;
}

/** The words shown in a wait line: the error's own message, else describeError's account of it. */
export function waitReason(error: unknown): string {
  const message = error instanceof Error ? error.message.trim() : '';
  return message === '' ? describeError(error) : message;
}

export function startupWait(options: StartupWaitOptions): StartupWait {
  const now = options.now ?? Date.now;
  const pause =
    options.pause ?? ((ms: number, signal: AbortSignal | undefined) => sleep(ms, undefined, { signal }));
  let deadline: number | undefined;
  let nextPauseMs = FIRST_PAUSE_MS;
  return {
    async run(work) {
      for (;;) {
        const attemptStartedAt = now();
        try {
          return await work();
        } catch (error) {
          if (error instanceof StartupWaitAborted) throw error;
          if (options.boundMs <= 0 || !options.isTransient(error)) throw error;
          if (options.signal?.aborted) {
            throw new StartupWaitAborted(`stopped while waiting for ${options.what}`, { cause: error });
          }
          deadline ??= attemptStartedAt + options.boundMs;
          const remainingMs = deadline - now();
          if (remainingMs <= 0) throw error;
          const pauseMs = Math.min(nextPauseMs, remainingMs);
          nextPauseMs = Math.min(nextPauseMs * 2, MAX_PAUSE_MS);
          options.report(
            `waiting for ${options.what} (${waitReason(error)}), up to ${Math.ceil(remainingMs / 1000)} s more (STARTUP_WAIT_S)`,
            error,
          );
          try {
            await pause(pauseMs, options.signal);
          } catch {
            throw new StartupWaitAborted(`stopped while waiting for ${options.what}`, { cause: error });
          }
        }
      }
    },
  };
}

/**
 * `host:port` of a DATABASE_URL or REDIS_URL for the wait line (never its credentials). A
 * PostgreSQL URL may name a unix-socket directory in `?host=` instead.
 */
export function endpointOf(url: string, defaultPort: number): string {
  try {
    const parsed = new URL(url);
    const host = parsed.hostname || parsed.searchParams.get('host') || 'localhost';
    return `${host}:${parsed.port || defaultPort}`;
  } catch {
    return 'an unparsable URL';
  }
}

const messageOf = (error: unknown): string => {
  const message = (error as { message?: unknown } | null | undefined)?.message;
  return typeof message === 'string' ? message : '';
};

/**
 * ioredis' text for a command with no answer within `commandTimeout` (REDIS_COMMAND_TIMEOUT_MS).
 * At start it is how both an address that does not answer and a Redis still loading its dataset
 * show: ioredis' ready check sees `loading:1` and holds the PING until the load ends, so the PING
 * never meets LOADING itself.
 */
const REDIS_COMMAND_TIMEOUT_MESSAGE = 'Command timed out';

/**
 * A Redis failure worth waiting out at start: the connection could not be made (refused, a name
 * not resolving yet, unreachable, timed out), no answer in time (an address that does not answer,
 * or a Redis still loading its dataset, see REDIS_COMMAND_TIMEOUT_MESSAGE), or Redis answers that
 * it is still loading (LOADING). `error` is what the client emitted while connecting when there was
 * something, else the command's own failure. An authentication failure (WRONGPASS, NOAUTH) or a
 * TLS error is permanent.
 */
export function isRedisStartupFailure(error: unknown): boolean {
  let current = error;
  for (let depth = 0; depth < 4 && typeof current === 'object' && current !== null; depth++) {
    if (isUnreachableCode((current as { code?: unknown }).code)) return true;
    const message = messageOf(current);
    if (/^LOADING\b/.test(message) || message === REDIS_COMMAND_TIMEOUT_MESSAGE) return true;
    const attempts = (current as { errors?: unknown }).errors;
    if (Array.isArray(attempts) && attempts.length > 0) return attempts.every(isRedisStartupFailure);
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}

/**
 * The wait of a process for one dependency, per STARTUP_WAIT_S: each wait is one line on stderr
 * (`gigwire: waiting for PostgreSQL at db:5432 (…), up to 29 s more (STARTUP_WAIT_S)`), the same
 * as a warning in the log.
 */
export function waitForDependency(
  settings: {
    readonly boundMs: number;
    readonly log: Pick<Logger, 'warn'>;
    readonly signal?: AbortSignal | undefined;
  },
  what: string,
  isTransient: (error: unknown) => boolean,
): StartupWait {
  return startupWait({
    boundMs: settings.boundMs,
    what,
    isTransient,
    signal: settings.signal,
    report: (line) => {
      settings.log.warn(line);
      process.stderr.write(`gigwire: ${line}\n`);
    },
  });
}
