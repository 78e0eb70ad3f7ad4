import { type Kysely, sql } from 'kysely';

/**
 * The revocation feed behind `authenticate` (issue 15, src/domain/auth/revocation-feed.ts): every
 * change that can end an access token before its expiry leaves a row here, written by triggers so
 * that no path — the service's own, an operator's SQL, a cascade — can end a session unseen:
 * - a session revoked (revoked_at set), deleted while live, or moved to another user or id →
 *   (old user_id, old session_id);
 * - a user's session version, lock or roles changed, a session's absolute expiry moved earlier, or
 *   a user deleted → (user_id, null): that user's tokens are checked against the database again.
 * `xid` is the writing transaction's id: each node polls the rows its previous poll's snapshot could
 * not see (`xid >= xmin` through the index, then `not pg_visible_in_snapshot`), which cannot skip a
 * row that committed late (a timestamp watermark could) nor read one twice. `at` (the
 * database clock) decides how long a row matters (an access token's lifetime) and when it is pruned.
 *
 * `sessions.created_xid` lets the same poll pick up the sessions created since (logins on any node),
 * so a node knows a session's row before its first connect. Added without a default first and the
 * default set afterwards: a volatile default on ADD COLUMN would rewrite the table; older rows keep
 * null (they are read on first use, as before).
 *
 * Statements run one by one: PGlite's query path takes a single statement per call.
 */
const statements: readonly string[] = [
  `create table auth_revocations (
    xid xid8 not null default pg_current_xact_id(),
    at timestamptz not null default clock_timestamp(),
    user_id uuid not null,
    session_id uuid
  )`,
  'create index auth_revocations_xid_idx on auth_revocations (xid)',
  'create index auth_revocations_at_idx on auth_revocations (at)',
  'alter table sessions add column created_xid xid8',
  'alter table sessions alter column created_xid set default pg_current_xact_id()',
  'create index sessions_created_xid_idx on sessions (created_xid)',
  `create function auth_revocations_session() returns trigger language plpgsql as $$
  begin
    if tg_op = 'DELETE' or old.user_id is distinct from new.user_id or old.id is distinct from new.id then
      -- Deleted, or moved to another user or id (an operator's SQL): over for its tokens.
      insert into auth_revocations (user_id, session_id) values (old.user_id, old.id);
    elsif new.revoked_at is not null and old.revoked_at is null then
      insert into auth_revocations (user_id, session_id) values (new.user_id, new.id);
    else
      -- The absolute expiry moved earlier: tokens do not carry it, so the user is checked again.
      insert into auth_revocations (user_id, session_id) values (new.user_id, null);
    end if;
    return null;
  end $$`,
  `create trigger sessions_revoked after update of revoked_at, absolute_expires_at, user_id, id on sessions
    for each row when (
      (old.revoked_at is null and new.revoked_at is not null)
      or old.user_id is distinct from new.user_id
      or old.id is distinct from new.id
      or (new.revoked_at is null and new.absolute_expires_at < old.absolute_expires_at)
    ) execute function auth_revocations_session()`,
  `create trigger sessions_deleted after delete on sessions
    for each row when (old.revoked_at is null) execute function auth_revocations_session()`,
  `create function auth_revocations_user() returns trigger language plpgsql as $$
  begin
    insert into auth_revocations (user_id, session_id)
      values (case when tg_op = 'DELETE' then old.id else new.id end, null);
    return null;
  end $$`,
  `create trigger users_auth_changed after update of session_version, locked_at, roles on users
    for each row when (
      old.session_version is distinct from new.session_version
      or old.locked_at is distinct from new.locked_at
      or old.roles is distinct from new.roles
    ) execute function auth_revocations_user()`,
  'create trigger users_deleted after delete on users for each row execute function auth_revocations_user()',
  // TRUNCATE fires no row trigger: it would end sessions unseen, and every node would go on trusting
  // the rows it holds until the tokens expire. Refused; DELETE does the same and is reported.
  `create function auth_refuse_truncate() returns trigger language plpgsql as $$
  begin
    raise exception 'truncate of % refused: the revocation feed would not see it (use DELETE)', tg_table_name
      using errcode = 'restrict_violation';
  end $$`,
  `create trigger sessions_no_truncate before truncate on sessions
    for each statement execute function auth_refuse_truncate()`,
  `create trigger users_no_truncate before truncate on users
    for each statement execute function auth_refuse_truncate()`,
  // What ended before this migration while a token of it may still be valid (the longest access
  // TTL is a day): revoked sessions, and every user changed since (their tokens are read again).
  `insert into auth_revocations (user_id, session_id, at)
    select user_id, id, revoked_at from sessions where revoked_at > now() - interval '25 hours'`,
  `insert into auth_revocations (user_id, session_id, at)
    select id, null, updated_at from users where updated_at > now() - interval '25 hours'`,
];

// Frozen once merged: change the schema with a new migration, never by editing this one.
export async function up(db: Kysely<unknown>): Promise<void> {
  for (const statement of statements) await sql.raw(statement).execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const statement of [
    'drop trigger users_no_truncate on users',
    'drop trigger sessions_no_truncate on sessions',
    'drop function auth_refuse_truncate()',
    'drop trigger users_deleted on users',
    'drop trigger users_auth_changed on users',
    'drop function auth_revocations_user()',
    'drop trigger sessions_deleted on sessions',
    'drop trigger sessions_revoked on sessions',
    'drop function auth_revocations_session()',
    'drop table auth_revocations',
    'alter table sessions drop column created_xid',
  ])
    await sql.raw(statement).execute(db);
}
