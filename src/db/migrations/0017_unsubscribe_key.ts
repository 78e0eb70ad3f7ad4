import { type Kysely, sql } from 'kysely';

/**
 * The key that signs the one-click unsubscribe links of notification digests (RFC 8058,
 * src/domain/notifications/unsubscribe.ts): one row, 32 random bytes (base64url) written by the
 * first process that needs it (`insert … on conflict do nothing`, then read back, so every process
 * signs with the same key), as the JWT signing keys are when JWT_PRIVATE_KEY is unset. Deleting
 * the row invalidates every link mailed so far (a new key is made on the next use).
 *
 * `if not exists`, as 0015 and 0016: safe to run on a database where an operator created it first.
 */
// Frozen once merged: change the schema with a new migration, never by editing this one.
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`create table if not exists notification_unsubscribe_keys (
    singleton boolean primary key default true check (singleton),
    secret text not null check (char_length(secret) >= 43),
    created_at timestamptz not null default now()
  )`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop table if exists notification_unsubscribe_keys`.execute(db);
}
