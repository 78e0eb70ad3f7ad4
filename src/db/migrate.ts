/**
 * Brings the schema to the latest migration. Safe to call from many processes at once: kysely's
 * Migrator takes a PostgreSQL advisory lock (pg_advisory_lock) for the whole run and applies the
 * pending migrations in one transaction, so a process that waited finds them applied and does
 * nothing. PGlite is single-process, so its lock is a no-op.
 */
import { type Kysely, sql } from 'kysely';
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
    // Only for kysely's "corrupted migrations" refusal: after any other failure the table may be
    // locked by another migrator or the server gone, and reading it would wait or fail again.
    const newer = isCorruptedMigrations(error) ? await newerSchema(db) : undefined;
    if (newer !== undefined) {
      log.error({ unknownMigrations: newer.unknown, latestKnown: newer.latest }, newer.message);
      throw new Error(newer.message);
    }
    log.error({ err: error, migration: failed?.migrationName }, 'migration failed');
    throw error instanceof Error ? error : new Error(`migration failed: ${String(error)}`);
  }
  if (applied.length > 0) log.info({ applied }, 'migrations applied');
  else log.info({ total: Object.keys(migrations).length }, 'database schema is up to date');
  return { applied };
}

/**
 * Migrations of this version not applied to the database yet (all of them on an empty database):
 * for commands that read the schema without migrating it (`npm run ledger:audit`), which would
 * otherwise fail on the first missing table or column (`relation "ledger_transactions" does not
 * exist`) instead of saying the database needs `npm run migrate`.
 */
export async function pendingMigrations(db: Kysely<Database>): Promise<string[]> {
  const migrator = new Migrator({
    db,
    provider: { getMigrations: async () => ({ ...migrations }) },
  });
  return (await migrator.getMigrations()).filter((m) => m.executedAt === undefined).map((m) => m.name);
}

/** Kysely's refusal of applied migrations it does not find where it expects them. */
const isCorruptedMigrations = (error: unknown): boolean =>
  error instanceof Error && error.message.startsWith('corrupted migrations:');

/**
 * Applied migrations this version does not have: the database was migrated by a newer gigwire (an
 * image rolled back, an old process restarted after the upgrade). Kysely refuses that as
 * "corrupted migrations: previously executed migration … is missing", which reads as damage to
 * repair; this says what happened and what to run instead. Undefined when every applied migration is
 * known (the failure is something else).
 */
async function newerSchema(
  db: Kysely<Database>,
): Promise<{ unknown: string[]; latest: string; message: string } | undefined> {
  const known = Object.keys(migrations).sort();
  const latest = known.at(-1) ?? '';
  const applied = await sql<{ name: string }>`select name from kysely_migration order by name`
    .execute(db)
    .then(
      (result) => result.rows.map((row) => row.name),
      () => [] as string[],
    );
  const unknown = applied.filter((name) => !(name in migrations));
  if (unknown.length === 0) return undefined;
  const newerOnly = unknown.every((name) => name > latest);
  const message = newerOnly
    ? `the database was migrated by a newer version of gigwire (it has migration ${unknown.join(', ')}; this version knows up to ${latest}): run that version or a later one; going back needs a backup taken before the upgrade`
    : `the database has migration ${unknown.join(', ')}, which this version of gigwire does not have (its migrations end at ${latest}): it was migrated by another build of gigwire; run that build`;
  return { unknown, latest, message };
}
