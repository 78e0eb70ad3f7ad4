import { type Kysely, sql } from 'kysely';

/**
 * The address a verification token confirmed, written when it is spent (`verifyEmail`): the same
 * link opened again within its validity (its first answer lost on a bad network) answers success
 * again while the user's current, verified address is still that one. Null for reset tokens,
 * unspent tokens and tokens spent before this migration (those stay refused, as before).
 */
// Frozen once merged: change the schema with a new migration, never by editing this one.
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table email_tokens add column verified_email text`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`alter table email_tokens drop column verified_email`.execute(db);
}
