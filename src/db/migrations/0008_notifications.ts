import { type Kysely, sql } from 'kysely';

/**
 * Notifications (issue 13): what each user was told, their per-type preferences, and the email
 * digests that batch what is mailed; outbox events carry the trace id of the action that wrote them.
 * - one notification per (event, recipient): `event_id` is the outbox event id, or a key of our own
 *   for notifications without an outbox event (`unread.<room>.<readSeq>`), so a task run twice, or
 *   enqueued twice, stores one row;
 * - at most one open digest per user (partial unique index); a notification meant for email points
 *   at the digest that will carry it, and a digest is closed once (open → sent | empty).
 *
 * Statements run one by one: PGlite's query path takes a single statement per call.
 */
const statements: readonly string[] = [
  // The action (REST request id, WebSocket connection and frame) that wrote an event: the relay
  // hands it to the event's tasks, so one id follows a user action into the workers' logs.
  'alter table outbox_events add column trace_id text',
  `create table notification_digests (
     id uuid primary key default gen_random_uuid(),
     user_id uuid not null references users (id) on delete cascade,
     status text not null default 'open' check (status in ('open', 'sent', 'empty')),
     due_at timestamptz not null,
     created_at timestamptz not null default now(),
     closed_at timestamptz,
     -- The emails row (idempotency key) of a sent digest.
     email_key text,
     check ((status = 'open') = (closed_at is null))
   )`,
  `create unique index notification_digests_one_open_idx on notification_digests (user_id)
     where status = 'open'`,

  `create table notifications (
     id uuid primary key default gen_random_uuid(),
     user_id uuid not null references users (id) on delete cascade,
     event_id text not null check (char_length(event_id) between 1 and 200),
     type text not null check (char_length(type) between 1 and 64),
     title text not null,
     body text not null,
     data jsonb not null default '{}'::jsonb,
     -- Listed, counted and pushed only when the user wants this type in the app.
     in_app boolean not null default true,
     digest_id uuid references notification_digests (id),
     trace_id text,
     created_at timestamptz not null default now(),
     pushed_at timestamptz,
     read_at timestamptz,
     unique (event_id, user_id)
   )`,
  'create index notifications_user_created_idx on notifications (user_id, created_at desc, id desc)',
  `create index notifications_user_unread_idx on notifications (user_id, created_at desc, id desc)
     where read_at is null`,
  'create index notifications_digest_idx on notifications (digest_id) where digest_id is not null',

  `create table notification_preferences (
     user_id uuid not null references users (id) on delete cascade,
     type text not null check (char_length(type) between 1 and 64),
     in_app boolean not null,
     email text not null check (email in ('never', 'offline', 'always')),
     updated_at timestamptz not null default now(),
     primary key (user_id, type)
   )`,
];

// Frozen once merged: change the schema with a new migration, never by editing this one.
export async function up(db: Kysely<unknown>): Promise<void> {
  for (const statement of statements) await sql.raw(statement).execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of ['notification_preferences', 'notifications', 'notification_digests']) {
    await sql.raw(`drop table if exists ${table}`).execute(db);
  }
  await sql.raw('alter table outbox_events drop column if exists trace_id').execute(db);
}
