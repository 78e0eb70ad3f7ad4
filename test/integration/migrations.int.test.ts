/**
 * Migrations run on both dialects gigwire supports: real PostgreSQL 15 (production) and embedded
 * PGlite (the zero-install default, PostgreSQL 18 in WASM).
 */
import { sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { createDb, type DbHandle } from '../../src/db/create-db.js';
import { migrateToLatest } from '../../src/db/migrate.js';
import { migrations } from '../../src/db/migrations/index.js';
import { ensureInstallation } from '../../src/db/repositories/installation.repo.js';
import { captureLogs, createEmptyDatabase, type TestDatabase } from '../support/context.js';

const allMigrations = Object.keys(migrations);
const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups) await cleanup();
});

async function openDialect(kind: 'postgres' | 'pglite'): Promise<DbHandle> {
  const { log } = captureLogs();
  if (kind === 'pglite') {
    const handle = await createDb({ kind: 'pglite', dir: undefined }, log);
    cleanups.push(handle.close);
    return handle;
  }
  const database: TestDatabase = await createEmptyDatabase();
  const handle = await createDb({ kind: 'postgres', url: database.url, poolMax: 4 }, log);
  cleanups.push(async () => {
    await handle.close();
    await database.drop();
  });
  return handle;
}

describe.each(['postgres', 'pglite'] as const)('migrations on %s', (kind) => {
  it('apply every migration once, then report the schema as current', async () => {
    const handle = await openDialect(kind);
    const { log, lines } = captureLogs();
    expect(await migrateToLatest(handle.db, log)).toEqual({ applied: allMigrations });
    expect(await migrateToLatest(handle.db, log)).toEqual({ applied: [] });
    expect(lines().map((l) => l.msg)).toEqual(['migrations applied', 'database schema is up to date']);

    const installation = await ensureInstallation(handle.db);
    expect(installation.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(await ensureInstallation(handle.db)).toEqual(installation);

    const { rows } = await sql<{
      version: string;
    }>`select current_setting('server_version_num') as version`.execute(handle.db);
    expect(Number(rows[0]?.version)).toBeGreaterThanOrEqual(150000);
  });
});
