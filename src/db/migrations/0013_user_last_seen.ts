import { type Kysely, sql } from 'kysely';

/**
 * Last-seen times move to a narrow table of their own (issue 15). Every user going offline wrote
 * `users.last_seen_at`, and almost none of those updates could stay on their page (HOT): the rows
 * of `users` are wide and its pages full, so each one put a new row version into all six indexes
 * of the table, two of them GIN (the full-text expression recomputed). A disconnect storm of
 * 19 500 users wrote 32 MB of WAL and took PostgreSQL 0.66–0.74 s; the same upsert into this table
 * (one primary key, pages half empty so the next update stays on its page) 3.7 MB and 0.12 s once
 * each user has a row (9.4 MB, 0.31 s the first time).
 *
 * Statements run one by one: PGlite's query path takes a single statement per call.
 */
const statements: readonly string[] = [
  `create table user_last_seen (
    user_id uuid primary key references users (id) on delete cascade,
    last_seen_at timestamptz not null
  ) with (fillfactor = 50)`,
  'insert into user_last_seen (user_id, last_seen_at) select id, last_seen_at from users where last_seen_at is not null',
  'alter table users drop column last_seen_at',
];

// Frozen once merged: change the schema with a new migration, never by editing this one.
export async function up(db: Kysely<unknown>): Promise<void> {
  for (const statement of statements) await sql.raw(statement).execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql.raw('alter table users add column last_seen_at timestamptz').execute(db);
  await sql
    .raw('update users set last_seen_at = s.last_seen_at from user_last_seen s where s.user_id = users.id')
    .execute(db);
  await sql.raw('drop table user_last_seen').execute(db);
}
