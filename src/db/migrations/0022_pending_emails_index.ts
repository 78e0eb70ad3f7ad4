import { type Kysely, sql } from 'kysely';

/**
 * The email worker's look for mails left `pending` whose task is gone (`pendingEmailsBefore`, the
 * lost-mail sweep): partial, so it holds only the pending mails (a handful; more only while SMTP is
 * down), in the order the query reads them (`created_at`, `id`), instead of every mail kept.
 * `if not exists`, as 0016: an operator may build it first with `create index concurrently` on a
 * large table (README "Upgrading").
 */
// Frozen once merged: change the schema with a new migration, never by editing this one.
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`create index if not exists emails_pending_idx on emails (created_at, id) where status = 'pending'`.execute(
    db,
  );
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop index if exists emails_pending_idx`.execute(db);
}
