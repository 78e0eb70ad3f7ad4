/**
 * Operators' console credentials. Each is a row of `refresh_tokens` in the session it was signed in
 * with, so everything that ends the session (logout, logout-all, password change or reset, lock)
 * ends the credential too. Its `token_hash` is `console:` + SHA-256 of the cookie value: a refresh
 * token lookup (a bare 64-hex SHA-256) can never match it, so the cookie is no refresh token, and a
 * database dump holds no usable cookie.
 */
import type { Kysely, Transaction } from 'kysely';
import type { Database } from '../database.js';

type Db = Kysely<Database> | Transaction<Database>;

export const CONSOLE_HASH_PREFIX = 'console:';

/** The credential with what decides whether it still admits: its session, its user, their roles. */
export function findConsoleCredential(db: Db, tokenHash: string) {
  return db
    .selectFrom('refresh_tokens')
    .innerJoin('sessions', 'sessions.id', 'refresh_tokens.session_id')
    .innerJoin('users', 'users.id', 'sessions.user_id')
    .select([
      'refresh_tokens.id',
      'refresh_tokens.session_id',
      'refresh_tokens.expires_at',
      'refresh_tokens.spent_at',
      'sessions.user_id',
      'sessions.revoked_at',
      'sessions.absolute_expires_at',
      'users.locked_at',
      'users.roles',
    ])
    .where('refresh_tokens.token_hash', '=', tokenHash)
    .executeTakeFirst();
}
