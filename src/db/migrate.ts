/**
 * Brings the schema to the latest migration. Safe to call from many processes at once: kysely's
 * Migrator takes a PostgreSQL advisory lock (pg_advisory_lock) for the whole run and applies the
 * pending migrations in one transaction, so a process that waited finds them applied and does
 * nothing. PGlite is single-process, so its lock is a no-op.
 */
import type { Kysely } from 'kysely';
import { Migrator } from 'kysely/migration';
import type { Logger } from '../platform/logger.js';
import type { Database } from './database.js';
import { migrations } from './migrations/index.js';

export interface MigrationReport {
  /** Names applied by this call; empty when the schema was already current. */
  readonly applied: readonly string[];
}

export async function migrateToLatest(db: Kysely<Database>, log: Logger): Promise<MigrationReport> {
  const migrator = new Migrator({
    db,
    provider: { getMigrations: async () => ({ ...migrations }) },
  });
  const { error, results } = await migrator.migrateToLatest();
  const applied = (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
  const failed = (results ?? []).find((r) => r.status === 'Error');
  if (error !== undefined) {
    log.error({ err: error, migration: failed?.migrationName }, 'migration failed');
    throw error instanceof Error ? error : new Error(`migration failed: ${String(error)}`);
  }
  if (applied.length > 0) log.info({ applied }, 'migrations applied');
  else log.info({ total: Object.keys(migrations).length }, 'database schema is up to date');
  return { applied };
}
