/**
 * Start-up failures that name the setting to fix. A refused connection or a taken port says only
 * `connect ECONNREFUSED 127.0.0.1:6379` or `Reached the max retries per request limit` (ioredis);
 * the person who ran `npm start` must learn which of DATABASE_URL, REDIS_URL, HOST/PORT, WS_PORT or
 * DATA_DIR it was. Each helper rethrows with one line `<SETTING> <value>: <what failed>`; URLs are
 * shown without their passwords.
 */
import { redactUrlCredentials } from '../config/index.js';
import type { DbHandle } from '../db/create-db.js';
import { DataDirBusyError } from '../platform/data-dir-lock.js';
import { describeError } from '../platform/describe-error.js';
import type { Redis } from '../platform/redis.js';
import { type StartupWait, StartupWaitAborted, waitReason } from './startup-wait.js';

/**
 * `<prefix>: <what failed>`. The original is kept as `cause` for the log line's stack, unless it is
 * (or wraps) a plain object such as PGlite's ErrnoError: main.ts would describe that again.
 */
function named(prefix: string, error: unknown, detail: unknown = error, dir?: string): Error {
  const line = `${prefix}: ${describeError(detail, dir === undefined ? {} : { dir })}`;
  const plain = (value: unknown) => typeof value === 'object' && value !== null && !(value instanceof Error);
  const keep = error instanceof Error && !plain(error.cause);
  return keep ? new Error(line, { cause: error }) : new Error(line);
}

/**
 * Longer than the pool's own connection timeout (5 s, src/db/create-db.ts), so a host that never
 * answers is reported in pg's words rather than ours.
 */
const DATABASE_CHECK_MS = 10_000;

/** No waiting: the work runs once. */
const NO_WAIT: StartupWait = { run: (work) => work() };

/**
 * One query on the pool, so a wrong host, port, user, password or database is reported as
 * DATABASE_URL's. With `wait`, a server not up yet is waited for (startup-wait.ts).
 */
export async function checkDatabaseUrl(
  handle: Pick<DbHandle, 'ping'>,
  url: string,
  wait: StartupWait = NO_WAIT,
): Promise<void> {
  try {
    await wait.run(() => handle.ping(DATABASE_CHECK_MS));
  } catch (error) {
    if (error instanceof StartupWaitAborted) throw error;
    throw named(`DATABASE_URL ${redactUrlCredentials(url)}: cannot use the database`, error);
  }
}

/**
 * A failed PING, told by what went wrong underneath when there was something: the connection error
 * the client emitted meanwhile (the PING's own "max retries per request" names no cause).
 */
class RedisPingFailure extends Error {
  constructor(
    readonly pingError: unknown,
    readonly connectionError: unknown,
  ) {
    const reason = connectionError ?? pingError;
    super(waitReason(reason), { cause: reason });
  }
}

/**
 * One PING. A client that cannot connect fails it with ioredis' "max retries per request", which
 * names neither Redis nor the cause: the connection error it emitted meanwhile is the one shown.
 * With `wait`, a Redis not up yet is waited for (startup-wait.ts; the client reconnects meanwhile).
 */
export async function checkRedisUrl(redis: Redis, url: string, wait: StartupWait = NO_WAIT): Promise<void> {
  let connectionError: unknown;
  const remember = (error: unknown) => {
    connectionError = error;
  };
  // A connection made: what fails from now on (a wrong password) is told by its own error.
  const connected = () => {
    connectionError = undefined;
  };
  redis.on('error', remember);
  redis.on('connect', connected);
  try {
    await wait.run(async () => {
      try {
        await redis.ping();
      } catch (error) {
        throw new RedisPingFailure(error, connectionError);
      }
    });
  } catch (error) {
    if (!(error instanceof RedisPingFailure)) throw error;
    throw named(
      `REDIS_URL ${redactUrlCredentials(url)}: cannot reach Redis`,
      error.pingError,
      error.connectionError ?? error.pingError,
    );
  } finally {
    redis.off('error', remember);
    redis.off('connect', connected);
  }
}

/** Runs `work` (taking the DATA_DIR lock, creating the directory); a file-system failure names DATA_DIR. */
export function withDataDir<T>(dataDir: string, work: () => T): T {
  try {
    return work();
  } catch (error) {
    // Already one line naming DATA_DIR and the process holding it.
    if (error instanceof DataDirBusyError) throw error;
    throw named(`DATA_DIR ${dataDir} is not usable`, error);
  }
}

const FILE_SYSTEM_CODES = new Set([
  'EACCES',
  'EPERM',
  'EROFS',
  'ENOSPC',
  'EDQUOT',
  'ENOTDIR',
  'EISDIR',
  'EEXIST',
  'ENOENT',
]);

/** A Node file-system error, or the embedded database's (PGlite's ErrnoError, bare or as a cause). */
function isFileSystemFailure(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  if ((error as { name?: unknown }).name === 'ErrnoError') return true;
  const { code, path } = error as { code?: unknown; path?: unknown };
  if (typeof code === 'string' && FILE_SYSTEM_CODES.has(code) && typeof path === 'string') return true;
  return error instanceof Error && isFileSystemFailure(error.cause);
}

/**
 * Runs `work`, which keeps files under `dir` inside DATA_DIR (the embedded database, the managed
 * Redis); a file-system failure (no permission, read-only, full) names DATA_DIR. Others pass unchanged.
 */
export async function inDataDir<T>(dataDir: string, dir: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (!isFileSystemFailure(error)) throw error;
    throw named(`DATA_DIR ${dataDir} is not usable`, error, error, dir);
  }
}

const LISTEN_CODES = new Set(['EADDRINUSE', 'EADDRNOTAVAIL']);

/** Whether `error` is a failure to bind an address (not, say, a plugin failing while Fastify gets ready). */
function isListenFailure(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const { code, syscall } = error as NodeJS.ErrnoException;
  if (syscall === 'listen' || syscall === 'bind' || syscall === 'getaddrinfo') return true;
  // uWebSockets.js reports only that it could not (src/gateway/uws.ts).
  return (code !== undefined && LISTEN_CODES.has(code)) || /could not listen/.test(error.message);
}

/**
 * Runs `work`, which listens; a failed listen (port taken, no permission, unknown HOST) names the
 * settings that chose the address, e.g. `HOST 127.0.0.1 PORT 3000`. Other failures pass unchanged.
 */
export async function listening<T>(settings: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (!isListenFailure(error)) throw error;
    throw named(`cannot listen on ${settings}`, error);
  }
}
