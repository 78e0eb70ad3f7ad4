/**
 * Sign-in for the operators' console (bull-board). A browser cannot send a Bearer header, so an
 * admin signs in with email/username and password and gets an opaque cookie value instead.
 *
 * The sign-in is an ordinary login (the auth service's, with its throttles) that starts a session of
 * its own; the cookie is a credential in that session (see console-sessions.repo.ts), so logout,
 * logout-all, password change/reset and lock end it exactly as they end any session. Only its hash
 * is stored. Roles are read on every check: an admin who loses the role loses the console at once.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { SessionId, UserId } from '../../../protocol/src/ids.js';
import type { Database } from '../../db/database.js';
import { CONSOLE_HASH_PREFIX, findConsoleCredential } from '../../db/repositories/console-sessions.repo.js';
import { insertRefreshToken, revokeSession } from '../../db/repositories/sessions.repo.js';
import type { Clock } from '../../platform/clock.js';
import { AppError } from '../../platform/errors.js';
import type { AuthService, ClientMeta } from '../auth/service.js';

/** How long a console sign-in lasts (a working day); the session's own absolute end still applies. */
export const CONSOLE_SESSION_TTL_S = 12 * 3600;

export interface ConsoleSessionsDeps {
  readonly db: Kysely<Database>;
  readonly clock: Clock;
  readonly auth: Pick<AuthService, 'login' | 'authenticate'>;
}

/** What a console credential admits right now. */
export type ConsoleAccess =
  | { readonly kind: 'admin'; readonly userId: UserId; readonly sessionId: SessionId }
  /** A live credential of a user who is no longer an admin. */
  | { readonly kind: 'forbidden'; readonly userId: UserId }
  /** Absent, unknown, expired, or its session ended. */
  | { readonly kind: 'none' };

const credentialHash = (token: string) =>
  `${CONSOLE_HASH_PREFIX}${createHash('sha256').update(token).digest('hex')}`;

/** Cookie values are 43 base64url characters; anything else is not looked up. */
const TOKEN_SHAPE = /^[A-Za-z0-9_-]{43}$/;

export function createConsoleSessions(deps: ConsoleSessionsDeps) {
  const { db, clock, auth } = deps;

  const find = async (token: string | undefined) =>
    token === undefined || !TOKEN_SHAPE.test(token)
      ? undefined
      : findConsoleCredential(db, credentialHash(token));

  return {
    /**
     * @returns the cookie value (only its hash is stored) and when it expires
     * @throws AppError UNAUTHORIZED (wrong login or password, locked), RATE_LIMITED (login
     *   throttling, details.retryAfterS), FORBIDDEN (not an admin: the session just started is ended)
     */
    async signIn(
      login: string,
      password: string,
      meta: ClientMeta,
    ): Promise<{ token: string; maxAgeS: number }> {
      const pair = await auth.login(login, password, meta);
      const principal = await auth.authenticate(pair.accessToken);
      if (!principal.roles.includes('admin')) {
        await revokeSession(db, principal.sessionId, clock.now(), 'console_not_admin');
        throw new AppError('FORBIDDEN', 'this account is not an admin');
      }
      const token = randomBytes(32).toString('base64url');
      await insertRefreshToken(db, {
        sessionId: principal.sessionId,
        tokenHash: credentialHash(token),
        expiresAt: new Date(clock.now().getTime() + CONSOLE_SESSION_TTL_S * 1000),
      });
      return { token, maxAgeS: CONSOLE_SESSION_TTL_S };
    },

    async check(token: string | undefined): Promise<ConsoleAccess> {
      const row = await find(token);
      const now = clock.now();
      if (
        row === undefined ||
        row.spent_at !== null ||
        row.expires_at <= now ||
        row.revoked_at !== null ||
        row.absolute_expires_at <= now ||
        row.locked_at !== null
      ) {
        return { kind: 'none' };
      }
      return row.roles.includes('admin')
        ? { kind: 'admin', userId: row.user_id, sessionId: row.session_id }
        : { kind: 'forbidden', userId: row.user_id };
    },

    /** Ends the whole session the credential belongs to; an unknown value is a no-op. */
    async signOut(token: string | undefined): Promise<void> {
      const row = await find(token);
      if (row !== undefined) await revokeSession(db, row.session_id, clock.now(), 'console_sign_out');
    },
  };
}

export type ConsoleSessions = ReturnType<typeof createConsoleSessions>;
