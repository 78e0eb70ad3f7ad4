/**
 * One-click unsubscribe of notification digests (RFC 8058). Every digest mail carries
 * `List-Unsubscribe: <PUBLIC_URL/v1/notifications/unsubscribe?token=…>` and
 * `List-Unsubscribe-Post: List-Unsubscribe=One-Click`, and the same link in its body.
 *
 * The token says one thing: "user U may turn off all their non-security notification mail, until
 * exp". It is `<payload>.<mac>`, both base64url; payload JSON {v: 1, sub, scope, exp (s)}; mac =
 * HMAC-SHA256(key, "gigwire.unsub1." + payload). The key is 32 random bytes kept in the database
 * (migration 0017), made by the first process that needs one: no new setting, and a key no other
 * token shares (a connect token's or an access token's key cannot make one, nor this key them).
 * A token is not a login: it reaches nothing but `unsubscribe` below, which can only set `email:
 * never` on the types whose mail may be turned off. `security.*` (ALWAYS_EMAILED) stay mailed.
 *
 * GET of the link changes nothing (link scanners and previews fetch it): it answers a page whose
 * button POSTs. A POST (the mail client's one-click, or that button) unsubscribes; doing it twice
 * is harmless. Links live UNSUBSCRIBE_TTL_MS (a mail may sit in an inbox for months); after that
 * the preferences in the app do the same. Deleting the key's row invalidates every link.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Kysely } from 'kysely';
import { type UserId, UserId as UserIdSchema } from '../../../protocol/src/ids.js';
import type { Database } from '../../db/database.js';
import { unsubscribeKey } from '../../db/repositories/notifications.repo.js';
import { AppError } from '../../platform/errors.js';

/** How long an unsubscribe link works: 180 days. */
export const UNSUBSCRIBE_TTL_MS = 180 * 24 * 60 * 60 * 1000;
/** The only scope there is: every notification mail that may be turned off. */
export const UNSUBSCRIBE_SCOPE = 'notification-mail';
/** Path of the link, below PUBLIC_URL. */
export const UNSUBSCRIBE_PATH = '/v1/notifications/unsubscribe';

const VERSION = 1;
const MAC_CONTEXT = 'gigwire.unsub1.';
/** Longer than any token we issue (about 160 characters); refused before any parsing. */
const MAX_TOKEN_CHARS = 512;
const SEGMENT = /^[A-Za-z0-9_-]+$/;

const malformed = () => new AppError('VALIDATION_FAILED', 'malformed unsubscribe link');
const invalid = () => new AppError('UNAUTHORIZED', 'invalid unsubscribe link');

export interface UnsubscribeTokens {
  /**
   * Loads the key (once per set; `issue` and `verify` do it themselves). Call it before a
   * transaction that issues tokens: the load takes a connection of its own.
   */
  readonly ready: () => Promise<void>;
  /** A link token for the user, valid UNSUBSCRIBE_TTL_MS from `now`. */
  readonly issue: (userId: UserId, now: Date) => Promise<string>;
  /**
   * The user a token names. @throws AppError VALIDATION_FAILED (not a token's shape), UNAUTHORIZED
   * (forged, another scope or version, or expired)
   */
  readonly verify: (token: string, now: Date) => Promise<UserId>;
}

/**
 * The token functions of a database's key. Each set reads the key once, when first needed (a digest
 * takes one set for its mail; one unsubscribe request another): one small read, and no state kept
 * between callers.
 */
export function unsubscribeTokens(db: Kysely<Database>): UnsubscribeTokens {
  let loading: Promise<Buffer> | undefined;
  const key = (): Promise<Buffer> => {
    if (loading !== undefined) return loading;
    const next = unsubscribeKey(db, randomBytes(32).toString('base64url')).then((secret) =>
      Buffer.from(secret, 'base64url'),
    );
    loading = next;
    // A failed read (the database down) is tried again by the next caller.
    next.catch(() => {
      if (loading === next) loading = undefined;
    });
    return next;
  };
  const macOf = (secret: Buffer, payload: string) =>
    createHmac('sha256', secret).update(MAC_CONTEXT).update(payload).digest();
  const tokens: UnsubscribeTokens = {
    ready: async () => {
      await key();
    },
    issue: async (userId, now) => {
      const exp = Math.floor((now.getTime() + UNSUBSCRIBE_TTL_MS) / 1000);
      const payload = Buffer.from(
        JSON.stringify({ v: VERSION, sub: userId, scope: UNSUBSCRIBE_SCOPE, exp }),
      ).toString('base64url');
      return `${payload}.${macOf(await key(), payload).toString('base64url')}`;
    },
    verify: async (token, now) => {
      if (token.length > MAX_TOKEN_CHARS) throw malformed();
      const [payload, mac, extra] = token.split('.');
      if (payload === undefined || mac === undefined || extra !== undefined) throw malformed();
      if (!SEGMENT.test(payload) || !SEGMENT.test(mac)) throw malformed();
      const given = Buffer.from(mac, 'base64url');
      const expected = macOf(await key(), payload);
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw invalid();
      let claims: { v?: unknown; sub?: unknown; scope?: unknown; exp?: unknown };
      try {
        claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
      } catch {
        throw invalid();
      }
      const sub = UserIdSchema.safeParse(claims?.sub);
      if (claims?.v !== VERSION || claims.scope !== UNSUBSCRIBE_SCOPE || !sub.success) throw invalid();
      if (typeof claims.exp !== 'number' || claims.exp * 1000 <= now.getTime()) {
        throw new AppError(
          'UNAUTHORIZED',
          'unsubscribe link expired: turn mail off in the app’s notification settings',
        );
      }
      return sub.data;
    },
  };
  return tokens;
}

/** The link of a token: PUBLIC_URL + UNSUBSCRIBE_PATH + `?token=`. */
export const unsubscribeUrl = (publicUrl: string, token: string) =>
  `${publicUrl}${UNSUBSCRIBE_PATH}?token=${encodeURIComponent(token)}`;

/** The RFC 8058 headers of a digest mail to the user (a fresh token each call). */
export async function unsubscribeHeaders(
  db: Kysely<Database>,
  publicUrl: string,
  userId: UserId,
  now: Date,
): Promise<Record<string, string>> {
  const token = await unsubscribeTokens(db).issue(userId, now);
  return {
    'List-Unsubscribe': `<${unsubscribeUrl(publicUrl, token)}>`,
    'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click',
  };
}
