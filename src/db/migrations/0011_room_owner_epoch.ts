import { type Kysely, sql } from 'kysely';

/**
 * One writer per room across gateway nodes (issue 14): the node that takes a room over bumps
 * `owner_epoch` (and names itself in `owner_node`, for operators); every batch it writes carries
 * the epoch it took and locks the room row while comparing, so a deposed owner — paused, cut off,
 * or not yet aware that the room moved — cannot commit a single message once a newer epoch exists.
 *
 * Statements run one by one: PGlite's query path takes a single statement per call.
 */
const statements: readonly string[] = [
  'alter table rooms add column owner_epoch bigint not null default 0',
  'alter table rooms add column owner_node text',
];

// Frozen once merged: change the schema with a new migration, never by editing this one.
export async function up(db: Kysely<unknown>): Promise<void> {
  for (const statement of statements) await sql.raw(statement).execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql.raw('alter table rooms drop column owner_node').execute(db);
  await sql.raw('alter table rooms drop column owner_epoch').execute(db);
}
