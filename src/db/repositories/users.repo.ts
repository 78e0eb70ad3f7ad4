/** Queries on users and contacts. Plain functions over `db` or a transaction. */
import { type Kysely, type Selectable, sql, type Transaction, type Updateable } from 'kysely';
import type { UserId } from '../../../protocol/src/ids.js';
import type { Database } from '../database.js';
import { preparedStatementMark } from '../prepared-statements.js';
import type { UsersTable } from '../tables/users.table.js';

export type UserRow = Selectable<UsersTable>;

/**
 * What the profile answers (GET /v1/me, GET /v1/users/:id) read of a user: the public and own
 * profile fields and whether the account is locked. Not the password hash, the search document or
 * the session version: a profile read never needs them, and they were most of a row's bytes.
 */
export type ProfileRow = Pick<
  UserRow,
  | 'id'
  | 'username'
  | 'email'
  | 'email_verified_at'
  | 'roles'
  | 'display_name'
  | 'bio'
  | 'avatar_url'
  | 'location'
  | 'skills'
  | 'hourly_rate_amount'
  | 'hourly_rate_currency'
  | 'availability'
  | 'portfolio_links'
  | 'locked_at'
  | 'created_at'
>;
type Db = Kysely<Database> | Transaction<Database>;

/**
 * `<`, `>` and `/` as blanks, in the search document and in each searched word (migration 0025):
 * PostgreSQL's parser drops `<word …>` as an HTML tag and keeps `UI/UX` or `React/Redux` as one
 * file-path token, so a bio "UI/UX designer" was not found by `ux`; typed `UI/UX` is then `ui`
 * followed by `ux`, as the document holds it.
 */
const asBlanks = (text: string): string => text.replace(/[<>/]/g, ' ');

/** The words a user is found by: maintained on every write that changes one of them. */
export function searchDocumentOf(user: {
  username: string;
  display_name: string | null;
  bio: string | null;
  location: string | null;
  skills: readonly string[];
}): string {
  return asBlanks(
    [user.username, user.display_name, user.bio, user.location, ...user.skills]
      .filter((part): part is string => typeof part === 'string' && part !== '')
      .join(' '),
  );
}

export interface NewUser {
  readonly username: string;
  readonly email: string;
  readonly passwordHash: string;
  readonly roles: readonly string[];
  readonly emailVerifiedAt?: Date;
}

export async function insertUser(db: Db, user: NewUser): Promise<UserRow> {
  return db
    .insertInto('users')
    .values({
      username: user.username,
      email: user.email,
      password_hash: user.passwordHash,
      roles: [...user.roles],
      email_verified_at: user.emailVerifiedAt ?? null,
      display_name: null,
      bio: null,
      avatar_url: null,
      location: null,
      hourly_rate_amount: null,
      hourly_rate_currency: null,
      availability: null,
      locked_at: null,
      search_document: searchDocumentOf({
        username: user.username,
        display_name: null,
        bio: null,
        location: null,
        skills: [],
      }),
    })
    .returningAll()
    .executeTakeFirstOrThrow();
}

export function findUserById(db: Db, id: UserId): Promise<UserRow | undefined> {
  return db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
}

/** The user's row, locked until the transaction ends (a read-merge-write of their profile). */
export function lockUserById(trx: Transaction<Database>, id: UserId): Promise<UserRow | undefined> {
  return trx.selectFrom('users').selectAll().where('id', '=', id).forUpdate().executeTakeFirst();
}

/**
 * The rows of several users, locked until the transaction ends, taken in id order (one statement):
 * two transactions locking the same pair (two admins locking each other) queue instead of deadlocking.
 */
export function lockUsersByIds(trx: Transaction<Database>, ids: readonly UserId[]): Promise<UserRow[]> {
  return trx.selectFrom('users').selectAll().where('id', 'in', ids).orderBy('id').forUpdate().execute();
}

/**
 * Whether the user's account is locked, read under FOR SHARE: an admin's lock (an UPDATE of the row)
 * waits for the caller's transaction, or the caller sees the lock it waited for. undefined: no user.
 */
export async function lockedAtShared(
  trx: Transaction<Database>,
  id: UserId,
): Promise<Date | null | undefined> {
  const row = await trx
    .selectFrom('users')
    .select('locked_at')
    .where('id', '=', id)
    .forShare()
    .executeTakeFirst();
  return row === undefined ? undefined : row.locked_at;
}

/** Several users in one query (the per-tick batch of GET /v1/me); rows in no particular order. */
/**
 * The profile rows of the given ids (missing ids are simply absent), behind every GET /v1/me: a
 * prepared statement (src/db/prepared-statements.ts) with one fixed text for any number of ids,
 * the ids as one uuid[] parameter, explicit result columns.
 */
export async function findProfilesByIds(db: Db, ids: readonly UserId[]): Promise<ProfileRow[]> {
  if (ids.length === 0) return [];
  const { rows } = await sql<ProfileRow>`${sql.raw(preparedStatementMark('user_profiles_by_ids'))}
    select id, username, email, email_verified_at, roles, display_name, bio, avatar_url, location,
      skills, hourly_rate_amount, hourly_rate_currency, availability, portfolio_links, locked_at, created_at
    from users where id = any(${[...ids]}::uuid[])`.execute(db);
  return rows;
}

/** By username or email, case-insensitively. */
export function findUserByLogin(db: Db, login: string): Promise<UserRow | undefined> {
  const key = login.trim().toLowerCase();
  return db
    .selectFrom('users')
    .selectAll()
    .where((eb) => eb.or([eb(sql`lower(username)`, '=', key), eb(sql`lower(email)`, '=', key)]))
    .executeTakeFirst();
}

export function findUserByEmail(db: Db, email: string): Promise<UserRow | undefined> {
  return db
    .selectFrom('users')
    .selectAll()
    .where(sql`lower(email)`, '=', email.trim().toLowerCase())
    .executeTakeFirst();
}

export async function updateUser(
  db: Db,
  id: UserId,
  changes: Updateable<UsersTable>,
): Promise<UserRow | undefined> {
  return db
    .updateTable('users')
    .set({ ...changes, updated_at: sql`now()` })
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirst();
}

/**
 * Replaces the user's password hash only while it is still `from` (a rehash on login must never put
 * a password back over a change or reset that committed meanwhile). @returns whether it was replaced
 */
export async function replacePasswordHash(db: Db, id: UserId, from: string, to: string): Promise<boolean> {
  const result = await db
    .updateTable('users')
    .set({ password_hash: to, updated_at: sql`now()` })
    .where('id', '=', id)
    .where('password_hash', '=', from)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

/** Ends every access token of the user: they carry the old session version. */
export async function bumpSessionVersion(
  db: Db,
  id: UserId,
  changes: Updateable<UsersTable> = {},
): Promise<void> {
  await db
    .updateTable('users')
    .set({ ...changes, session_version: sql`session_version + 1`, updated_at: sql`now()` })
    .where('id', '=', id)
    .execute();
}

export interface KeysetCursor {
  readonly createdAt: string;
  readonly id: string;
}

/**
 * A word as a quoted tsquery operand matching by prefix (`'jane.smith':*`): inside the quotes it is
 * text, never syntax (a backslash and a quote escaped), and to_tsquery cuts it into lexemes with the
 * parser and lower case of the document's to_tsvector (a word of several lexemes, "o'brien", must
 * find them side by side).
 */
const prefixOperand = (word: string): string =>
  `'${asBlanks(word).replace(/\\/g, '\\\\').replace(/'/g, "''")}':*`;

export interface UserSearch {
  /** Words as typed, each matched as a prefix (any characters: quoted into the tsquery). */
  readonly terms: readonly string[];
  readonly skill: string | undefined;
  readonly location: string | undefined;
  readonly role: string | undefined;
  readonly after: KeysetCursor | undefined;
  readonly limit: number;
}

/** Newest first, keyset-paginated on (created_at, id). Locked users are never listed. */
export function searchUsers(db: Db, search: UserSearch, includeLocked = false): Promise<UserRow[]> {
  let query = db.selectFrom('users').selectAll();
  if (!includeLocked) query = query.where('locked_at', 'is', null);
  if (search.role !== undefined) query = query.where(sql<boolean>`${search.role} = any(roles)`);
  // `@>` (not `= any(skills)`, which no index serves): a skill nobody has is answered from the GIN
  // index `users_skills_idx`, not by walking every user newest first in search of 21 matches.
  if (search.skill !== undefined)
    query = query.where(sql<boolean>`skills @> ${sql.val([search.skill])}::text[]`);
  if (search.location !== undefined) {
    const escaped = search.location.replace(/[\\%_]/g, (c) => `\\${c}`);
    query = query.where('location', 'ilike', `%${escaped}%`);
  }
  if (search.terms.length > 0) {
    const tsquery = search.terms.map(prefixOperand).join(' & ');
    // The matching ids come from the GIN index `users_search_idx`, planned on their own (OFFSET 0
    // keeps PostgreSQL from merging the subquery into this one). As one query's filter the planner
    // chose to walk the users newest first, recomputing to_tsvector of each profile (bio and all)
    // until 21 matched: a word nobody has read every user's profile — seconds per request.
    query = query.where(
      sql<boolean>`id in (select matched.id from users matched
        where to_tsvector('simple', matched.search_document) @@ to_tsquery('simple', ${tsquery}) offset 0)`,
    );
  }
  if (search.after !== undefined) {
    const { createdAt, id } = search.after;
    query = query.where(sql<boolean>`(created_at, id) < (${createdAt}::timestamptz, ${id}::uuid)`);
  }
  return query.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(search.limit).execute();
}

/**
 * Adds `contactId` to the user's contacts unless they already hold `max` others of unlocked accounts
 * (the ones `listContacts` shows). One user's additions run one at a time (a transaction-scoped
 * advisory lock keyed by the user, taken first and alone, so it cannot deadlock with row locks), so
 * parallel requests cannot pass the cap together.
 * @returns 'added', 'exists' (already a contact: nothing changes, never refused) or 'full'.
 */
export function addContactWithin(
  db: Kysely<Database>,
  userId: UserId,
  contactId: UserId,
  max: number,
): Promise<'added' | 'exists' | 'full'> {
  return db.transaction().execute(async (trx) => {
    await sql`select pg_advisory_xact_lock(hashtext(${`contacts:${userId}`}))`.execute(trx);
    const existing = await trx
      .selectFrom('contacts')
      .select('contact_id')
      .where('user_id', '=', userId)
      .where('contact_id', '=', contactId)
      .executeTakeFirst();
    if (existing !== undefined) return 'exists';
    // Contacts whose account is locked are not counted: `listContacts` hides them (the profile is
    // gone), so the owner could neither see them nor remove them to make room.
    const { count } = await trx
      .selectFrom('contacts')
      .innerJoin('users', 'users.id', 'contacts.contact_id')
      .select((eb) => eb.fn.countAll<string>().as('count'))
      .where('contacts.user_id', '=', userId)
      .where('users.locked_at', 'is', null)
      .executeTakeFirstOrThrow();
    if (Number(count) >= max) return 'full';
    await trx
      .insertInto('contacts')
      .values({ user_id: userId, contact_id: contactId })
      .onConflict((oc) => oc.columns(['user_id', 'contact_id']).doNothing())
      .execute();
    return 'added';
  });
}

/** @returns whether a contact was removed (false: there was none). */
export async function removeContact(db: Db, userId: UserId, contactId: UserId): Promise<boolean> {
  const result = await db
    .deleteFrom('contacts')
    .where('user_id', '=', userId)
    .where('contact_id', '=', contactId)
    .executeTakeFirst();
  return Number(result.numDeletedRows) > 0;
}

export function listContacts(db: Db, userId: UserId): Promise<(UserRow & { added_at: Date })[]> {
  return (
    db
      .selectFrom('contacts')
      .innerJoin('users', 'users.id', 'contacts.contact_id')
      .selectAll('users')
      .select('contacts.created_at as added_at')
      .where('contacts.user_id', '=', userId)
      // A locked account's profile is gone everywhere else (404); the contact row stays for an unlock.
      .where('users.locked_at', 'is', null)
      .orderBy('contacts.created_at', 'desc')
      .execute()
  );
}

/**
 * Which of `candidateIds` are mutual contacts of the user: each added the other, and their account
 * is not locked (a locked account's profile is 404 and hidden from contact lists, so its presence is
 * not shown either). One statement over the (user_id, contact_id) primary key in both directions.
 */
export async function mutualContactIdsAmong(
  db: Db,
  userId: UserId,
  candidateIds: readonly UserId[],
): Promise<Set<UserId>> {
  if (candidateIds.length === 0) return new Set();
  const rows = await db
    .selectFrom('contacts as mine')
    .innerJoin('contacts as theirs', (join) =>
      join.onRef('theirs.user_id', '=', 'mine.contact_id').onRef('theirs.contact_id', '=', 'mine.user_id'),
    )
    .innerJoin('users', 'users.id', 'mine.contact_id')
    .select('mine.contact_id')
    .where('mine.user_id', '=', userId)
    .where('mine.contact_id', 'in', candidateIds)
    .where('users.locked_at', 'is', null)
    .execute();
  return new Set(rows.map((row) => row.contact_id));
}

/** Which of `ownerIds` have `contactId` in their contact list (they added that user). */
export async function ownersWithContact(
  db: Db,
  contactId: UserId,
  ownerIds: readonly UserId[],
): Promise<Set<UserId>> {
  if (ownerIds.length === 0) return new Set();
  const rows = await db
    .selectFrom('contacts')
    .select('user_id')
    .where('contact_id', '=', contactId)
    .where('user_id', 'in', ownerIds)
    .execute();
  return new Set(rows.map((row) => row.user_id));
}

/** Rows per statement: two bind parameters each, far below Postgres's 65 535 per statement. */
const LAST_SEEN_CHUNK = 5_000;

/**
 * Stores many users' last-seen times, one statement per few thousand users, in `user_last_seen`
 * (migration 0013: an upsert there stays on its page; an update of `users` rewrote six indexes).
 * Users that no longer exist are skipped. A time only moves forward (two nodes may write one user's
 * times out of order), and a user listed twice counts once with the later time: an upsert may not
 * touch one row twice in a statement.
 */
export async function setLastSeenMany(
  db: Db,
  entries: readonly { readonly userId: UserId; readonly at: Date }[],
): Promise<void> {
  const latest = new Map<UserId, Date>();
  for (const { userId, at } of entries) {
    const known = latest.get(userId);
    if (known === undefined || at > known) latest.set(userId, at);
  }
  const unique = [...latest].map(([userId, at]) => ({ userId, at }));
  for (let start = 0; start < unique.length; start += LAST_SEEN_CHUNK) {
    const chunk = unique.slice(start, start + LAST_SEEN_CHUNK);
    const rows = sql.join(chunk.map((e) => sql`(${e.userId}::uuid, ${e.at.toISOString()}::timestamptz)`));
    await sql`insert into user_last_seen (user_id, last_seen_at)
      select v.id, v.at from (values ${rows}) as v(id, at) join users on users.id = v.id
      on conflict (user_id) do update set last_seen_at = excluded.last_seen_at
      where user_last_seen.last_seen_at < excluded.last_seen_at`.execute(db);
  }
}

/** Last-seen times of the users; a user never seen offline (or unknown) is absent. */
export async function lastSeenOf(db: Db, userIds: readonly UserId[]): Promise<Map<UserId, Date>> {
  if (userIds.length === 0) return new Map();
  const rows = await db
    .selectFrom('user_last_seen')
    .select(['user_id', 'last_seen_at'])
    .where('user_id', 'in', userIds)
    .execute();
  return new Map(rows.map((row) => [row.user_id, row.last_seen_at]));
}
