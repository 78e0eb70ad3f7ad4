import { type Kysely, sql } from 'kysely';

/**
 * Job deadlines past 9999-12-31T23:59:59.999Z in UTC, which versions before the API refused them
 * could store (`9999-12-31T23:59:59Z` with a negative offset is year 10000 in UTC): `toISOString`
 * writes such an instant as `+010000-…`, no response schema accepts it, and every read of the job
 * and every board page listing it answered 500. They become that last instant, as far off as a
 * deadline can now be.
 */
// Frozen once merged: change the schema with a new migration, never by editing this one.
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`update jobs set deadline = timestamptz '9999-12-31 23:59:59.999+00' where deadline > timestamptz '9999-12-31 23:59:59.999+00'`.execute(
    db,
  );
}

/** Nothing to undo: the instants clamped are not kept. */
export async function down(_db: Kysely<unknown>): Promise<void> {}
