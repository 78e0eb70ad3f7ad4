/**
 * The migrations at start are waited for like the first connection (STARTUP_WAIT_S): a PostgreSQL
 * restarting under their transaction ends it with 57P01 (admin_shutdown, what a fast shutdown sends
 * every session), and the start waits for the server to come back and runs them again (one
 * transaction, so nothing half-applied). kysely's migrator then releases its advisory lock on the
 * lost connection, which throws "Postgres connection has been discarded" in place of the 57P01:
 * that too must count as a server restarting, or the start fails at once.
 *
 * `npm run migrate` does the same (review 20: it failed at once before).
 *
 * Made deterministic with a lock instead of a restart: this test holds kysely_migration locked,
 * so the migrator's transaction waits on it; that session is then ended with pg_terminate_backend
 * (the same 57P01 a restart sends) and the lock let go.
 */
import { spawn } from 'node:child_process';
import { Writable } from 'node:stream';
import pg from 'pg';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { startupWait } from '../../src/bin/startup-wait.js';
import { createDb } from '../../src/db/create-db.js';
import { isDatabaseStartingUp } from '../../src/db/errors.js';
import { migrateToLatest } from '../../src/db/migrate.js';
import { createLogger } from '../../src/platform/logger.js';
import { createMigratedDatabase } from '../support/context.js';
import { untilDefined } from '../support/poll.js';
import { commandArguments } from '../support/spawn.js';

const log = createLogger({
  level: 'fatal',
  pretty: false,
  destination: new Writable({ write: (_chunk, _encoding, done) => done() }),
});

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

async function client(url: string): Promise<pg.Client> {
  const connection = new pg.Client({ connectionString: url });
  connection.on('error', () => undefined);
  await connection.connect();
  cleanups.push(() => connection.end());
  return connection;
}

describe('the migrations at start, under a PostgreSQL restart', () => {
  it('are waited for and run again when their session is ended mid-transaction (57P01)', async () => {
    const database = await createMigratedDatabase();
    cleanups.push(() => database.drop());
    const admin = await client(`${inject('postgresBaseUrl')}/postgres`);
    const holder = await client(database.url);
    const holderPid = (await holder.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]?.pid;
    await holder.query('begin');
    await holder.query('lock table kysely_migration in access exclusive mode');

    const handle = await createDb({ kind: 'postgres', url: database.url, poolMax: 1 }, log);
    cleanups.push(() => handle.close());
    const lines: string[] = [];
    // As start-node.ts runs them: the database's wait around dbHandle.unbounded(migrateToLatest).
    const wait = startupWait({
      boundMs: 60_000,
      what: 'PostgreSQL',
      isTransient: isDatabaseStartingUp,
      report: (line) => lines.push(line),
    });
    const migrated = wait.run(() => handle.unbounded((db) => migrateToLatest(db, log)));
    const outcome = migrated.then(
      (report) => ({ report }),
      (error: unknown) => ({ error }),
    );

    // The migrator's session, inside its transaction, waiting for the lock: ended as a restart would.
    await untilDefined(async () => {
      const ended = await admin.query(
        `select pg_terminate_backend(pid) from pg_stat_activity
          where datname = $1 and wait_event_type = 'Lock' and pid <> $2`,
        [database.name, holderPid],
      );
      return (ended.rowCount ?? 0) > 0 ? true : undefined;
    }, 'the migrator to wait for the lock');
    // The server "is back": the next attempt finds the lock free (or the run already ended).
    await Promise.race([
      untilDefined(async () => (lines.length > 0 ? true : undefined), 'a wait line'),
      outcome,
    ]);
    await holder.query('commit');

    expect(await outcome).toEqual({ report: { applied: [] } });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^waiting for PostgreSQL \(.+\), up to \d+ s more \(STARTUP_WAIT_S\)$/);
  });

  it('npm run migrate runs them again too, and exits 0', async () => {
    const database = await createMigratedDatabase();
    cleanups.push(() => database.drop());
    const admin = await client(`${inject('postgresBaseUrl')}/postgres`);
    const lock = await holdMigrationLock(database.url);
    const child = spawn(process.execPath, commandArguments('src/bin/migrate.ts'), {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', DATABASE_URL: database.url, LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    cleanups.push(async () => void child.kill('SIGKILL'));
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));

    await endLockWaiters(admin, database.name, lock.pid);
    await Promise.race([
      untilDefined(async () => (stderr.includes(': waiting for ') ? true : undefined), 'a wait line'),
      exited,
    ]);
    await lock.release();

    expect(await exited, stderr).toBe(0);
    const lines = stderr.split('\n').filter((line) => line !== '');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^gigwire: waiting for PostgreSQL at .+ \(.+\), up to \d+ s more \(STARTUP_WAIT_S\)$/,
    );
  });
});

/** Holds kysely_migration locked in a transaction of its own: a migrator waits on it. */
async function holdMigrationLock(url: string): Promise<{ pid: number; release: () => Promise<void> }> {
  const holder = await client(url);
  const pid = (await holder.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]?.pid;
  if (pid === undefined) throw new Error('no backend pid');
  await holder.query('begin');
  await holder.query('lock table kysely_migration in access exclusive mode');
  return { pid, release: async () => void (await holder.query('commit')) };
}

/** Ends (57P01, as a restart does) the sessions of `database` waiting for a lock, once there is one. */
async function endLockWaiters(admin: pg.Client, database: string, holderPid: number): Promise<void> {
  await untilDefined(async () => {
    const ended = await admin.query(
      `select pg_terminate_backend(pid) from pg_stat_activity
        where datname = $1 and wait_event_type = 'Lock' and pid <> $2`,
      [database, holderPid],
    );
    return (ended.rowCount ?? 0) > 0 ? true : undefined;
  }, 'the migrator to wait for the lock');
}
