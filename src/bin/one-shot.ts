/**
 * Shared frame of the one-shot commands (`npm run migrate`, `keys:rotate`, `admin:create`): load the
 * configuration, open the database (taking the DATA_DIR lock for embedded PGlite), run, close, and
 * turn failures into one line on stderr and an exit code.
 */
import { join } from 'node:path';
import { type ParseArgsConfig, parseArgs } from 'node:util';
import type { Kysely } from 'kysely';
import { type Config, ConfigError, loadProcessConfig } from '../config/index.js';
import { createDb } from '../db/create-db.js';
import type { Database } from '../db/database.js';
import { isDatabaseStartingUp } from '../db/errors.js';
import { lockDataDir } from '../platform/data-dir-lock.js';
import { describeError } from '../platform/describe-error.js';
import { createLogger, type Logger } from '../platform/logger.js';
import { checkDatabaseUrl, inDataDir, withDataDir } from './startup-errors.js';
import { endpointOf, waitForDependency } from './startup-wait.js';

/**
 * The command line of a one-shot command: its options, or undefined after one line on stderr (what
 * is wrong, then the usage) and exit code 2. An unknown option, a missing value or a stray argument
 * is refused this way, never with a stack trace, and never ignored (a mistyped or unsupported
 * option must not run the command as if it were absent).
 */
export function commandLine<const T extends ParseArgsConfig['options']>(
  name: string,
  options: T,
  usage: string,
): ReturnType<typeof parseArgs<{ options: T; strict: true; allowPositionals: false }>>['values'] | undefined {
  try {
    return parseArgs({ options, strict: true, allowPositionals: false }).values;
  } catch (error) {
    process.stderr.write(
      `gigwire: ${name}: ${error instanceof Error ? error.message : String(error)}\n${usage}`,
    );
    process.exitCode = 2;
    return undefined;
  }
}

/**
 * A command on the embedded database finding `npm start` holding it. The server's advice ("give
 * this process its own DATA_DIR, or set DATABASE_URL and REDIS_URL") sent the operator to another,
 * empty database: `admin:create` then made an admin the running system never saw, and said it
 * had (review 32).
 */
export const COMMAND_BUSY_ADVICE =
  'stop it, then run this command again (it must open the embedded database that process holds; another DATA_DIR is another, empty database), or use the admin REST routes of the running node';

export interface OneShotContext {
  readonly config: Config;
  readonly db: Kysely<Database>;
  readonly log: Logger;
}

/** Runs `work` and sets process.exitCode: 0 on success, 1 on failure, 2 on invalid configuration. */
export async function runOneShot(
  name: string,
  work: (context: OneShotContext) => Promise<void>,
  options: {
    /**
     * `work` is one transaction that may simply run again (the migrations): a PostgreSQL restarting
     * under it is waited for, up to STARTUP_WAIT_S, and it runs again, as the migrations at a
     * node's start do. Off for commands whose retry after a lost commit outcome could act twice.
     */
    readonly rerunAfterRestart?: boolean;
  } = {},
): Promise<void> {
  let config: Config;
  try {
    config = loadProcessConfig('command');
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`gigwire: ${error.message}\n`);
      process.exitCode = 2;
      return;
    }
    throw error;
  }
  const log = createLogger({ level: config.logLevel, pretty: config.logPretty, base: { task: name } });
  let release: (() => void) | undefined;
  try {
    const { dataDir } = config;
    release =
      config.databaseUrl === undefined
        ? withDataDir(dataDir, () => lockDataDir(dataDir, process.pid, COMMAND_BUSY_ADVICE))
        : undefined;
    const pgliteDir = join(dataDir, 'pglite');
    const handle =
      config.databaseUrl === undefined
        ? await inDataDir(dataDir, pgliteDir, () => createDb({ kind: 'pglite', dir: pgliteDir }, log))
        : await createDb({ kind: 'postgres', url: config.databaseUrl, poolMax: 2 }, log);
    try {
      // A PostgreSQL started together with the command may not be up yet (STARTUP_WAIT_S).
      const wait =
        config.databaseUrl === undefined
          ? undefined
          : waitForDependency(
              { boundMs: config.startupWaitMs, log },
              `PostgreSQL at ${endpointOf(config.databaseUrl, 5432)}`,
              isDatabaseStartingUp,
            );
      if (config.databaseUrl !== undefined) await checkDatabaseUrl(handle, config.databaseUrl, wait);
      const run = () => work({ config, db: handle.db, log });
      await (wait !== undefined && options.rerunAfterRestart === true ? wait.run(run) : run());
    } finally {
      await handle.close();
    }
    process.exitCode = 0;
  } catch (error) {
    const pglite = config.databaseUrl === undefined ? join(config.dataDir, 'pglite') : undefined;
    process.stderr.write(
      `gigwire: ${name} failed: ${describeError(error, pglite === undefined ? {} : { dir: pglite })}\n`,
    );
    process.exitCode = 1;
  } finally {
    release?.();
  }
}
