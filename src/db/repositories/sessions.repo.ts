/** Sessions (refresh-token families), refresh tokens and single-use email tokens. */
import type { Kysely, Selectable, Transaction } from 'kysely';
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
    .where('token_hash', '=', tokenHash)
    .where('purpose', '=', purpose)
    .where('used_at', 'is', null)
    .where('expires_at', '>', now)
    .returning('user_id')
    .executeTakeFirst();
  return row?.user_id;
}

export async function invalidateEmailTokens(
  db: Db,
  userId: UserId,
  purpose: EmailTokenPurpose,
  now: Date,
): Promise<void> {
  await db
    .updateTable('email_tokens')
    .set({ used_at: now })
    .where('user_id', '=', userId)
    .where('purpose', '=', purpose)
    .where('used_at', 'is', null)
    .execute();
}
