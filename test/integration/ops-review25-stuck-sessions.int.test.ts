/**
 * Review 25: PostgreSQL sessions a node stopped tending. The pool bounded each statement on the
 * client only (`query_timeout`, DATABASE_QUERY_TIMEOUT_MS): the server was never told.
 * - A statement the client gave up on went on running on the server: one waiting on a lock stayed
 *   queued for it (its connection closed, which a backend waiting on a lock does not notice), so a
 *   lock held for minutes (a long migration, an operator's transaction) left one server backend
 *   behind per request and pool connection every 30 s until PostgreSQL refused every connection
 *   (max_connections), the holder's included.
 * - A transaction whose node froze between two statements (a VM paused, a process stopped, a
 *   partition: the kernel still answers TCP keepalives for a stopped process) held its row locks
 *   for as long as the freeze: the next owner of a room, a wallet's next transfer, waited for ever.
 * Now each pooled session has `statement_timeout` and `idle_in_transaction_session_timeout` at the
 * query bound, so PostgreSQL ends both itself.
 */
import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, type DbHandle } from '../../src/db/create-db.js';
import { isDependencyUnavailable } from '../../src/platform/errors.js';
import { captureLogs, createMigratedDatabase, type TestDatabase } from '../support/context.js';
import { untilDefined } from '../support/poll.js';

const LOCK_KEY = 250_025;
const IDLE_LOCK_KEY = 250_026;

describe('PostgreSQL ends the sessions a node stopped tending', () => {
  let database: TestDatabase;
  let handle: DbHandle;
  let direct: pg.Client;

  beforeAll(async () => {
    database = await createMigratedDatabase();
    handle = await createDb(
      { kind: 'postgres', url: database.url, poolMax: 2, queryTimeoutMs: 500 },
      captureLogs().log,
    );
    direct = new pg.Client({ connectionString: database.url });
    await direct.connect();
  });
  afterAll(async () => {
    await direct?.end();
    await handle?.close();
    await database?.drop();
  });

  /** Server backends of the pool's sessions still waiting for the lock. */
  const waitingForLock = async () =>
    Number(
      (
        await direct.query<{ n: string }>(
          `select count(*) as n from pg_stat_activity
            where datname = current_database() and pid <> pg_backend_pid()
              and wait_event_type = 'Lock' and query like '%pg_advisory_xact_lock(${LOCK_KEY})%'`,
        )
      ).rows[0]?.n,
    );

  it('a statement given up on by the client does not stay queued on the server', async () => {
    await direct.query('begin');
    await direct.query(`select pg_advisory_xact_lock(${LOCK_KEY})`);
    try {
      const error = await sql`select pg_advisory_xact_lock(${sql.lit(LOCK_KEY)})`.execute(handle.db).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isDependencyUnavailable(error)).toBe(true);
      // Before: the abandoned backend kept waiting for the lock as long as it was held.
      await untilDefined(
        async () => ((await waitingForLock()) === 0 ? true : undefined),
        'the abandoned statement to end on the server',
        5_000,
      );
    } finally {
      await direct.query('rollback');
    }
  });

  it('a transaction left idle by a frozen node gives up its locks', async () => {
    let thaw: () => void = () => undefined;
    const frozen = new Promise<void>((resolve) => {
      thaw = resolve;
    });
    let locked: () => void = () => undefined;
    const holding = new Promise<void>((resolve) => {
      locked = resolve;
    });
    const stuck = handle.db
      .transaction()
      .execute(async (trx) => {
        await sql`select pg_advisory_xact_lock(${sql.lit(IDLE_LOCK_KEY)})`.execute(trx);
        locked();
        await frozen; // the node stops between two statements
        await sql`select 1`.execute(trx);
      })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    await holding;
    try {
      // Before: this waited as long as the node stayed frozen (here, for ever).
      await direct.query(`set lock_timeout = '5s'`);
      await direct.query('begin');
      await direct.query(`select pg_advisory_xact_lock(${IDLE_LOCK_KEY})`);
      await direct.query('rollback');
    } finally {
      thaw();
      await direct.query('rollback');
      await direct.query('reset lock_timeout');
    }
    // The thawed transaction learns its session is gone: nothing of it was committed.
    expect(isDependencyUnavailable(await stuck)).toBe(true);
    const [row] = (await sql<{ one: number }>`select 1 as one`.execute(handle.db)).rows;
    expect(row?.one).toBe(1);
  });
});
