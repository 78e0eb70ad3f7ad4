import { type Kysely, sql } from 'kysely';

/**
 * The reconciler's look for provider events never applied (`unappliedProviderEvents`): partial, so
 * it holds only the events still `received` (almost every one leaves that state within seconds) and
 * the reconciler reads those instead of the whole table. `if not exists`: an operator may build it
 * first with `create index concurrently` on a large table (README "Upgrading").
 */
// Frozen once merged: change the schema with a new migration, never by editing this one.
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`create index if not exists provider_events_unapplied_idx on provider_events (received_at) where outcome = 'received'`.execute(
    db,
  );
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop index if exists provider_events_unapplied_idx`.execute(db);
}
