import { type Kysely, sql } from 'kysely';

/**
 * Indexes the retention job finds old auth rows by (src/db/repositories/retention.repo.ts), so each
 * of its batches reads the old end of the table instead of all of it:
 * - refresh tokens by expiry: set at the insert and never changed, so spending a token (an update
 *   of other columns) stays a HOT update;
 * - refresh tokens whose successor pair is still sealed, by spend time: partial, so it holds only
 *   the tokens spent within the last hour (the job clears the pair after that). It costs the spend
 *   its HOT update (spent_at and the predicate's column change), once per token, once per refresh;
 * - sessions by when they ended (absolute expiry or revocation, whichever is first): the expression
 *   `pruneEndedSessions` filters on. A revocation changes it (not a HOT update; once per session).
 *
 * Statements run one by one: PGlite's query path takes a single statement per call. `if not
 * exists`: on a large database an operator builds them first with `create index concurrently`
 * (README "Upgrading"), since a migration's build holds writes to both tables until it commits.
 */
const statements: readonly string[] = [
  'create index if not exists refresh_tokens_expires_idx on refresh_tokens (expires_at)',
  'create index if not exists refresh_tokens_sealed_spent_idx on refresh_tokens (spent_at) where successor_sealed is not null',
  `create index if not exists sessions_ended_idx on sessions
    (least(absolute_expires_at, coalesce(revoked_at, 'infinity'::timestamptz)))`,
];

// Frozen once merged: change the schema with a new migration, never by editing this one.
export async function up(db: Kysely<unknown>): Promise<void> {
  for (const statement of statements) await sql.raw(statement).execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const index of [
    'sessions_ended_idx',
    'refresh_tokens_sealed_spent_idx',
    'refresh_tokens_expires_idx',
  ]) {
    await sql.raw(`drop index if exists ${index}`).execute(db);
  }
}
