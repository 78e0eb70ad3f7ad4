import { type Kysely, sql } from 'kysely';

/**
 * Indexes the retention job (src/domain/maintenance/retention.ts) finds old rows by, so each of its
 * batches reads the old end of a table instead of all of it. On columns that never change after the
 * insert, so they cost no HOT update (publishing an outbox event, settling a mail, using a token):
 * BRIN on the creation times of the append-mostly tables (a few pages each), a btree on the small
 * email-token table's expiry.
 *
 * Statements run one by one: PGlite's query path takes a single statement per call.
 */
const statements: readonly string[] = [
  'create index outbox_events_created_brin on outbox_events using brin (created_at)',
  'create index emails_created_brin on emails using brin (created_at)',
  'create index idempotency_keys_created_brin on idempotency_keys using brin (created_at)',
  'create index email_tokens_expires_idx on email_tokens (expires_at)',
];

// Frozen once merged: change the schema with a new migration, never by editing this one.
export async function up(db: Kysely<unknown>): Promise<void> {
  for (const statement of statements) await sql.raw(statement).execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const index of [
    'email_tokens_expires_idx',
    'idempotency_keys_created_brin',
    'emails_created_brin',
    'outbox_events_created_brin',
  ]) {
    await sql.raw(`drop index if exists ${index}`).execute(db);
  }
}
