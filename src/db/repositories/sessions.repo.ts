/** Sessions (refresh-token families), refresh tokens and single-use email tokens. */
import { type ExpressionBuilder, type Kysely, type Selectable, sql, type Transaction } from 'kysely';
import type { SessionId, UserId } from '../../../protocol/src/ids.js';
import type { Database } from '../database.js';
import type { RefreshTokensTable, SessionsTable } from '../tables/sessions.table.js';

type Db = Kysely<Database> | Transaction<Database>;

export async function insertSession(
  db: Db,
  session: { userId: UserId; absoluteExpiresAt: Date; userAgent: string | null; ip: string | null },
): Promise<Selectable<SessionsTable>> {
  return db
    .insertInto('sessions')
    .values({
      user_id: session.userId,
      absolute_expires_at: session.absoluteExpiresAt,
      user_agent: session.userAgent,
      ip: session.ip,
      revoked_at: null,
      revoked_reason: null,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
}

/**
 * Whether the user had sessions before, and whether one of them came from this device (the same IP
 * and User-Agent): a login from a device never seen is what a `security.new_login` notice reports.
 */
export async function deviceHistory(
  db: Db,
  userId: UserId,
  device: { ip: string | null; userAgent: string | null },
): Promise<{ hadSessions: boolean; knownDevice: boolean }> {
  const row = await db
    .selectFrom('sessions')
    .select((eb) => [
      eb.fn.countAll<string>().as('sessions'),
      eb.fn
        .count<string>('id')
        .filterWhere((w) =>
          w.and([
            device.ip === null ? w('ip', 'is', null) : w('ip', '=', device.ip),
            device.userAgent === null ? w('user_agent', 'is', null) : w('user_agent', '=', device.userAgent),
          ]),
        )
        .as('same_device'),
    ])
    .where('user_id', '=', userId)
    .executeTakeFirstOrThrow();
  return { hadSessions: Number(row.sessions) > 0, knownDevice: Number(row.same_device) > 0 };
}

export async function insertRefreshToken(
  db: Db,
  token: { sessionId: SessionId; tokenHash: string; expiresAt: Date },
): Promise<void> {
  await db
    .insertInto('refresh_tokens')
    .values({
      session_id: token.sessionId,
      token_hash: token.tokenHash,
      expires_at: token.expiresAt,
      spent_at: null,
      successor_sealed: null,
    })
    .execute();
}

export type RefreshTokenWithSession = Selectable<RefreshTokensTable> & {
  user_id: UserId;
  absolute_expires_at: Date;
  revoked_at: Date | null;
};

/** Locks the token row for the rest of the transaction: racing refreshes queue behind it. */
export function findRefreshTokenForUpdate(trx: Transaction<Database>, tokenHash: string) {
  return trx
    .selectFrom('refresh_tokens')
    .innerJoin('sessions', 'sessions.id', 'refresh_tokens.session_id')
    .selectAll('refresh_tokens')
    .select(['sessions.user_id', 'sessions.absolute_expires_at', 'sessions.revoked_at'])
    .where('refresh_tokens.token_hash', '=', tokenHash)
    .forUpdate('refresh_tokens')
    .executeTakeFirst();
}

export function findRefreshToken(db: Db, tokenHash: string) {
  return db
    .selectFrom('refresh_tokens')
    .innerJoin('sessions', 'sessions.id', 'refresh_tokens.session_id')
    .select(['refresh_tokens.session_id', 'sessions.user_id'])
    .where('refresh_tokens.token_hash', '=', tokenHash)
    .executeTakeFirst();
}

export async function markRefreshTokenSpent(
  db: Db,
  id: string,
  spentAt: Date,
  successorSealed: string,
): Promise<void> {
  await db
    .updateTable('refresh_tokens')
    .set({ spent_at: spentAt, successor_sealed: successorSealed })
    .where('id', '=', id)
    .execute();
}

export async function revokeSession(db: Db, sessionId: SessionId, at: Date, reason: string): Promise<void> {
  await db
    .updateTable('sessions')
    .set({ revoked_at: at, revoked_reason: reason })
    .where('id', '=', sessionId)
    .where('revoked_at', 'is', null)
    .execute();
}

export async function revokeAllSessions(db: Db, userId: UserId, at: Date, reason: string): Promise<void> {
  await db
    .updateTable('sessions')
    .set({ revoked_at: at, revoked_reason: reason })
    .where('user_id', '=', userId)
    .where('revoked_at', 'is', null)
    .execute();
}

/**
 * What the check behind every authenticated request reads (the session, its user's lock and
 * session version), for many sessions in one statement; the caller matches rows by session_id.
 */
export async function findSessionStates(db: Db, sessionIds: readonly SessionId[]) {
  if (sessionIds.length === 0) return [];
  return db
    .selectFrom('sessions')
    .innerJoin('users', 'users.id', 'sessions.user_id')
    .select([
      'sessions.id as session_id',
      'sessions.user_id',
      'users.session_version',
      'users.locked_at',
      'users.roles',
      'sessions.revoked_at',
      'sessions.absolute_expires_at',
    ])
    .where('sessions.id', 'in', sessionIds)
    .execute();
}

/** One row of `auth_revocations` (migration 0012): a session ended, or a user whose tokens need a fresh check. */
export interface AuthRevocation {
  readonly userId: UserId;
  /** null: something about the user changed (version, lock, roles, deletion). */
  readonly sessionId: SessionId | null;
  /** When it was written, ms since epoch (database clock). */
  readonly atMs: number;
}

/** What one poll of the revocation feed saw, and where the next poll starts. */
export interface AuthRevocationPage {
  readonly rows: readonly AuthRevocation[];
  /**
   * Sessions created since the previous poll (none on the first), as `findSessionStates` reads
   * them, from the same snapshot as `rows`.
   */
  readonly sessions: readonly SessionState[];
  /** This statement's snapshot (`pg_snapshot` text): the next poll reads what it could not see. */
  readonly snapshot: string;
  /** The database clock when the statement ran, ms since epoch. */
  readonly dbNowMs: number;
}

export type SessionState = Awaited<ReturnType<typeof findSessionStates>>[number];

interface RevocationPageRow {
  snapshot: string;
  now_ms: number | string;
  revocations: [UserId, SessionId | null, number][];
  sessions: [SessionId, UserId, number, string | null, string[], string | null, string][];
}

const dateOrNull = (value: string | null) => (value === null ? null : new Date(value));

/**
 * Revocations written since `since`: with `{ snapshot }` (the previous page's), every row whose
 * transaction that snapshot could not see — a row that committed late is read, never skipped, and
 * none is read twice — and the sessions created by such transactions; with `{ withinMs }` (the
 * first load), every revocation of the last `withinMs` on the database clock and no sessions. One
 * statement (one snapshot), which is the next page's `since`.
 */
export async function readAuthRevocations(
  db: Db,
  since: { readonly snapshot: string } | { readonly withinMs: number },
): Promise<AuthRevocationPage> {
  // Rows of transactions the previous snapshot could not see (the range is what the index serves).
  const unseen = (snapshot: string, column: string) =>
    sql`${sql.ref(column)} >= pg_snapshot_xmin(${snapshot}::pg_snapshot)
      and not pg_visible_in_snapshot(${sql.ref(column)}, ${snapshot}::pg_snapshot)`;
  const match =
    'snapshot' in since
      ? unseen(since.snapshot, 'r.xid')
      : sql`r.at > clock_timestamp() - make_interval(secs => ${since.withinMs / 1000})`;
  const created =
    'snapshot' in since
      ? sql`(select coalesce(json_agg(json_build_array(s.id, s.user_id, u.session_version, u.locked_at,
          u.roles, s.revoked_at, s.absolute_expires_at)), '[]')
        from sessions s join users u on u.id = s.user_id where ${unseen(since.snapshot, 's.created_xid')})`
      : sql`'[]'::json`;
  const { rows } = await sql<RevocationPageRow>`
    select pg_current_snapshot()::text as snapshot,
      extract(epoch from clock_timestamp()) * 1000 as now_ms,
      (select coalesce(json_agg(json_build_array(r.user_id, r.session_id, extract(epoch from r.at) * 1000)), '[]')
        from auth_revocations r where ${match}) as revocations,
      ${created} as sessions`.execute(db);
  const row = rows[0];
  if (row === undefined) throw new Error('the revocation poll returned no row');
  return {
    snapshot: row.snapshot,
    dbNowMs: Number(row.now_ms),
    rows: row.revocations.map(([userId, sessionId, atMs]) => ({ userId, sessionId, atMs: Number(atMs) })),
    sessions: row.sessions.map(
      ([sessionId, userId, sessionVersion, lockedAt, roles, revokedAt, absoluteExpiresAt]) => ({
        session_id: sessionId,
        user_id: userId,
        session_version: sessionVersion,
        locked_at: dateOrNull(lockedAt),
        roles,
        revoked_at: dateOrNull(revokedAt),
        absolute_expires_at: new Date(absoluteExpiresAt),
      }),
    ),
  };
}

/**
 * Drops revocation rows older than `olderThanMs` (database clock) whose transaction had completed
 * by `completedBefore` (a `pg_snapshot` the caller took long enough ago that every node still
 * polling has read past it). `at` alone is not enough: it is when the trigger ran, and a
 * transaction held open for longer than `olderThanMs` commits a row already "old", which a node
 * that had not yet polled since the commit would then never read.
 */
export async function pruneAuthRevocations(
  db: Db,
  olderThanMs: number,
  completedBefore: string,
): Promise<void> {
  await sql`delete from auth_revocations where at < now() - make_interval(secs => ${olderThanMs / 1000})
    and xid < pg_snapshot_xmin(${completedBefore}::pg_snapshot)`.execute(db);
}

export type EmailTokenPurpose = 'verify_email' | 'reset_password';

export async function insertEmailToken(
  db: Db,
  token: { userId: UserId; purpose: EmailTokenPurpose; tokenHash: string; expiresAt: Date },
): Promise<void> {
  await db
    .insertInto('email_tokens')
    .values({
      user_id: token.userId,
      purpose: token.purpose,
      token_hash: token.tokenHash,
      expires_at: token.expiresAt,
      used_at: null,
    })
    .execute();
}

/** The token of `tokenHash` for `purpose`, still usable at `now`: unused and unexpired. */
const usableToken =
  (purpose: EmailTokenPurpose, tokenHash: string, now: Date) =>
  (eb: ExpressionBuilder<Database, 'email_tokens'>) =>
    eb.and([
      eb('token_hash', '=', tokenHash),
      eb('purpose', '=', purpose),
      eb('used_at', 'is', null),
      eb('expires_at', '>', now),
    ]);

/**
 * The user of a valid (unused, unexpired) token, without spending it: a reset locks that user's row
 * before it spends the token (the order every password write takes), so two resets of one user
 * with two of their links queue instead of deadlocking on each other's token rows.
 */
export async function findEmailTokenUser(
  db: Db,
  purpose: EmailTokenPurpose,
  tokenHash: string,
  now: Date,
): Promise<UserId | undefined> {
  const row = await db
    .selectFrom('email_tokens')
    .select('user_id')
    .where(usableToken(purpose, tokenHash, now))
    .executeTakeFirst();
  return row?.user_id;
}

/** Marks a valid token used and returns its user; undefined when unknown, used or expired. */
export async function consumeEmailToken(
  db: Db,
  purpose: EmailTokenPurpose,
  tokenHash: string,
  now: Date,
): Promise<UserId | undefined> {
  const row = await db
    .updateTable('email_tokens')
    .set({ used_at: now })
    .where(usableToken(purpose, tokenHash, now))
    .returning('user_id')
    .executeTakeFirst();
  return row?.user_id;
}

/** Records on a spent verify_email token the address it confirmed (see `findRepeatedVerification`). */
export async function recordVerifiedEmail(db: Db, tokenHash: string, email: string): Promise<void> {
  await db
    .updateTable('email_tokens')
    .set({ verified_email: email })
    .where('token_hash', '=', tokenHash)
    .where('purpose', '=', 'verify_email')
    .execute();
}

/**
 * The user of a verify_email token presented again after it was spent (its first answer lost):
 * found only while the token is within its validity and the address it confirmed is still the
 * user's current, verified one. Undefined for anything else (never issued, expired, unspent,
 * spent before the address changed or lost its verification).
 */
export async function findRepeatedVerification(
  db: Db,
  tokenHash: string,
  now: Date,
): Promise<UserId | undefined> {
  const row = await db
    .selectFrom('email_tokens as t')
    .innerJoin('users as u', 'u.id', 't.user_id')
    .select('t.user_id')
    .where('t.token_hash', '=', tokenHash)
    .where('t.purpose', '=', 'verify_email')
    .where('t.used_at', 'is not', null)
    .where('t.expires_at', '>', now)
    .where('u.email_verified_at', 'is not', null)
    .whereRef('t.verified_email', '=', 'u.email')
    .executeTakeFirst();
  return row?.user_id;
}

/**
 * The user of a reset_password token presented again after it was spent (its first answer lost on
 * the way), with their current password hash: found only while the token is within its validity.
 * The caller answers success again only if the password sent is the one now set.
 */
export async function findSpentResetToken(
  db: Db,
  tokenHash: string,
  now: Date,
): Promise<{ readonly userId: UserId; readonly passwordHash: string } | undefined> {
  const row = await db
    .selectFrom('email_tokens as t')
    .innerJoin('users as u', 'u.id', 't.user_id')
    .select(['t.user_id', 'u.password_hash'])
    .where('t.token_hash', '=', tokenHash)
    .where('t.purpose', '=', 'reset_password')
    .where('t.used_at', 'is not', null)
    .where('t.expires_at', '>', now)
    .executeTakeFirst();
  return row === undefined ? undefined : { userId: row.user_id, passwordHash: row.password_hash };
}

/**
 * Whether a reset_password token of the user was spent at or after `since`: by a reset, or by any
 * password change or reset, which spends every unused one (`invalidateEmailTokens`). A reset mail
 * stored at `since` holds such a token, so true means the password changed since it was asked for.
 */
export async function resetTokenSpentSince(db: Db, userId: UserId, since: Date): Promise<boolean> {
  const row = await db
    .selectFrom('email_tokens')
    .select('id')
    .where('user_id', '=', userId)
    .where('purpose', '=', 'reset_password')
    .where('used_at', '>=', since)
    .limit(1)
    .executeTakeFirst();
  return row !== undefined;
}

/**
 * Spends every unused token of the user for `purpose` (a password change or reset spends every
 * reset link), and ends their validity now: a link spent so never reset anything, so it must not
 * pass for one whose reset is retried (`findSpentResetToken` looks only at tokens still within
 * their validity). Otherwise its holder was told whether a guess was the password set since (204,
 * not 400: review 32). The token a reset spends itself is not among them (already used).
 */
export async function invalidateEmailTokens(
  db: Db,
  userId: UserId,
  purpose: EmailTokenPurpose,
  now: Date,
): Promise<void> {
  await db
    .updateTable('email_tokens')
    .set((eb) => ({ used_at: now, expires_at: eb.fn('least', [eb.ref('expires_at'), eb.val(now)]) }))
    .where('user_id', '=', userId)
    .where('purpose', '=', purpose)
    .where('used_at', 'is', null)
    .execute();
}
