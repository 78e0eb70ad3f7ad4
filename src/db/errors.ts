/**
 * PostgreSQL failures the code above reacts to, recognised by SQLSTATE (never by message text; a
 * connection that could not be made, by its socket code or pg's own fixed text), and the one retry
 * loop for transactions that lost a concurrency race. Every layer above uses these.
 */
import { isUnreachableCode } from '../platform/errors.js';

/** SQLSTATEs used by gigwire. */
export const SqlState = {
  UNIQUE_VIOLATION: '23505',
  CHECK_VIOLATION: '23514',
  RESTRICT_VIOLATION: '23001',
  SERIALIZATION_FAILURE: '40001',
  DEADLOCK_DETECTED: '40P01',
  ADMIN_SHUTDOWN: '57P01',
  CRASH_SHUTDOWN: '57P02',
  CANNOT_CONNECT_NOW: '57P03',
} as const;

const sqlState = (error: unknown): string | undefined => {
  const code = (error as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
};

const constraintOf = (error: unknown): string | undefined => {
  const constraint = (error as { constraint?: unknown } | null | undefined)?.constraint;
  return typeof constraint === 'string' ? constraint : undefined;
};

/**
 * A unique (or primary key) violation; with `constraint`, only one on that constraint or index
 * (pg reports the name; PGlite too).
 */
export function isUniqueViolation(error: unknown, constraint?: string): boolean {
  if (sqlState(error) !== SqlState.UNIQUE_VIOLATION) return false;
  return constraint === undefined || constraintOf(error) === constraint;
}

/** A CHECK constraint violation (or a trigger raising check_violation); optionally on one constraint. */
export function isCheckViolation(error: unknown, constraint?: string): boolean {
  if (sqlState(error) !== SqlState.CHECK_VIOLATION) return false;
  return constraint === undefined || constraintOf(error) === constraint;
}

/**
 * A failure that means "another transaction got there first; running the whole transaction again
 * may succeed": serialization failure (40001) and deadlock (40P01). Nothing of the failed attempt
 * was committed, so a retry cannot apply anything twice.
 */
export const isRetryableConflict = (error: unknown): boolean => {
  const state = sqlState(error);
  return state === SqlState.SERIALIZATION_FAILURE || state === SqlState.DEADLOCK_DETECTED;
};

export interface RetryOptions {
  /** Attempts in all, the first included (default 8). */
  readonly attempts?: number;
  /** Upper bound of the first back-off in ms; doubles per attempt, full jitter (default 5). */
  readonly baseDelayMs?: number;
  /** Called before each retry (metrics, debug logs). */
  readonly onRetry?: (error: unknown, attempt: number) => void;
}

/**
 * Runs `work` (which must open and finish its own transaction) again when it fails with a
 * serialization failure or deadlock, up to `attempts` times with jittered exponential back-off.
 * Any other error, and the last retryable one, is rethrown unchanged.
 */
export async function withSerializationRetry<T>(
  work: () => Promise<T>,
  options: RetryOptions = {},
): Promise<T> {
  const attempts = options.attempts ?? 8;
  const base = options.baseDelayMs ?? 5;
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (error) {
      if (!isRetryableConflict(error) || attempt >= attempts) throw error;
      options.onRetry?.(error, attempt);
      const delay = Math.random() * base * 2 ** (attempt - 1);
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}

/**
 * SQLSTATEs of a server that is not serving yet or is restarting: 57P03 cannot_connect_now ("the
 * database system is starting up", "… is in recovery mode", "… is shutting down"), 57P01
 * admin_shutdown and 57P02 crash_shutdown (a restart ended the connection).
 */
const STARTING_UP_STATES = new Set<string>([
  SqlState.CANNOT_CONNECT_NOW,
  SqlState.ADMIN_SHUTDOWN,
  SqlState.CRASH_SHUTDOWN,
]);

/**
 * What pg throws, without a code, when a connection being made was closed or got no answer in
 * time (`connectionTimeoutMillis`, db/create-db.ts): a server still binding its socket, a proxy in
 * front of one that is not up. The pinned versions' exact texts (see platform/errors.ts).
 * And kysely's text for a connection whose ROLLBACK failed (it was lost) being used again: its
 * migrator releases its advisory lock on that connection after a failed run, so a server restarting
 * under the migrations' transaction (57P01) ends the run with this error in place of the 57P01
 * (firsttry-review19b-startup-review.int.test.ts).
 */
const CONNECT_FAILURE_MESSAGES = new Set([
  'Connection terminated',
  'Connection terminated unexpectedly',
  'Connection terminated due to connection timeout',
  'timeout exceeded when trying to connect',
  'Postgres connection has been discarded',
]);

/**
 * Whether a failure to connect to PostgreSQL (or to run the first statements on it) says the server
 * is not up yet: no answer at the address (refused, reset, unreachable, timed out, a name not
 * resolving yet, a unix socket not created yet), or a server answering that it is starting up,
 * in recovery or restarting (57P03, 57P01, 57P02). What a starting node waits out (STARTUP_WAIT_S,
 * bin/startup-wait.ts). Anything else — a wrong password (28P01), a missing database (3D000) or
 * role (28000), a TLS or protocol error — is permanent: waiting cannot fix it. The error, its
 * causes and the attempts of an AggregateError (one per address of a host name) are looked at.
 */
export function isDatabaseStartingUp(error: unknown, depth = 0): boolean {
  if (typeof error !== 'object' || error === null || depth > 4) return false;
  const { code, message, syscall, errors, cause } = error as {
    code?: unknown;
    message?: unknown;
    syscall?: unknown;
    errors?: unknown;
    cause?: unknown;
  };
  if (typeof code === 'string') {
    if (STARTING_UP_STATES.has(code) || isUnreachableCode(code)) return true;
    // A unix-socket DATABASE_URL (host=/var/run/postgresql) before the server created its socket.
    if (code === 'ENOENT' && syscall === 'connect') return true;
  }
  if (typeof message === 'string' && CONNECT_FAILURE_MESSAGES.has(message)) return true;
  if (Array.isArray(errors) && errors.length > 0) {
    return errors.every((attempt) => isDatabaseStartingUp(attempt, depth + 1));
  }
  return isDatabaseStartingUp(cause, depth + 1);
}
