/**
 * `npm run migrate`: brings the database of DATABASE_URL (or the embedded PGlite under DATA_DIR) to the
 * latest migration and exits. Safe beside running processes: migrations take an advisory lock.
 */
import { join } from 'node:path';
import { ConfigError, loadProcessConfig } from '../config/index.js';
import { createDb } from '../db/create-db.js';
import { migrateToLatest } from '../db/migrate.js';
import { lockDataDir } from '../platform/data-dir-lock.js';
import { createLogger } from '../platform/logger.js';

async function migrate(): Promise<number> {
  let config: ReturnType<typeof loadProcessConfig>;
  try {
    config = loadProcessConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`gigwire: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
  const log = createLogger({ level: config.logLevel, pretty: config.logPretty, base: { task: 'migrate' } });
  const release = config.databaseUrl === undefined ? lockDataDir(config.dataDir, process.pid) : undefined;
  try {
    const handle = await createDb(
      config.databaseUrl === undefined
        ? { kind: 'pglite', dir: join(config.dataDir, 'pglite') }
        : { kind: 'postgres', url: config.databaseUrl, poolMax: 1 },
      log,
    );
    try {
      await migrateToLatest(handle.db, log);
    } finally {
      await handle.close();
    }
    return 0;
  } catch (error) {
    process.stderr.write(
      `gigwire: migration failed: ${error instanceof Error ? error.message : String(error)}\n`,
    );
    return 1;
  } finally {
    release?.();
  }
}

process.exitCode = await migrate();
