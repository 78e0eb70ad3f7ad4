import { type Kysely, sql } from 'kysely';

/**
 * Job search keeps using its GIN indexes right after a burst of postings (issue 12, the search check
 * over a few thousand jobs). With GIN's default `fastupdate = on`, new entries wait in a pending
 * list, unsorted, until a VACUUM (or 4 MB of them) merges it; every search scans that list, and the
 * planner prices it in: after 3 000 fresh jobs it estimated jobs_search_idx at 71 for a term in 1/24
 * of the jobs (13 once merged) and ranked them after a sequential scan instead.
 * Jobs are posted rarely and searched often, so the inserts pay (each posting updates the index
 * entries of its words at once) and searches get a steady cost — the trade the PostgreSQL manual
 * recommends when "consistent response time is more important than update speed".
 * The pending lists are merged here, as turning fastupdate off does not do it by itself.
 *
 * Statements run one by one: PGlite's query path takes a single statement per call.
 */
const statements: readonly string[] = [
  'alter index jobs_search_idx set (fastupdate = off)',
  'alter index jobs_skills_idx set (fastupdate = off)',
  `select gin_clean_pending_list('jobs_search_idx'::regclass)`,
  `select gin_clean_pending_list('jobs_skills_idx'::regclass)`,
];

// Frozen once merged: change the schema with a new migration, never by editing this one.
export async function up(db: Kysely<unknown>): Promise<void> {
  for (const statement of statements) await sql.raw(statement).execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql.raw('alter index jobs_search_idx reset (fastupdate)').execute(db);
  await sql.raw('alter index jobs_skills_idx reset (fastupdate)').execute(db);
}
