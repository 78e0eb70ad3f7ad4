import { type Kysely, sql } from 'kysely';

/**
 * The marketplace workers' look for review windows closed with a review still blind whose
 * `reviews.publish` task is gone (`contractsWithOverdueBlindReviews`, the review-window sweep):
 * partial, so it holds only the blind reviews (those of windows still open, a small share of all)
 * instead of every review kept. `if not exists`, as 0022: an operator may build it first with
 * `create index concurrently` on a large table (README "Upgrading").
 */
// Frozen once merged: change the schema with a new migration, never by editing this one.
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`create index if not exists reviews_blind_idx on reviews (contract_id) where published_at is null`.execute(
    db,
  );
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop index if exists reviews_blind_idx`.execute(db);
}
