/**
 * createDb: a Kysely instance on PostgreSQL (pg.Pool) when a URL is given, otherwise on embedded
 * PGlite (PostgreSQL compiled to WASM) persisted in a directory. Callers see the same Kysely<Database>.
 * PGlite runs PostgreSQL 18 while production servers may be 15: the test suite runs on a real 15.
 */
import { PGlite } from '@electric-sql/pglite';
import { Kysely, PGliteDialect, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { makeDirectories } from '../platform/directories.js';
import type { Logger } from '../platform/logger.js';
import type { Database } from './database.js';
import { PreparingClient } from './prepared-statements.js';

export type DbDialect = 'postgres' | 'pglite';

export interface DbHandle {
  readonly db: Kysely<Database>;
  readonly dialect: DbDialect;
  /**
   * Resolves when the database answers `select 1` within the timeout; rejects otherwise. On the
   * embedded database a `select 1` waits behind every query and transaction of the node (one
   * connection), so a busy node would look down: there it also resolves, a little before the
   * timeout, when some query finished within the last PGLITE_PROGRESS_MS (busy, not stuck).
   */
  readonly ping: (timeoutMs: number) => Promise<void>;
  /**
   * Runs `work` on a database whose statements have no client-side `queryTimeoutMs` (TCP keepalive
   * still on): for migrations, which may build an index over a large table or wait on another
   * process's migration lock far longer than a request may. PostgreSQL: a pool of one connection of
   * its own, ended when `work` settles. PGlite: `db` itself.
   */
  readonly unbounded: <T>(work: (db: Kysely<Database>) => Promise<T>) => Promise<T>;
  /** Ends the pool (or closes PGlite, flushing it to disk). */
  readonly close: () => Promise<void>;
}

/** PostgreSQL's type id of bigint (int8). */
const INT8_OID = 20;
/** The embedded database counts as answering while some query finished this recently. */
export const PGLITE_PROGRESS_MS = 5_000;
/** Idle time of a pooled connection before TCP keepalive probes start. */
const KEEPALIVE_INITIAL_DELAY_MS = 10_000;
/** How much later than the client's `query_timeout` the server's `statement_timeout` ends a statement. */
const SERVER_STATEMENT_GRACE_MS = 1_000;
/** What pg rejects a statement with when `query_timeout` ran out (errors.ts counts it UNAVAILABLE). */
const QUERY_TIMEOUT_MESSAGE = 'Query read timeout';

/**
 * PreparingClient that gives up on its connection when a statement got no answer within
 * `query_timeout`: pg rejects the statement but keeps the connection, the statement still in
 * flight on it, so the pool would hand it out again and the next statement would queue behind an
 * answer that may never come (a silently dead path). `end()` marks it ending at once (pg-pool
 * discards it on release) and destroys its socket.
 */
class BoundedClient extends PreparingClient {}
type QueryMethod = (this: pg.Client, ...args: unknown[]) => unknown;
const preparingQuery = PreparingClient.prototype.query as unknown as QueryMethod;
const endAfterTimeout = (client: pg.Client, error: unknown) => {
  if ((error as { message?: unknown } | null)?.message === QUERY_TIMEOUT_MESSAGE) {
    client.end().catch(() => undefined);
  }
};
const boundedQuery: QueryMethod = function (this: pg.Client, ...args) {
  const last = args.length - 1;
  const callback = args[last];
  if (typeof callback === 'function') {
    args[last] = (error: unknown, ...rest: unknown[]) => {
      if (error) endAfterTimeout(this, error);
      return (callback as (...a: unknown[]) => unknown)(error, ...rest);
    };
    return preparingQuery.apply(this, args);
  }
  const result = preparingQuery.apply(this, args);
  if (result instanceof Promise) {
    return result.catch((error: unknown) => {
      endAfterTimeout(this, error);
      throw error;
    });
  }
  return result;
};
Object.defineProperty(BoundedClient.prototype, 'query', { value: boundedQuery, writable: true });

export type DbTarget =
  | {
      readonly kind: 'postgres';
      readonly url: string;
      readonly poolMax: number;
      /**
       * Client-side bound of one statement (pg's `query_timeout`): with no answer within it the
       * statement fails ('Query read timeout', UNAVAILABLE) and its connection is discarded. It is
       * what bounds a statement on a path that died silently (no FIN, no RST), which TCP alone
       * notices only after ~15 min. Undefined or 0: none (one-shot commands, migrations).
       */
      readonly queryTimeoutMs?: number;
    }
  /** `dir` undefined = in memory (tests). */
  | { readonly kind: 'pglite'; readonly dir: string | undefined };

export async function createDb(
  target: DbTarget,
  log: Logger,
  options: { readonly progressMs?: number } = {},
): Promise<DbHandle> {
  let db: Kysely<Database>;
  let unbounded: DbHandle['unbounded'] | undefined;
  /** When a query last finished (PGlite only; performance.now). */
  let lastQueryEndedAt = Number.NEGATIVE_INFINITY;
  const progressMs = options.progressMs ?? PGLITE_PROGRESS_MS;
  if (target.kind === 'postgres') {
    const poolOptions = {
      connectionString: target.url,
      connectionTimeoutMillis: 5_000,
      idleTimeoutMillis: 30_000,
      // Probes an idle connection whose path died silently, so the pool learns of it.
      keepAlive: true,
      keepAliveInitialDelayMillis: KEEPALIVE_INITIAL_DELAY_MS,
    };
    const pool = newPool(
      log,
      {
        ...poolOptions,
        max: target.poolMax,
        ...(target.queryTimeoutMs ? { query_timeout: target.queryTimeoutMs } : {}),
      },
      target.queryTimeoutMs,
    );
    unbounded = async (work) => {
      const single = new Kysely<Database>({
        dialect: new PostgresDialect({ pool: newPool(log, { ...poolOptions, max: 1 }) }),
      });
      try {
        return await work(single);
      } finally {
        await single.destroy();
      }
    };
    db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  } else {
    if (target.dir !== undefined) makeDirectories(target.dir);
    const pglite = await PGlite.create({
      ...(target.dir === undefined ? {} : { dataDir: target.dir }),
      // bigint (int8) as its decimal text, as node-postgres returns it: PGlite's default (a number,
      // or a BigInt above 2^53) broke every 64-bit id the code reads as a string (ledger
      // transaction ids failed the response schema: a transfer answered 500 after moving money).
      parsers: { [INT8_OID]: (value: string) => value },
    });
    db = new Kysely<Database>({
      dialect: new PGliteDialect({ pglite }),
      log: () => {
        lastQueryEndedAt = performance.now();
      },
    });
  }
  return {
    db,
    dialect: target.kind,
    ping: async (timeoutMs) => {
      let timer: NodeJS.Timeout | undefined;
      // PGlite: decided a little before the caller's own deadline, by recent progress.
      const decideAfterMs = target.kind === 'pglite' ? Math.max(1, timeoutMs * 0.8) : timeoutMs;
      const timeout = new Promise<void>((resolve, reject) => {
        timer = setTimeout(() => {
          if (target.kind === 'pglite' && performance.now() - lastQueryEndedAt < progressMs) resolve();
          else reject(new Error(`no answer within ${timeoutMs} ms`));
        }, decideAfterMs);
      });
      try {
        await Promise.race([sql`select 1`.execute(db), timeout]);
      } finally {
        clearTimeout(timer);
      }
    },
    unbounded: unbounded ?? ((work) => work(db)),
    close: () => db.destroy(),
  };
}

/**
 * `sessionBoundMs` also bounds each session on the server: the client's `query_timeout` alone never
 * told PostgreSQL, so a statement the client gave up on (its connection closed) went on running
 * there (one waiting on a lock stays queued until the lock is free: a lock held for minutes left a
 * backend behind per pooled connection every bound, up to max_connections), and a transaction whose
 * node froze between two statements (a paused VM, a stopped process, a partition: the kernel still
 * answers keepalives) held its locks as long as the freeze. `statement_timeout` and
 * `idle_in_transaction_session_timeout` end both on the server (57014, 25P03: UNAVAILABLE). Set
 * with SET on each new connection, not as startup parameters, which PgBouncer refuses (in its
 * transaction mode a SET lands on one server connection: set both on the role there instead).
 * ops-review25-stuck-sessions.int.test.ts.
 */
function newPool(log: Logger, options: pg.PoolConfig, sessionBoundMs?: number): pg.Pool {
  const pool = new pg.Pool({ ...options, Client: BoundedClient });
  if (sessionBoundMs !== undefined && sessionBoundMs > 0) {
    const bound = Math.floor(sessionBoundMs);
    // The server's statement bound a little after the client's, so the client's stays the one a
    // statement meets (its connection dropped, as documented); the server's only ends what it left.
    const settings = `set statement_timeout = ${bound + SERVER_STATEMENT_GRACE_MS}; set idle_in_transaction_session_timeout = ${bound}`;
    // Queued before the statement of whoever asked for the connection (pg-pool emits 'connect'
    // before handing it out): a failure here fails that statement too, on a dead connection anyway.
    pool.on('connect', (client) => {
      client.query(settings).catch(() => undefined);
    });
  }
  // MUST: an idle client whose server went away emits 'error' on the pool; unhandled it kills the process.
  pool.on('error', (error) => log.warn({ err: error }, 'idle PostgreSQL connection lost'));
  // MUST: a checked-out client has no pool listener (an open transaction awaiting Redis, or a
  // query whose socket ends before it is released): a server restart then emits an unhandled
  // 'error' and kills the process. The query fails on its own and the pool drops the client on
  // release, so this listener only keeps the process alive.
  pool.on('connect', (client) =>
    client.on('error', (error) => log.debug({ err: error }, 'PostgreSQL connection lost')),
  );
  return pool;
}
