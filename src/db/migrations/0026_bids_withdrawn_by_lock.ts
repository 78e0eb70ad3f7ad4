import { type Kysely, sql } from 'kysely';

/**
 * Marks the bids an account lock withdrew (`retireLockedAccount`), so that they do not count toward
 * the worker's bids on the job (MAX_BIDS_PER_WORKER_PER_JOB): the worker never withdrew them, and
 * once unlocked they were refused a bid the limit should have let through. A constant default: no
 * table rewrite.
 */
// Frozen once merged: change the schema with a new migration, never by editing this one.
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table bids add column withdrawn_by_lock boolean not null default false`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`alter table bids drop column withdrawn_by_lock`.execute(db);
}
