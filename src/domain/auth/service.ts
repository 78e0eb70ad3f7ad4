/**
 * Accounts: registration, login, refresh-token rotation with reuse detection, logout, password
 * flows, and the check every authenticated request makes. Called alike from REST and (later) the
 * WebSocket edge; owns its transactions.
 *
 * Refresh tokens: opaque 256-bit values, stored as SHA-256. Each use spends the token and issues a
 * pair. A spent token presented again within the grace period (two tabs racing) gets the same pair
 * back; later it is reuse: the whole session (token family) is revoked and every access token of it
 * dies with it.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { SessionId, UserId } from '../../../protocol/src/ids.js';
import type { AuthResponse, RegisterRequest, TokenPair } from '../../../protocol/src/rest/auth.js';
import type { Role } from '../../../protocol/src/rest/users.js';
import type { Database } from '../../db/database.js';
import { isUniqueViolation } from '../../db/errors.js';
import { insertOutboxEvent } from '../../db/repositories/outbox.repo.js';
import {
  type AuthRevocationPage,
  consumeEmailToken,
  deviceHistory,
  type EmailTokenPurpose,
  findEmailTokenUser,
  findRefreshToken,
  findRefreshTokenForUpdate,
  findRepeatedVerification,
  findSessionStates,
  findSpentResetToken,
  insertEmailToken,
  insertRefreshToken,
  insertSession,
  invalidateEmailTokens,
  markRefreshTokenSpent,
  pruneAuthRevocations,
  readAuthRevocations,
  recordVerifiedEmail,
  revokeAllSessions,
  revokeSession,
} from '../../db/repositories/sessions.repo.js';
import {
  bumpSessionVersion,
  findUserByEmail,
  findUserById,
  findUserByLogin,
  insertUser,
  lockUserById,
  lockUsersByIds,
  replacePasswordHash,
  type UserRow,
  updateUser,
} from '../../db/repositories/users.repo.js';
import { ACCOUNT_LOCKED_REASON, SESSIONS_REVOKED_TOPIC } from '../../platform/bus/topics.js';
import { clientNetwork } from '../../platform/client-network.js';
import type { Clock } from '../../platform/clock.js';
import { AppError } from '../../platform/errors.js';
import type { Logger } from '../../platform/logger.js';
import { createTickBatcher } from '../../platform/tick-batcher.js';
import type { WindowCounter } from '../../platform/window-counter.js';
import { rolesOf, toMe } from '../users/dto.js';
import { weakPasswordReason } from './common-passwords.js';
import type { PasswordHasher } from './passwords.js';
import { createRevocationFeed } from './revocation-feed.js';
import { createSessionCache } from './session-cache.js';
import type { AccessClaims, TokenService } from './tokens.js';

export { SESSIONS_REVOKED_TOPIC };

/** Events this module writes to the outbox (consumed by the relay). */
export const AuthEvent = {
  userRegistered: 'user.registered',
  passwordResetRequested: 'user.password_reset_requested',
  /** Someone tried to register with the address of an existing account: its owner is told. */
  registrationAttempted: 'user.registration_attempted',
  /** A login from a device (IP and User-Agent) none of the user's earlier sessions came from. */
  newLogin: 'user.new_login',
  /** A session revoked because a spent refresh token was presented again (likely theft). */
  sessionRevoked: 'user.session_revoked',
  /** A signed-in user with an unconfirmed address asked for a new verification link. */
  verificationRequested: 'user.verification_requested',
} as const;

/** At most one "someone tried to register with your address" mail per account per this period. */
export const REGISTRATION_NOTICE_PERIOD_MS = 60 * 60 * 1000;

/**
 * At most one password-reset mail per account per this period (a clock-aligned window), however
 * often POST /v1/auth/forgot-password names the address: anyone may call it, so without this a
 * stranger could flood an owner's inbox (and the email_tokens table) at the REST rate limit. The
 * one mail's link stays valid for its whole TTL, so a second request inside the window loses nothing.
 */
export const PASSWORD_RESET_MAIL_PERIOD_MS = 10 * 60 * 1000;

/**
 * At most one mail a day that a stranger can trigger (a reset link, a registration notice) to an
 * address nobody has confirmed: anyone can register with someone else's address, and then had that
 * stranger mailed a reset link every 10 minutes (review 25) or a notice every hour (review 26). An
 * owner who never confirmed still gets one a day.
 */
export const UNCONFIRMED_ADDRESS_MAIL_PERIOD_MS = 24 * 60 * 60 * 1000;

/**
 * The period a mail to an address is counted in, in windows of `periodMs` (its task id is keyed by
 * it, so one mail per period): an address nobody confirmed takes the first window of its day.
 */
function mailPeriod(nowMs: number, periodMs: number, confirmed: boolean): number {
  const windowMs = confirmed ? periodMs : UNCONFIRMED_ADDRESS_MAIL_PERIOD_MS;
  return Math.floor(nowMs / windowMs) * (windowMs / periodMs);
}

export const EMAIL_TOKEN_TTL_MS: Readonly<Record<EmailTokenPurpose, number>> = {
  verify_email: 24 * 60 * 60 * 1000,
  reset_password: 30 * 60 * 1000,
};

export interface AuthSettings {
  readonly refresh: {
    readonly idleTtlS: number;
    readonly absoluteTtlS: number;
    readonly reuseGraceS: number;
  };
  readonly login: { readonly maxFailures: number; readonly ipMaxFailures: number; readonly windowS: number };
}

export interface AuthDeps {
  readonly db: Kysely<Database>;
  readonly clock: Clock;
  readonly log: Logger;
  readonly tokens: TokenService;
  readonly passwords: PasswordHasher;
  readonly counters: WindowCounter;
  readonly settings: AuthSettings;
  /** Where session revocations are announced (the bus); best effort, after the commit. */
  readonly announceRevocation?: (event: SessionsRevoked) => Promise<void>;
  /** The session check's cache and batching (defaults: SESSION_CHECK_DEFAULTS). */
  readonly sessionCheck?: Partial<SessionCheckSettings>;
  /** The revocation feed's timing (defaults: REVOCATION_FEED_DEFAULTS). */
  readonly revocationFeed?: Partial<RevocationFeedSettings>;
}

export interface RevocationFeedSettings {
  /** Pause between two polls of `auth_revocations`, ms (one query per node each time). */
  readonly pollMs: number;
  /**
   * The feed vouches for a session only while its last applied poll was sent less than this long
   * ago, ms; past it `authenticate` reads the session row. MUST stay ≤ 1 000 (the 1 s guarantee).
   */
  readonly maxStalenessMs: number;
  /** Kept beyond an access token's lifetime (and the 5 s expiry leeway), s: room for slow commits. */
  readonly marginS: number;
}

export const REVOCATION_FEED_DEFAULTS: RevocationFeedSettings = {
  // Four polls per staleness bound: a poll may be late by a loaded event loop and still keep it.
  pollMs: 250,
  maxStalenessMs: 1_000,
  marginS: 60,
};

/** Revocation rows are deleted this long after they stop mattering (any node prunes, rarely). */
const REVOCATION_PRUNE_EVERY_MS = 10 * 60 * 1000;
const REVOCATION_KEEP_EXTRA_MS = 60 * 60 * 1000;
/** A feed whose last applied poll was sent this long ago reloads the window (revocation-feed.ts). */
const REVOCATION_RESYNC_AFTER_MS = 60 * 1000;

export interface SessionCheckSettings {
  /**
   * How long a session row read for `authenticate` is reused on this node when the revocation
   * feed cannot vouch for it (stale, or the user changed recently), ms. It bounds how long a
   * revocation whose bus message was lost goes unnoticed then: MUST stay ≤ 1 000 (the 1 s
   * revocation guarantee). 0 reads the row on every such request.
   */
  readonly maxAgeMs: number;
  /** Most session rows remembered (least recently used dropped first). */
  readonly maxEntries: number;
  /** Most sessions read in one query (the rest of a tick's lookups go in further queries). */
  readonly maxBatch: number;
}

type SessionStateRow = Awaited<ReturnType<typeof findSessionStates>>[number];

/**
 * Reads of one session check, each repeated because a change of its user was heard during the
 * previous one; past this (the user changed over and over) the check refuses, the safe answer.
 */
const PRINCIPAL_READ_ATTEMPTS = 3;

export const SESSION_CHECK_DEFAULTS: SessionCheckSettings = {
  maxAgeMs: 1_000,
  maxEntries: 50_000,
  maxBatch: 500,
};

/** Who is calling, established from a valid access token of a live session. */
export interface Principal {
  readonly userId: UserId;
  readonly sessionId: SessionId;
  readonly roles: readonly Role[];
  /** When the access token it came from expires (ms since epoch). */
  readonly expiresAt: number;
  /**
   * When its session ends for good (the session's absolute expiry, ms since epoch): an access token
   * may outlive it by up to its own lifetime, a WebSocket authenticated with it must not.
   */
  readonly sessionExpiresAt: number;
  /**
   * The user's session version its token carries (`sv`): a connection that outlives a change of it
   * (a version bump, a lock) is told from one opened after by this (`recheck`).
   */
  readonly sessionVersion: number;
}

/**
 * Announced on the bus when sessions end, so every node closes the affected live sockets
 * (4001) at once. Without sessionId, every session of the user ended.
 */
export interface SessionsRevoked {
  readonly userId: UserId;
  readonly sessionId?: SessionId;
  readonly reason: string;
}

export interface ClientMeta {
  readonly ip: string | null;
  readonly userAgent: string | null;
}

const sha256 = (value: string) => createHash('sha256').update(value).digest('hex');
const newOpaqueToken = () => randomBytes(32).toString('base64url');
const INVALID_LOGIN = 'invalid login or password';
/**
 * Transactions one login may try: each after the first follows a change of the password hash that
 * left the session version alone (another login's rehash), once the password was checked against it.
 */
const LOGIN_ATTEMPTS = 3;

/** Seals the successor pair with a key only the holder of the spent token can derive. */
function seal(pair: TokenPair, spentToken: string): string {
  const key = createHash('sha256').update(`gigwire-refresh-successor:${spentToken}`).digest();
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  const body = Buffer.concat([cipher.update(JSON.stringify(pair), 'utf8'), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64url');
}

function unseal(sealed: string, spentToken: string): TokenPair | undefined {
  try {
    const raw = Buffer.from(sealed, 'base64url');
    const key = createHash('sha256').update(`gigwire-refresh-successor:${spentToken}`).digest();
    const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12));
    decipher.setAuthTag(raw.subarray(12, 28));
    const json = Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8');
    return JSON.parse(json) as TokenPair;
  } catch {
    return undefined;
  }
}

function weakPassword(password: string, personal: readonly string[], field: string): AppError | undefined {
  const reason = weakPasswordReason(password, personal);
  return reason === undefined
    ? undefined
    : new AppError('VALIDATION_FAILED', `password ${reason}`, {
        details: { errors: [{ path: `body.${field}`, message: reason }] },
      });
}

export function createAuthService(deps: AuthDeps) {
  const { db, clock, tokens, passwords, counters, settings, log } = deps;
  const sessionCheck = { ...SESSION_CHECK_DEFAULTS, ...deps.sessionCheck };
  if (sessionCheck.maxAgeMs > 1_000) throw new Error('sessionCheck.maxAgeMs must be at most 1 000 ms');

  /**
   * The rows `authenticate` checks: from memory for at most sessionCheck.maxAgeMs, and the
   * lookups of one event-loop tick in one query. See session-cache.ts for the invariants.
   */
  const sessionStates = createSessionCache<SessionStateRow>({
    load: createTickBatcher<SessionId, SessionStateRow>({
      load: async (sessionIds: readonly SessionId[]) =>
        new Map((await findSessionStates(db, sessionIds)).map((row) => [row.session_id, row])),
      maxBatch: sessionCheck.maxBatch,
    }),
    userOf: (row) => row.user_id,
    maxAgeMs: sessionCheck.maxAgeMs,
    maxEntries: sessionCheck.maxEntries,
  });

  /**
   * What ended or changed recently (revocation-feed.ts). While it is fresh and names neither the
   * session nor its user, `authenticate` may use the session's row however long ago it was read
   * (`trusted`); a session it names is refused; otherwise (user changed, feed stale) the row is
   * used for at most sessionCheck.maxAgeMs. Each poll also brings the rows of the sessions created
   * since the last one (logins on any node), so a first connect finds its row in memory.
   * Started by the process (`revocations.start`); stale (every check reads) until its first poll.
   */
  const feedSettings = { ...REVOCATION_FEED_DEFAULTS, ...deps.revocationFeed };
  const feedWindowMs = (tokens.accessTtlS + 5 + feedSettings.marginS) * 1000;
  /** When each poll's query was sent, and the cache's forget count then (for prefill). */
  const pollSent = new WeakMap<AuthRevocationPage, { readAt: number; epoch: number }>();
  let prunedAt = Number.NEGATIVE_INFINITY;
  /**
   * The snapshot of the poll at the previous prune (at least REVOCATION_PRUNE_EVERY_MS old): a
   * prune deletes only rows of transactions complete before it, which every node still polling
   * from a snapshot has read (a node whose feed paused longer reloads the window: resyncAfterMs).
   */
  let pruneBound: string | undefined;
  /** Told of each change a poll reports (revocations.onPolled). */
  const revocationListeners = new Set<(revoked: Pick<SessionsRevoked, 'userId' | 'sessionId'>) => void>();

  /**
   * The session reads `principalOf` awaits, by user: each is marked when a revocation naming its
   * session or user is heard meanwhile, since its row may have been read before that revocation
   * committed (and a WebSocket upgrade waiting on it has no socket yet for the revocation to close).
   */
  const readsInFlight = new Map<UserId, Set<{ readonly sessionId: SessionId; named: boolean }>>();

  /** Drops what the cache holds of a revocation, and marks the reads in flight it names. */
  const forgetSessions = (revoked: Pick<SessionsRevoked, 'userId' | 'sessionId'>) => {
    sessionStates.forget(revoked);
    for (const read of readsInFlight.get(revoked.userId) ?? []) {
      if (revoked.sessionId === undefined || revoked.sessionId === read.sessionId) read.named = true;
    }
  };

  const revocations = createRevocationFeed({
    read: async (since) => {
      const sent = { readAt: performance.now(), epoch: sessionStates.epoch() };
      const page = await readAuthRevocations(db, since);
      pollSent.set(page, sent);
      return page;
    },
    windowMs: feedWindowMs,
    maxStalenessMs: feedSettings.maxStalenessMs,
    pollMs: feedSettings.pollMs,
    // Far below REVOCATION_PRUNE_EVERY_MS: a snapshot this old has not been pruned past.
    resyncAfterMs: REVOCATION_RESYNC_AFTER_MS,
    onError: (error) =>
      log.warn({ err: error }, 'revocation feed poll failed: sessions are read per request'),
    onRecovered: () => log.info('revocation feed polls again'),
    afterPoll: (page, { full }) => {
      // The signing keys are reloaded on this loop too (once a minute): a quiet node would otherwise
      // sign its next token with a key set loaded before a rotation, i.e. with a retired key that
      // may no longer be published (tokens.ts, keepFresh).
      tokens.keepFresh();
      // A window load (first poll, or after a long pause) cannot name changes older than the
      // window or pruned meanwhile: no row read before it may be trusted.
      if (full) sessionStates.clear();
      const sent = pollSent.get(page);
      if (sent !== undefined) {
        sessionStates.prefill(
          page.sessions.map((row) => [row.session_id, row]),
          sent,
        );
      }
      // Whatever the feed reports is dropped from the cache (this page's session rows come from
      // the same snapshot and already show it; entries read earlier do not), and told to the
      // listeners (the gateway closes the sockets the bus message, if it was lost, did not).
      for (const row of page.rows) {
        const revoked =
          row.sessionId === null ? { userId: row.userId } : { userId: row.userId, sessionId: row.sessionId };
        forgetSessions(revoked);
        for (const listener of revocationListeners) {
          try {
            listener(revoked);
          } catch (error) {
            log.error({ err: error }, 'revocation listener failed');
          }
        }
      }
      const at = performance.now();
      if (at - prunedAt < REVOCATION_PRUNE_EVERY_MS) return;
      prunedAt = at;
      const bound = pruneBound;
      pruneBound = page.snapshot;
      if (bound === undefined) return;
      pruneAuthRevocations(db, feedWindowMs + REVOCATION_KEEP_EXTRA_MS, bound).catch((error: unknown) => {
        log.warn({ err: error }, 'could not prune auth_revocations');
      });
    },
  });

  const announce = async (event: SessionsRevoked) => {
    // This node forgets at once, whatever becomes of the bus message (the others hear it there).
    revocations.add(event);
    forgetSessions(event);
    try {
      await deps.announceRevocation?.(event);
    } catch (error) {
      // The database already ended the sessions: sockets still die at their next check.
      log.warn({ err: error, userId: event.userId }, 'could not announce a session revocation');
    }
  };

  const addSeconds = (date: Date, seconds: number) => new Date(date.getTime() + seconds * 1000);

  /**
   * Whether the session and user behind verified claims still allow access (revocation feed,
   * session cache), and the principal if so. @throws AppError UNAUTHORIZED
   */
  async function principalOf(claims: AccessClaims): Promise<Principal> {
    for (let attempt = 1; ; attempt++) {
      // 'clear': nothing changed this session or its user since any row of it was read, but in the
      // last second (the feed is fresh), so a row of any age answers; else at most maxAgeMs old.
      const trusted = revocationVerdict(claims) === 'clear';
      // In memory: decided in this tick, before any revocation can be heard.
      const cached = sessionStates.peek(claims.sid, trusted);
      if (cached !== undefined) return principalFrom(claims, cached);
      const read = { sessionId: claims.sid, named: false };
      const reads = readsInFlight.get(claims.sub) ?? new Set();
      readsInFlight.set(claims.sub, reads);
      reads.add(read);
      let state: SessionStateRow | undefined;
      try {
        state = await sessionStates.get(claims.sid, trusted);
      } finally {
        reads.delete(read);
        if (reads.size === 0 && readsInFlight.get(claims.sub) === reads) readsInFlight.delete(claims.sub);
      }
      // A revocation heard during the read may postdate the row: the session's own ends it here;
      // a change of its user (logout-all, lock, version) is read again (the forget dropped the
      // cached row and the loads in flight, so the new read is sent after it committed).
      revocationVerdict(claims);
      if (!read.named) return principalFrom(claims, state);
      if (attempt >= PRINCIPAL_READ_ATTEMPTS) throw new AppError('UNAUTHORIZED', 'access token revoked');
    }
  }

  /** `principalOf` when the session's row is in memory; undefined when it must be read. */
  function principalOfNow(claims: AccessClaims): Principal | undefined {
    const state = sessionStates.peek(claims.sid, revocationVerdict(claims) === 'clear');
    return state === undefined ? undefined : principalFrom(claims, state);
  }

  function revocationVerdict(claims: AccessClaims) {
    const verdict = revocations.check(claims.sub, claims.sid);
    if (verdict === 'revoked') throw new AppError('UNAUTHORIZED', 'access token revoked');
    return verdict;
  }

  function principalFrom(claims: AccessClaims, state: SessionStateRow | undefined): Principal {
    if (
      state === undefined ||
      state.user_id !== claims.sub ||
      state.locked_at !== null ||
      state.revoked_at !== null ||
      state.absolute_expires_at <= clock.now() ||
      state.session_version !== claims.sv
    ) {
      throw new AppError('UNAUTHORIZED', 'access token revoked');
    }
    return {
      userId: claims.sub,
      sessionId: claims.sid,
      roles: rolesOf(state),
      expiresAt: claims.exp * 1000,
      sessionExpiresAt: state.absolute_expires_at.getTime(),
      sessionVersion: claims.sv,
    };
  }

  /** A new refresh token in the session, expiring at the idle limit or the session's end. */
  async function mintPair(
    trx: Kysely<Database>,
    user: Pick<UserRow, 'id' | 'roles' | 'session_version'>,
    session: { id: SessionId; absoluteExpiresAt: Date },
  ): Promise<TokenPair> {
    const now = clock.now();
    const refreshToken = newOpaqueToken();
    const idleEnd = addSeconds(now, settings.refresh.idleTtlS);
    await insertRefreshToken(trx, {
      sessionId: session.id,
      tokenHash: sha256(refreshToken),
      expiresAt: idleEnd < session.absoluteExpiresAt ? idleEnd : session.absoluteExpiresAt,
    });
    const access = await tokens.issue({
      sub: user.id,
      sid: session.id,
      roles: rolesOf(user),
      sv: user.session_version,
    });
    return {
      accessToken: access.token,
      connectToken: access.connectToken,
      refreshToken,
      tokenType: 'Bearer',
      expiresIn: access.expiresIn,
    };
  }

  async function startSession(trx: Kysely<Database>, user: UserRow, meta: ClientMeta): Promise<TokenPair> {
    const session = await insertSession(trx, {
      userId: user.id,
      absoluteExpiresAt: addSeconds(clock.now(), settings.refresh.absoluteTtlS),
      userAgent: meta.userAgent?.slice(0, 300) ?? null,
      ip: meta.ip,
    });
    return mintPair(trx, user, { id: session.id, absoluteExpiresAt: session.absolute_expires_at });
  }

  const windowMs = settings.login.windowS * 1000;
  /**
   * Keyed by the login name as typed (trimmed, lower case: as `findUserByLogin` matches it), whether
   * or not an account has it. Not by account: a limit an account's username and email share linked
   * them — burn a public username's budget from one network, then one guess per candidate address
   * answered 429 for the account's private email and 401 for any other (review 25). An account so
   * gets a budget per name (two), still under the network's LOGIN_IP_MAX_FAILURES over all accounts.
   */
  const loginKey = (login: string) => `login:${sha256(login.trim().toLowerCase())}`;
  /**
   * Failed logins are limited per (login name, client network) pair and per client network, never
   * per account alone: strangers guessing from their own addresses throttle themselves, while the
   * owner, from any other address, still logs in. See `clientNetwork` for what a network is.
   */
  const pairKey = (account: string, ip: string | null) =>
    `login-failures:pair:${account}:${clientNetwork(ip)}`;
  const ipKey = (ip: string | null) => `login-failures:ip:${clientNetwork(ip)}`;

  /**
   * Reserves a failure slot on both counters before the password is checked, so parallel guesses
   * cannot slip past the limit (each takes a slot; at most the limit are ever evaluated). Refused
   * attempts and, later, successful ones give their slots back: only failures stay counted.
   * @throws AppError RATE_LIMITED with details.retryAfterS
   */
  async function reserveAttempt(pair: string, ip: string): Promise<void> {
    const [byPair, byIp] = await Promise.all([counters.hit(pair, windowMs), counters.hit(ip, windowMs)]);
    const retryAfterMs = Math.max(
      byPair.count > settings.login.maxFailures ? byPair.resetInMs : 0,
      byIp.count > settings.login.ipMaxFailures ? byIp.resetInMs : 0,
    );
    if (retryAfterMs > 0) {
      await Promise.all([counters.release(pair), counters.release(ip)]);
      throw new AppError('RATE_LIMITED', 'too many failed logins; try again later', {
        details: { retryAfterS: Math.max(1, Math.ceil(retryAfterMs / 1000)) },
      });
    }
  }

  return {
    /**
     * Creates the account, or, when the email already has one, mails its owner instead; the caller
     * gets the same answer either way, so registration does not reveal which addresses have an
     * account. A taken username is a plain CONFLICT: usernames are public anyway. No session is
     * started: the client logs in next.
     * @throws AppError VALIDATION_FAILED (weak password), CONFLICT (username taken)
     */
    async register(input: RegisterRequest, meta?: ClientMeta): Promise<void> {
      const weak = weakPassword(
        input.password,
        [input.username, input.email.split('@')[0] ?? ''],
        'password',
      );
      if (weak) throw weak;
      // Hashed on both paths, so the taken-email answer does not come back measurably sooner. In
      // the client network's share of the hashing line (see `login`).
      const source = meta === undefined ? undefined : clientNetwork(meta.ip);
      const passwordHash = await passwords.hash(input.password, source);
      for (let attempt = 1; ; attempt++) {
        const named = await findUserByLogin(db, input.username);
        if (named !== undefined) {
          // The same registration again (its first answer lost on a bad network, the button pressed
          // once more): the account it made answers as the first did, instead of "username taken".
          // Only for the same email and password, which only its maker knows. The password is checked
          // whatever the email, so the time taken does not tell whether a username has that email.
          // That check answers whether a password is the account's (202, not 409) to whoever knows
          // its username and email: it is throttled as a login is, on the same counters (review 22:
          // otherwise guesses went at the REST rate limit, 600 a minute, past LOGIN_MAX_FAILURES).
          // Every taken-username answer counts, whatever the email, so a 429 tells nothing either.
          const pair = meta === undefined ? undefined : pairKey(loginKey(input.username), meta.ip);
          const ip = meta === undefined ? undefined : ipKey(meta.ip);
          if (pair !== undefined && ip !== undefined) await reserveAttempt(pair, ip);
          let samePassword: boolean;
          try {
            samePassword = await passwords.verify(named.password_hash, input.password, source);
          } catch (error) {
            // Refused before the password was checked (see `login`): not a failed attempt.
            if (pair !== undefined && ip !== undefined)
              await Promise.all([counters.release(pair), counters.release(ip)]);
            throw error;
          }
          // A locked account is never "the same registration": login answers it 401 whatever the
          // password, and a 202 here would tell its right password from a wrong one.
          if (
            samePassword &&
            named.locked_at === null &&
            named.email.toLowerCase() === input.email.trim().toLowerCase()
          ) {
            // As a successful login: the pair's failures forgiven, the network's slot given back.
            if (pair !== undefined && ip !== undefined)
              await Promise.all([counters.clear(pair), counters.release(ip)]);
            return;
          }
          throw new AppError('CONFLICT', 'username is already taken', {
            details: { errors: [{ path: 'body.username', message: 'is already taken' }] },
          });
        }
        const owner = await findUserByEmail(db, input.email);
        if (owner !== undefined) {
          const period = mailPeriod(
            clock.now().getTime(),
            REGISTRATION_NOTICE_PERIOD_MS,
            owner.email_verified_at !== null,
          );
          await insertOutboxEvent(db, AuthEvent.registrationAttempted, { userId: owner.id, period });
          return;
        }
        try {
          await db.transaction().execute(async (trx) => {
            const user = await insertUser(trx, {
              username: input.username,
              email: input.email.trim(),
              passwordHash,
              roles: input.roles ?? ['worker'],
            });
            await insertOutboxEvent(trx, AuthEvent.userRegistered, { userId: user.id });
          });
          return;
        } catch (error) {
          // A registration of the same name or address committed in between: decide again.
          if (!isUniqueViolation(error) || attempt >= 2) throw error;
        }
      }
    },

    async login(login: string, password: string, meta: ClientMeta): Promise<AuthResponse> {
      const user = await findUserByLogin(db, login);
      const pair = pairKey(loginKey(login), meta.ip);
      const ip = ipKey(meta.ip);
      // The client network's share of the password-hashing line (passwords.ts): one network's flood
      // of logins, right passwords included (never throttled below), cannot deny everyone else's.
      const source = clientNetwork(meta.ip);
      await reserveAttempt(pair, ip);
      let valid: boolean;
      try {
        valid = await passwords.verify(user?.password_hash, password, source);
      } catch (error) {
        // Refused before the password was checked (the hashing line full): not a failed login, so
        // its slots go back — or a busy moment would count against the owner's own budget.
        await Promise.all([counters.release(pair), counters.release(ip)]);
        throw error;
      }
      if (user === undefined || !valid) throw new AppError('UNAUTHORIZED', INVALID_LOGIN);
      if (user.locked_at !== null) {
        // Locked by an operator: refused with the same 401 as a wrong password (the answer does not
        // tell a lock), but the right password is no failed guess, so its slots go back. Counted, an
        // owner trying again while locked burned the pair's budget and their network's, and met 429
        // once unlocked (review 32). Not forgiven either: earlier failures of the pair stay counted.
        await Promise.all([counters.release(pair), counters.release(ip)]);
        throw new AppError('UNAUTHORIZED', INVALID_LOGIN);
      }
      // The pair's past failures are forgiven (only the owner knows the password); the network's
      // are not, or one account of its own would let an attacker reset its budget at will.
      await Promise.all([counters.clear(pair), counters.release(ip)]);
      const userAgent = meta.userAgent?.slice(0, 300) ?? null;
      /** The row whose hash the password was checked against. */
      let verified = user;
      for (let attempt = 1; ; attempt++) {
        // Hashed before the transaction: the row lock is not held for argon2's time. A hash made
        // before passwords were normalised (passwords.ts) is replaced by one of the NFC form, so the
        // password also works from a keyboard that sends it composed.
        const rehash =
          passwords.needsRehash(verified.password_hash) ||
          (await passwords.isUnnormalized?.(verified.password_hash, password, source)) === true
            ? await passwords.hash(password, source)
            : undefined;
        const outcome = await db.transaction().execute(async (trx) => {
          // MUST lock the row before the session is inserted: a password change or reset, logout-all
          // and a lock each update this row first and revoke the user's sessions after, so either
          // they committed before this lock (their change is seen here and the login refused) or
          // they wait for this commit and then revoke the session it starts. Without the lock a
          // login checked before the change could start a session after it, whose refresh would
          // then mint tokens of the new session version.
          const current = await lockUserById(trx, verified.id);
          if (
            current === undefined ||
            current.locked_at !== null ||
            current.session_version !== verified.session_version
          ) {
            return { kind: 'refused' as const };
          }
          if (current.password_hash !== verified.password_hash) return { kind: 'rehashed' as const, current };
          // Conditional although the lock already guarantees it: a rehash MUST NOT put the
          // password it checked back over one set since.
          if (rehash !== undefined)
            await replacePasswordHash(trx, current.id, verified.password_hash, rehash);
          const history = await deviceHistory(trx, current.id, { ip: meta.ip, userAgent });
          const tokens = await startSession(trx, current, meta);
          // The very first login is expected; a later one from a device never seen is worth a notice.
          if (history.hadSessions && !history.knownDevice) {
            await insertOutboxEvent(trx, AuthEvent.newLogin, { userId: current.id, ip: meta.ip, userAgent });
          }
          return { kind: 'session' as const, tokens, user: current };
        });
        if (outcome.kind === 'session') return { ...outcome.tokens, user: toMe(outcome.user) };
        // Refused like a wrong password: no oracle. A hash changed under the same session version
        // (another login's rehash, an operator's update) is accepted only if the password matches it.
        if (
          outcome.kind === 'refused' ||
          attempt >= LOGIN_ATTEMPTS ||
          !(await passwords.verify(outcome.current.password_hash, password, source))
        ) {
          throw new AppError('UNAUTHORIZED', INVALID_LOGIN);
        }
        verified = outcome.current;
      }
    },

    async refresh(refreshToken: string): Promise<TokenPair> {
      const now = clock.now();
      const outcome = await db.transaction().execute(async (trx) => {
        const row = await findRefreshTokenForUpdate(trx, sha256(refreshToken));
        if (row === undefined || row.revoked_at !== null) return { kind: 'invalid' as const };
        if (row.spent_at !== null) {
          const withinGrace = now.getTime() - row.spent_at.getTime() <= settings.refresh.reuseGraceS * 1000;
          const pair =
            withinGrace && row.successor_sealed ? unseal(row.successor_sealed, refreshToken) : undefined;
          if (pair !== undefined) return { kind: 'pair' as const, pair };
          await revokeSession(trx, row.session_id, now, 'refresh_token_reuse');
          await insertOutboxEvent(trx, AuthEvent.sessionRevoked, {
            userId: row.user_id,
            sessionId: row.session_id,
            reason: 'refresh_token_reuse',
          });
          return { kind: 'reuse' as const, sessionId: row.session_id, userId: row.user_id };
        }
        if (row.expires_at <= now || row.absolute_expires_at <= now) return { kind: 'invalid' as const };
        // No live session predates its user's session version: every bump revokes the user's
        // sessions in its own transaction, and a login in flight is serialized with it (`login`).
        const user = await findUserById(trx, row.user_id);
        if (user === undefined || user.locked_at !== null) return { kind: 'invalid' as const };
        const pair = await mintPair(trx, user, {
          id: row.session_id,
          absoluteExpiresAt: row.absolute_expires_at,
        });
        await markRefreshTokenSpent(trx, row.id, now, seal(pair, refreshToken));
        return { kind: 'pair' as const, pair };
      });
      if (outcome.kind === 'pair') return outcome.pair;
      if (outcome.kind === 'reuse') {
        log.warn(
          { userId: outcome.userId, sessionId: outcome.sessionId },
          'spent refresh token reused: session revoked',
        );
        // Its live sockets hold access tokens that stay valid until they expire: close them now.
        await announce({
          userId: outcome.userId,
          sessionId: outcome.sessionId,
          reason: 'refresh_token_reuse',
        });
      }
      throw new AppError('UNAUTHORIZED', 'invalid refresh token');
    },

    async logout(refreshToken: string): Promise<void> {
      const row = await findRefreshToken(db, sha256(refreshToken));
      if (row === undefined) return;
      await revokeSession(db, row.session_id, clock.now(), 'logout');
      await announce({ userId: row.user_id, sessionId: row.session_id, reason: 'logout' });
    },

    async logoutAll(principal: Principal): Promise<void> {
      await db.transaction().execute(async (trx) => {
        // The user's row first (see `login`): a login holding it commits its session before the
        // revocation below reads the sessions, a later one sees the new version.
        await bumpSessionVersion(trx, principal.userId);
        await revokeAllSessions(trx, principal.userId, clock.now(), 'logout_all');
      });
      await announce({ userId: principal.userId, reason: 'logout_all' });
    },

    async changePassword(
      principal: Principal,
      currentPassword: string,
      newPassword: string,
      meta?: ClientMeta,
    ): Promise<void> {
      const user = await findUserById(db, principal.userId);
      if (user === undefined) throw new AppError('UNAUTHORIZED', 'invalid access token');
      // The current-password check is a password oracle for whoever holds the access token (a
      // stolen one, say): its failures are limited per session like logins per (account, IP), so it
      // cannot bypass login throttling. Slots are reserved first (parallel guesses cannot slip
      // past), refused attempts give theirs back, a right password forgives the session's failures.
      const key = `password-change-failures:${principal.sessionId}`;
      const reserved = await counters.hit(key, windowMs);
      if (reserved.count > settings.login.maxFailures) {
        await counters.release(key);
        throw new AppError('RATE_LIMITED', 'too many wrong current passwords; try again later', {
          details: { retryAfterS: Math.max(1, Math.ceil(reserved.resetInMs / 1000)) },
        });
      }
      // In the client network's share of the hashing line (see `login`).
      const source = meta === undefined ? undefined : clientNetwork(meta.ip);
      let valid: boolean;
      try {
        valid = await passwords.verify(user.password_hash, currentPassword, source);
      } catch (error) {
        // Refused before the password was checked: not a wrong password (see `login`).
        await counters.release(key);
        throw error;
      }
      if (!valid) throw new AppError('FORBIDDEN', 'current password is wrong');
      await counters.clear(key);
      const weak = weakPassword(newPassword, [user.username, user.email.split('@')[0] ?? ''], 'newPassword');
      if (weak) throw weak;
      const passwordHash = await passwords.hash(newPassword, source);
      const now = clock.now();
      const changed = await db.transaction().execute(async (trx) => {
        // The user's row first (see `login`), then the caller's session: a reset, logout-all, lock or
        // reuse revocation that committed since the current password was checked ended it, and this
        // change is refused as its request would have been a moment later. Written anyway, a thief's
        // change checked before the owner's reset replaced the reset password (review 30).
        const current = await lockUserById(trx, user.id);
        const [session] = await findSessionStates(trx, [principal.sessionId]);
        if (
          current === undefined ||
          current.locked_at !== null ||
          current.session_version !== user.session_version ||
          session === undefined ||
          session.user_id !== user.id ||
          session.revoked_at !== null
        ) {
          return false;
        }
        await setPasswordIn(trx, user.id, passwordHash, 'password_changed', now);
        return true;
      });
      if (!changed) throw new AppError('UNAUTHORIZED', 'access token revoked');
      await announce({ userId: user.id, reason: 'password_changed' });
    },

    /**
     * Spends the token and marks the address verified, recording on the token which address it
     * confirmed. The same token presented again within its validity (the first answer lost on the
     * way, the link reopened) succeeds again and changes nothing, as long as that address is still
     * the user's current, verified one; anything else is refused as before. Concurrent first uses
     * meet on the token's row lock: the one that waited sees the other's committed verification.
     */
    async verifyEmail(token: string): Promise<void> {
      const now = clock.now();
      const tokenHash = sha256(token);
      const verified = await db.transaction().execute(async (trx) => {
        const userId = await consumeEmailToken(trx, 'verify_email', tokenHash, now);
        if (userId === undefined) return (await findRepeatedVerification(trx, tokenHash, now)) !== undefined;
        const user = await updateUser(trx, userId, { email_verified_at: now });
        if (user === undefined) return false;
        await recordVerifiedEmail(trx, tokenHash, user.email);
        return true;
      });
      if (!verified) throw new AppError('VALIDATION_FAILED', 'invalid or expired token');
    },

    /**
     * A new verification link for the caller's own address while it is unconfirmed: the link of the
     * registration mail lives 24 hours, and that mail may never have arrived (an SMTP outage longer
     * than the email task's retries, a refusal, a spam filter), which before left the address
     * unconfirmed for good — and an unconfirmed address is mailed no notification ever. The
     * address may be a stranger's (anyone can register with any address), so it gets at most one
     * such mail per UNCONFIRMED_ADDRESS_MAIL_PERIOD_MS (the task id is keyed by the period); a
     * confirmed address gets none. Written to the outbox, so the 202 is durable.
     */
    async requestEmailVerification(principal: Principal): Promise<void> {
      const user = await findUserById(db, principal.userId);
      if (user === undefined) throw new AppError('UNAUTHORIZED', 'invalid access token');
      if (user.email_verified_at !== null || user.locked_at !== null) return;
      const period = mailPeriod(clock.now().getTime(), UNCONFIRMED_ADDRESS_MAIL_PERIOD_MS, false);
      await insertOutboxEvent(db, AuthEvent.verificationRequested, { userId: user.id, period });
    },

    /**
     * Always succeeds from the caller's view: whether the address exists is not revealed, neither
     * by the answer nor by its time. Every request does the same work before its 202, whatever the
     * address: the lookup, then one reset request written to the outbox and committed — naming the
     * account when there is one (not locked), naming none otherwise (the relay drops it: no task,
     * no mail). So the 202 comes only once the request is durable (written after the answer, as
     * review 20 had it, a process stopped right after the 202 lost the owner's mail silently), and
     * a registered address is still not answered later than an unknown one (review 20's oracle: a
     * write and a commit only an account caused). A failed write is an error for both alike.
     */
    async forgotPassword(email: string): Promise<void> {
      const user = await findUserByEmail(db, email);
      const period = mailPeriod(
        clock.now().getTime(),
        PASSWORD_RESET_MAIL_PERIOD_MS,
        user === undefined || user.email_verified_at !== null,
      );
      const known = user !== undefined && user.locked_at === null;
      // The session version (bumped by every password change, reset, logout-all and lock) keys the
      // mail too: a request after the password changed is mailed, while a reset mail asked for
      // before the change and still held back by an SMTP outage is not sent any more (the email
      // worker refuses it: review 31).
      await insertOutboxEvent(
        db,
        AuthEvent.passwordResetRequested,
        known ? { userId: user.id, period, version: user.session_version } : { userId: null, period },
      );
    },

    /**
     * The token is spent only together with an acceptable password: a weak one is refused inside
     * the transaction that would have spent it, so the link keeps working for a second try.
     * The same token presented again with the same new password within its validity (the first
     * answer lost on the way, or a retry that waited on the first) succeeds again and changes
     * nothing (sessions opened since stay open), as long as that password is still the user's;
     * anything else is refused as before (it answered 400 to a reset that had worked).
     */
    async resetPassword(token: string, newPassword: string, meta?: ClientMeta): Promise<void> {
      const now = clock.now();
      const tokenHash = sha256(token);
      const invalid = () => new AppError('VALIDATION_FAILED', 'invalid or expired token');
      const source = meta === undefined ? undefined : clientNetwork(meta.ip);
      const refuseUnlessRepeated = async (): Promise<void> => {
        const spent = await findSpentResetToken(db, tokenHash, now);
        if (spent === undefined) throw invalid();
        // The check below confirms a password (204, not 400) to whoever holds the spent link — found
        // in a browser's history, a proxy's log, a Referer: its wrong passwords are limited per link
        // as wrong current passwords are per session (review 30: unlimited, an oracle at the REST
        // rate for 30 minutes). A slot is reserved first (parallel guesses cannot slip past), given
        // back when refused before the check; the right password forgives the link's failures.
        const key = `reset-retry-failures:${tokenHash}`;
        const reserved = await counters.hit(key, windowMs);
        if (reserved.count > settings.login.maxFailures) {
          await counters.release(key);
          throw new AppError('RATE_LIMITED', 'too many wrong passwords for this link; try again later', {
            details: { retryAfterS: Math.max(1, Math.ceil(reserved.resetInMs / 1000)) },
          });
        }
        let same: boolean;
        try {
          // In the client network's share of the hashing line, as every password check.
          same = await passwords.verify(spent.passwordHash, newPassword, source);
        } catch (error) {
          await counters.release(key);
          throw error;
        }
        if (!same) throw invalid();
        await counters.clear(key);
      };
      const owner = await findEmailTokenUser(db, 'reset_password', tokenHash, now);
      if (owner === undefined) return refuseUnlessRepeated();
      // Hashed before the transaction (no row lock held for argon2's time, as in `login`), so that
      // the token is spent in the transaction that sets the password: spent in one of its own, a
      // failure before the password was written (the database gone for a moment, the process
      // stopped) left the link dead and the password unchanged, and a new link could be mailed
      // only after PASSWORD_RESET_MAIL_PERIOD_MS.
      // In the client network's share of the hashing line (see `login`): the hash comes before the
      // token is spent (and a weak password never spends it), so one valid link could otherwise keep
      // the whole line busy for its 30 minutes.
      const passwordHash = await passwords.hash(newPassword, source);
      const userId = await db.transaction().execute(async (trx) => {
        // The user's row first, as every password write and revocation takes it (see `login`).
        const found = await lockUserById(trx, owner);
        const userId = await consumeEmailToken(trx, 'reset_password', tokenHash, now);
        if (found === undefined) throw invalid();
        // Spent meanwhile (by a first try this retry waited on, or by its twin): see below.
        if (userId !== found.id) return undefined;
        const weak = weakPassword(
          newPassword,
          [found.username, found.email.split('@')[0] ?? ''],
          'newPassword',
        );
        if (weak) throw weak;
        await setPasswordIn(trx, found.id, passwordHash, 'password_reset', now);
        return found.id;
      });
      if (userId === undefined) return refuseUnlessRepeated();
      await announce({ userId, reason: 'password_reset' });
    },

    /** The check behind every authenticated request. @throws AppError UNAUTHORIZED */
    async authenticate(accessToken: string): Promise<Principal> {
      return principalOf(await tokens.verify(accessToken));
    },

    /**
     * `authenticate` without waiting, for the REST hot path: the principal (or the same AppError)
     * when this node verified the token before and holds its session's row under the same rules;
     * undefined when something must be loaded first (then call `authenticate`).
     */
    authenticateNow(accessToken: string): Principal | undefined {
      const claims = tokens.verifyKnown(accessToken);
      return claims === undefined ? undefined : principalOfNow(claims);
    },

    /**
     * Whether a principal established earlier (an open WebSocket's) still passes the session
     * checks, read again under the feed's rules: undefined when its session ended, its user was
     * locked or its session version changed since. For the user-level rows the revocation feed
     * reports (`revocations.onPolled` without a session): they cannot tell the user's older
     * connections from one opened after the change, the principal's own version can. Other errors
     * (the database down) reject.
     */
    async recheck(principal: Principal): Promise<Principal | undefined> {
      try {
        return await principalOf({
          sub: principal.userId,
          sid: principal.sessionId,
          roles: [...principal.roles],
          sv: principal.sessionVersion,
          exp: principal.expiresAt / 1000,
        });
      } catch (error) {
        if (error instanceof AppError && error.code === 'UNAUTHORIZED') return undefined;
        throw error;
      }
    },

    /**
     * The same check for a connect token (WebSocket upgrades only: an HMAC instead of an Ed25519
     * signature, tokens.ts), with the same session checks. @throws AppError UNAUTHORIZED
     */
    async authenticateConnectToken(connectToken: string): Promise<Principal> {
      return principalOf(await tokens.verifyConnectToken(connectToken));
    },

    /**
     * `authenticateConnectToken` without waiting, for the WebSocket edge's synchronous upgrade:
     * the principal (or the same AppError) when the signing keys and the session's row are in
     * memory, undefined when either must be loaded first (then call `authenticateConnectToken`).
     */
    authenticateConnectTokenNow(connectToken: string): Principal | undefined {
      const claims = tokens.verifyConnectTokenNow(connectToken);
      return claims === undefined ? undefined : principalOfNow(claims);
    },

    /**
     * A revocation announced on the bus (by any node): this node's cached session checks of it
     * are dropped at once. A lost message costs at most sessionCheck.maxAgeMs.
     */
    forgetRevokedSessions(event: Pick<SessionsRevoked, 'userId' | 'sessionId'>): void {
      revocations.add(event);
      forgetSessions(event);
    },

    /** The revocation feed's loop: `start` once the process serves, `stop` at shutdown. */
    revocations: {
      start: () => revocations.start(),
      stop: () => revocations.stop(),
      isFresh: () => revocations.isFresh(),
      /**
       * Called for each change the poll reports: a session ended (`sessionId`), or something about
       * the user changed (no `sessionId`: version, lock, roles). Returns the unsubscribe.
       */
      onPolled: (listener: (revoked: Pick<SessionsRevoked, 'userId' | 'sessionId'>) => void) => {
        revocationListeners.add(listener);
        return () => void revocationListeners.delete(listener);
      },
    },

    /** A single-use token for an email link (verification or reset); only its hash is stored. */
    async issueEmailToken(userId: UserId, purpose: EmailTokenPurpose): Promise<string> {
      const token = newOpaqueToken();
      await insertEmailToken(db, {
        userId,
        purpose,
        tokenHash: sha256(token),
        expiresAt: new Date(clock.now().getTime() + EMAIL_TOKEN_TTL_MS[purpose]),
      });
      return token;
    },

    /**
     * Locks or unlocks an account; locking ends every session and access token at once. `by` is the
     * admin asking: an admin never locks their own account (nobody else could be left to unlock
     * it; an operator unlocks any account with `npm run admin:unlock`).
     * @throws AppError NOT_FOUND, CONFLICT (reason SELF_LOCK)
     */
    async setLocked(userId: UserId, locked: boolean, by?: UserId): Promise<void> {
      if (locked && by === userId) {
        throw new AppError('CONFLICT', 'you cannot lock your own account', {
          details: { reason: 'SELF_LOCK' },
        });
      }
      const now = clock.now();
      await db.transaction().execute(async (trx) => {
        // The user's row first, like every revocation (see `login`): no session of a login in
        // flight escapes the revocation below. With it the acting admin's (in id order: two admins
        // locking each other queue, never deadlock), decided as it is now, not as the request's
        // authentication saw it: an admin locked meanwhile (their unlock of themselves queued behind
        // that lock undid it) or stripped of the role does nothing, and of two admins locking each
        // other at once only the first does.
        const rows = await lockUsersByIds(trx, by === undefined || by === userId ? [userId] : [userId, by]);
        const user = rows.find((row) => row.id === userId);
        if (by !== undefined) {
          const actor = rows.find((row) => row.id === by);
          if (actor === undefined || actor.locked_at !== null) {
            throw new AppError('UNAUTHORIZED', 'access token revoked');
          }
          if (!actor.roles.includes('admin')) throw new AppError('FORBIDDEN', 'admin role required');
        }
        if (user === undefined) throw new AppError('NOT_FOUND', 'no such user');
        if (!locked) {
          await updateUser(trx, userId, { locked_at: null });
          return;
        }
        await bumpSessionVersion(trx, userId, { locked_at: user.locked_at ?? now });
        await revokeAllSessions(trx, userId, now, ACCOUNT_LOCKED_REASON);
      });
      if (locked) await announce({ userId, reason: ACCOUNT_LOCKED_REASON });
    },

    /**
     * Makes sure an admin account with this email exists. An existing account is never promoted
     * implicitly: whoever registered the address first (verified or not) would become admin with
     * a password of their choosing. Only `promote: true` (the `admin:create --promote` command of an
     * operator) grants the role, and only to an account whose email is verified. A taken username
     * is not an obstacle: the admin gets the first free variant of it.
     * @throws AppError CONFLICT (the email belongs to a non-admin account and may not be promoted),
     *   VALIDATION_FAILED (weak password)
     */
    async ensureAdmin(
      email: string,
      password: string | undefined,
      options: { readonly username?: string; readonly promote?: boolean } = {},
    ): Promise<{ user: UserRow; outcome: 'created' | 'existing' | 'promoted' }> {
      const baseName = options.username ?? 'admin';
      const existingAdmin = async () => {
        const existing = await findUserByEmail(db, email);
        if (existing === undefined) return undefined;
        if (existing.roles.includes('admin')) return { user: existing, outcome: 'existing' as const };
        if (options.promote !== true) {
          throw new AppError(
            'CONFLICT',
            `${email} belongs to an existing account that is not an admin; it is never promoted implicitly (run admin:create with --promote once its owner has verified the address, or choose another address)`,
          );
        }
        if (existing.email_verified_at === null) {
          throw new AppError(
            'CONFLICT',
            `${email} belongs to an account whose email is not verified; only a verified account can be promoted`,
          );
        }
        const updated = await updateUser(db, existing.id, { roles: [...existing.roles, 'admin'] });
        return { user: updated ?? existing, outcome: 'promoted' as const };
      };
      const found = await existingAdmin();
      if (found !== undefined) return found;
      if (password === undefined)
        throw new AppError('VALIDATION_FAILED', 'a password is needed to create the admin');
      const weak = weakPassword(password, [], 'password');
      if (weak) throw weak;
      const passwordHash = await passwords.hash(password);
      for (let attempt = 0; attempt < 8; attempt++) {
        const username =
          attempt === 0 ? baseName : `${baseName.slice(0, 24)}-${randomBytes(3).toString('hex')}`;
        if ((await findUserByLogin(db, username)) !== undefined) continue;
        try {
          const user = await insertUser(db, {
            username,
            email,
            passwordHash,
            roles: ['admin'],
            emailVerifiedAt: clock.now(),
          });
          return { user, outcome: 'created' };
        } catch (error) {
          if (!isUniqueViolation(error)) throw error;
          // Another process created it (or took the name) at the same moment.
          const raced = await existingAdmin();
          if (raced !== undefined) return raced;
        }
      }
      throw new AppError('CONFLICT', `no free username for the admin account near "${baseName}"`);
    },
  };

  /** The new hash, every session ended, every reset link spent; in the caller's transaction. */
  async function setPasswordIn(
    trx: Kysely<Database>,
    userId: UserId,
    passwordHash: string,
    reason: string,
    now: Date,
  ): Promise<void> {
    // The user's row before the sessions (see `login`).
    await bumpSessionVersion(trx, userId, { password_hash: passwordHash });
    await revokeAllSessions(trx, userId, now, reason);
    await invalidateEmailTokens(trx, userId, 'reset_password', now);
  }
}

export type AuthService = ReturnType<typeof createAuthService>;
