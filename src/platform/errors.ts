/**
 * The one error type of gigwire. Its `code` comes from the closed ErrorCode set in protocol/, and each
 * edge maps codes through one exhaustive table (REST status, WebSocket reply or close, task retry).
 * Anything that is not an AppError is an INTERNAL fault at the edge.
 */
import type { ErrorCode } from '../../protocol/src/codes.js';

export class AppError extends Error {
  override readonly name = 'AppError';
  readonly code: ErrorCode;
  /** Safe to show to the client (validation issues, retry delays); never secrets. */
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    options: { details?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options.details;
  }
}

export const isAppError = (error: unknown): error is AppError => error instanceof AppError;

/**
 * SQLSTATE classes of a database that cannot serve the statement now, whatever the statement: 08
 * connection exception, 25 invalid transaction state (25006 read_only_sql_transaction: a failover
 * that landed the pool on a standby, or `default_transaction_read_only` set for maintenance), 53
 * insufficient resources (too many connections, out of memory, disk full), 57 operator
 * intervention (admin shutdown, cannot connect now, statement timeout), 58 system error; and
 * 55P03 lock_not_available alone of class 55 (a `lock_timeout` running out behind a lock held
 * elsewhere). As actors/room/room.state.ts `classifyWriteFailure` counts them, less 40 (a lost
 * serialization race is retried where it happens, and is not the database being down). Where a
 * lock timeout means something else, the code that set it says so first: an Idempotency-Key still
 * in flight (domain/payments/idempotency.ts) is answered CONFLICT, an AppError, never looked at here.
 */
const UNAVAILABLE_SQL_CLASSES = new Set(['08', '25', '53', '57', '58']);
const UNAVAILABLE_SQL_STATES = new Set(['55P03']);

/** Socket errors of a connection to a dependency that could not be made or was lost. */
const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/** Whether `code` is a socket error of a connection that could not be made or was lost (ECONNREFUSED, ENOTFOUND, …). */
export const isUnreachableCode = (code: unknown): boolean =>
  typeof code === 'string' && UNREACHABLE_CODES.has(code);

/**
 * What the clients throw, without a code, when they have no working connection: pg and pg-pool
 * (a connection that ended, a pool that could not connect in time or was ended at shutdown, a
 * statement with no answer within `query_timeout`, db/create-db.ts) and
 * ioredis (a closed connection, a command timeout, a stream refusing commands). MUST: these are
 * the pinned versions' exact texts; test/integration/errors-unavailable.test.ts makes the real clients throw the ones it can
 * without I/O, so an upgrade that changes them fails there.
 */
const UNAVAILABLE_MESSAGES = new Set([
  'Connection terminated',
  'Connection terminated unexpectedly',
  'Connection terminated due to connection timeout',
  'timeout exceeded when trying to connect',
  'Client has encountered a connection error and is not queryable',
  'Client was closed and is not queryable',
  'Cannot use a pool after calling end on the pool',
  'Query read timeout',
  'Connection is closed.',
  'Command timed out',
  "Stream isn't writeable and enableOfflineQueue options is false",
]);

/** ioredis's error classes for "no answer after the retries": by name, since this module imports no ioredis. */
const UNAVAILABLE_NAMES = new Set(['MaxRetriesPerRequestError', 'ClusterAllFailedError']);

/**
 * Redis error replies (their first word; ioredis names them ReplyError) of a server that cannot
 * serve now: a replica after a failover (READONLY, or MASTERDOWN when it serves no stale data),
 * loading its dataset (LOADING), busy in a script (BUSY), out of memory (OOM), unable to persist
 * (MISCONF), short of replicas (NOREPLICAS), a cluster down or resharding (CLUSTERDOWN, TRYAGAIN),
 * a blocking command cut by a role change (UNBLOCKED). A MULTI refused for one of them answers
 * EXECABORT, which ioredis gives the refusals as `previousErrors`.
 */
const UNAVAILABLE_REDIS_REPLIES = new Set([
  'READONLY',
  'MASTERDOWN',
  'LOADING',
  'BUSY',
  'OOM',
  'MISCONF',
  'NOREPLICAS',
  'CLUSTERDOWN',
  'TRYAGAIN',
  'UNBLOCKED',
]);

/** A Redis error reply that says the server cannot serve now (see UNAVAILABLE_REDIS_REPLIES). */
function isUnavailableRedisReply(name: unknown, message: unknown, previousErrors: unknown): boolean {
  if (name !== 'ReplyError' || typeof message !== 'string') return false;
  const word = message.split(' ', 1)[0] ?? '';
  if (UNAVAILABLE_REDIS_REPLIES.has(word)) return true;
  return (
    word === 'EXECABORT' &&
    Array.isArray(previousErrors) &&
    previousErrors.some((previous) => {
      const { name: previousName, message: previousMessage } = (previous ?? {}) as {
        name?: unknown;
        message?: unknown;
      };
      return isUnavailableRedisReply(previousName, previousMessage, undefined);
    })
  );
}

/**
 * Whether an error that is not an AppError says a dependency (PostgreSQL, Redis) cannot be reached
 * or cannot serve now (a read-only database or replica included), rather than a fault of ours:
 * answered UNAVAILABLE 503, "retry later". The error and its causes are looked at (a pool's
 * timeout wraps the socket error), a few levels deep.
 */
export function isDependencyUnavailable(error: unknown): boolean {
  let current = error;
  for (let depth = 0; depth < 4 && typeof current === 'object' && current !== null; depth++) {
    if (isAppError(current)) return false;
    const { code, message, name, statusCode, previousErrors } = current as {
      code?: unknown;
      message?: unknown;
      name?: unknown;
      statusCode?: unknown;
      previousErrors?: unknown;
    };
    // The client's own doing (an upload it aborted: Node's `aborted` carries ECONNRESET and 400).
    if (typeof statusCode === 'number' && statusCode >= 400 && statusCode < 500) return false;
    if (typeof code === 'string') {
      if (/^[0-9A-Z]{5}$/.test(code)) {
        if (UNAVAILABLE_SQL_CLASSES.has(code.slice(0, 2)) || UNAVAILABLE_SQL_STATES.has(code)) return true;
      }
      if (UNREACHABLE_CODES.has(code)) return true;
    }
    if (typeof message === 'string' && UNAVAILABLE_MESSAGES.has(message)) return true;
    if (typeof name === 'string' && UNAVAILABLE_NAMES.has(name)) return true;
    if (isUnavailableRedisReply(name, message, previousErrors)) return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}
