import { type Kysely, sql } from 'kysely';

/**
 * Keyset cursors (src/domain/pagination.ts) carry a row's `created_at` as a JavaScript Date does:
 * to the millisecond. Tables whose `created_at` the database writes (`default now()`) stored
 * microseconds, so the cursor of a page's last row compared lower than that row and than every row
 * written in the same millisecond — rows written in one transaction share one `now()` — and the next
 * page skipped them all (seven users written together listed two). These tables now store
 * milliseconds, as the marketplace's code-written timestamps already do; ties are ordered by id.
 *
 * Statements run one by one: PGlite's query path takes a single statement per call.
 */
const TABLES = ['users', 'emails', 'notifications'] as const;

// Frozen once merged: change the schema with a new migration, never by editing this one.
export async function up(db: Kysely<unknown>): Promise<void> {
  for (const table of TABLES) {
    await sql
      .raw(`alter table ${table} alter column created_at set default date_trunc('milliseconds', now())`)
      .execute(db);
    await sql
      .raw(
        `update ${table} set created_at = date_trunc('milliseconds', created_at)
           where created_at <> date_trunc('milliseconds', created_at)`,
      )
      .execute(db);
  }
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of TABLES) {
    await sql.raw(`alter table ${table} alter column created_at set default now()`).execute(db);
  }
}
