import { type Kysely, sql } from 'kysely';

/**
 * Each provider webhook event is kept with its body (the JSON the provider signed, as parsed), so what
 * the provider told us can be read back next to what we did with it (`outcome`). Rows from before this
 * migration have none.
 */
const statements: readonly string[] = ['alter table provider_events add column payload jsonb'];

// Frozen once merged: change the schema with a new migration, never by editing this one.
export async function up(db: Kysely<unknown>): Promise<void> {
  for (const statement of statements) await sql.raw(statement).execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql.raw('alter table provider_events drop column payload').execute(db);
}
