/**
 * Who is signed in. The access token lives in memory only (15 min; a script of another origin
 * cannot read it, and a reload simply refreshes it). The refresh token is kept in sessionStorage:
 * it survives a reload of the tab but not closing the browser, and it is never sent automatically
 * the way a cookie would be (no CSRF). An XSS could still read it; the CSP (scripts from this origin
 * only) is the defence there.
 *
 * One tab, one session: a refresh token is single use, so two documents must never hold the same
 * one. sessionStorage is per tab, but "Duplicate tab" (and `window.open` without `noopener`) copies
 * it into the new tab. The token is therefore stored with a per-tab marker, and the tab that owns it
 * holds a Web Lock named after the marker for its whole life (and keeps the marker in `window.name`
 * as well, which a copy does not inherit). A document that finds a marker whose lock a live tab
 * holds is a copy: it drops the copied token (without logging it out: it is the other tab's) and
 * starts signed out. A reload finds the lock free again (the old document is gone) and carries on.
 *
 * Refreshes: one at a time per tab (single flight). A refused refresh (401/403) ends the session
 * here and tells the app (sign-in screen). A network failure keeps the token: the call is retried
 * once at once (the server returns the same new pair for a spent token presented again within its
 * grace window, REFRESH_REUSE_GRACE_S, 10 s by default, so a lost answer costs nothing), and if the
 * server stays unreachable the user can try again later rather than being signed out.
 *
 * Signing out (here, everywhere, or by a password change) and a copied tab dropping its copy also
 * remove the tab's stored chat outbox (outbox.ts `forgetOutboxes`): the next person to sign in here
 * never sends it. A sign-in with a password removes every stored outbox but what the same user's
 * session left when it ended by itself in this page (outbox.ts `signingIn`).
 */
import type { AccessCredential } from '../../protocol/src/client/index.js';
import { decodeJwtPayload, tokenExpiresAt } from '../../protocol/src/client/jwt.js';
import { type Api, ApiError, auth, createApi, isApiError, type Me, type TokenSource } from './api.js';
import { forgetOutboxes, signingIn } from './outbox.js';

const REFRESH_KEY = 'gigwire.refreshToken';
/** The marker of the tab that owns the refresh token (copied along with it into a duplicate). */
const TAB_KEY = 'gigwire.tab';
/** `window.name` of the owning tab: `gigwire.tab:<marker>`. */
const NAME_PREFIX = 'gigwire.tab:';
/**
 * How long an apparent reload (window.name matches) waits for the previous document's lock. The old
 * document releases it as it goes away, normally within milliseconds; a live tab never does.
 */
const RELOAD_LOCK_WAIT_MS = 3_000;
/** Refresh this long before the access token expires. */
const EARLY_MS = 30_000;

/** Why the tab shows the sign-in screen, when it was not the user's choice. */
export type SignedOutReason = 'session-ended' | 'copied-tab' | 'password-changed' | 'signed-out-everywhere';

/** The server refused the credentials (as opposed to not answering). */
const isRefused = (error: unknown) => isApiError(error) && (error.status === 401 || error.status === 403);

/** No answer, a gateway or server failure, or "try later": the token may still be good. */
export const isTransient = (error: unknown) =>
  isApiError(error) &&
  (error.status === 0 || error.status === 408 || error.status === 429 || error.status >= 500);

const signedOutError = () => new ApiError(401, 'SIGNED_OUT', 'You are signed out.', {});

const hasLocks = () =>
  typeof navigator !== 'undefined' && 'locks' in navigator && navigator.locks !== undefined;

export class Session implements TokenSource {
  readonly api: Api = createApi(this, location.origin);
  user: Me | undefined;
  /** Set when the session ended without the user signing out (shown on the sign-in screen). */
  signedOutReason: SignedOutReason | undefined;
  /**
   * Why a stored session could not be restored when the server did not refuse it (no answer, a
   * 5xx): the token is kept, and `restore()` may be called again. Undefined otherwise.
   */
  unreachable: unknown;
  private access: string | undefined;
  /** The connect token issued with `access` (opens the WebSocket with a cheaper check). */
  private connect: string | undefined;
  private refreshing: Promise<string> | undefined;
  /**
   * The server's clock minus this device's (from the `iat` of the latest access token): `exp` is
   * server time, and a device clock off by more than the token's 15 min would otherwise refresh
   * before every call (fast) or send expired tokens into a 401 each time (slow).
   */
  private skewMs = 0;
  private restoring: Promise<void> | undefined;
  /** The marker whose lock this document holds, and how to let it go. */
  private claimed: { marker: string; release: () => void } | undefined;
  private readonly listeners = new Set<() => void>();

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private changed(): void {
    for (const listener of this.listeners) listener();
  }

  private get refreshToken(): string | null {
    return sessionStorage.getItem(REFRESH_KEY);
  }

  private keep(accessToken: string, refreshToken: string, connectToken: string | undefined): void {
    this.access = accessToken;
    this.connect = connectToken;
    const issuedAt = decodeJwtPayload(accessToken)?.iat;
    if (typeof issuedAt === 'number' && Number.isFinite(issuedAt)) this.skewMs = issuedAt * 1000 - Date.now();
    sessionStorage.setItem(REFRESH_KEY, refreshToken);
  }

  async accessToken(force = false): Promise<string> {
    const expiresAt = this.access === undefined ? 0 : (tokenExpiresAt(this.access) ?? 0);
    if (!force && this.access !== undefined && expiresAt - EARLY_MS > Date.now() + this.skewMs)
      return this.access;
    // One refresh at a time: concurrent callers share it (a refresh token is single use).
    this.refreshing ??= this.refresh().finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  /** What the WebSocket opens with: the access token and, when it came with one, its connect token. */
  async socketCredential(force = false): Promise<AccessCredential> {
    const accessToken = await this.accessToken(force);
    const connectToken = this.access === accessToken ? this.connect : undefined;
    return connectToken === undefined ? accessToken : { accessToken, connectToken };
  }

  private async refresh(): Promise<string> {
    const token = this.refreshToken;
    if (token === null) {
      // Nothing to refresh with: whatever is on screen belongs to a session that is gone.
      if (this.user !== undefined) this.end('session-ended');
      throw signedOutError();
    }
    try {
      // auth.refresh retries once at once when no answer came (see api.ts).
      const pair = await auth.refresh(token);
      // Signed out (or in again) meanwhile: this pair is not ours to keep.
      if (this.refreshToken !== token) throw signedOutError();
      this.keep(pair.accessToken, pair.refreshToken, pair.connectToken);
      return pair.accessToken;
    } catch (error) {
      // A spent, revoked or expired session: signed out, and the app shows it. Anything else (no
      // answer, a 5xx) keeps the token: it may well be good, and dropping it would sign out for good.
      if (isRefused(error) && this.refreshToken === token) this.end('session-ended');
      throw error;
    }
  }

  /**
   * After a load or a reload: a stored refresh token signs the tab in again. When the server cannot
   * be reached the token is kept and `unreachable` says so; calling `restore()` again retries.
   */
  restore(): Promise<void> {
    this.restoring ??= this.restoreOnce().finally(() => {
      this.restoring = undefined;
    });
    return this.restoring;
  }

  private async restoreOnce(): Promise<void> {
    this.unreachable = undefined;
    if (this.refreshToken !== null && !(await this.claimTab())) {
      // A copy of another tab: its token is that tab's. Drop the copy (no logout: that would end
      // the other tab's session) and start signed out.
      sessionStorage.removeItem(REFRESH_KEY);
      sessionStorage.removeItem(TAB_KEY);
      // Its unsent messages too: the other tab sends them.
      forgetOutboxes();
      this.signedOutReason = 'copied-tab';
    }
    if (this.refreshToken !== null) {
      try {
        await this.accessToken(true);
        this.user = await this.api.me();
        this.signedOutReason = undefined;
      } catch (error) {
        if (this.refreshToken !== null && !(isApiError(error) && !isTransient(error))) {
          // Not refused (no answer, a 5xx): keep the token for another try.
          this.unreachable = error;
        } else {
          // Refused: refresh() has already ended the session (a refused `me` ends it here).
          this.forget();
          this.signedOutReason ??= 'session-ended';
        }
      }
    }
    this.changed();
  }

  /**
   * Whether this document owns the stored refresh token: true after a reload, false in a copy of a
   * live tab. Takes the tab's lock when it does (held until the document goes away).
   */
  private async claimTab(): Promise<boolean> {
    let marker = sessionStorage.getItem(TAB_KEY);
    if (marker !== null && this.claimed?.marker === marker) return true;
    if (marker === null) {
      // A token stored before tabs had markers: adopt it.
      marker = newMarker();
      sessionStorage.setItem(TAB_KEY, marker);
      window.name = NAME_PREFIX + marker;
    }
    const sameWindow = window.name === NAME_PREFIX + marker;
    if (!hasLocks()) return sameWindow;
    // Free: no live document uses this token (a reload, a restored or discarded tab): ours.
    // Held: another tab owns it. With a foreign window.name that is a copy for sure; with our own
    // it is most likely the previous document of a reload still going away, so wait a little.
    const release = await holdLock(`gigwire.tab.${marker}`, sameWindow ? RELOAD_LOCK_WAIT_MS : 0);
    if (release === undefined) return false;
    this.claimed = { marker, release };
    window.name = NAME_PREFIX + marker;
    return true;
  }

  /** A new session in this tab: a new marker, its lock, and `window.name`. */
  private async adoptNewTab(): Promise<void> {
    this.claimed?.release();
    this.claimed = undefined;
    const marker = newMarker();
    sessionStorage.setItem(TAB_KEY, marker);
    window.name = NAME_PREFIX + marker;
    if (!hasLocks()) return;
    // Nobody else knows a fresh marker: the lock is free at once.
    const release = await holdLock(`gigwire.tab.${marker}`, 0);
    if (release !== undefined) this.claimed = { marker, release };
  }

  async signIn(login: string, password: string): Promise<void> {
    const result = await auth.login({ login, password });
    // Only unsent messages this user's own session left in this page are sent by this one: not
    // another person's, nor a list put into storage while nobody was signed in (outbox.ts).
    signingIn(result.user.id);
    await this.adoptNewTab();
    this.keep(result.accessToken, result.refreshToken, result.connectToken);
    this.user = result.user;
    this.signedOutReason = undefined;
    this.unreachable = undefined;
    this.changed();
  }

  async signOut(): Promise<void> {
    const token = this.refreshToken;
    // Unsent chat messages are this user's: whoever signs in next here must never send them.
    forgetOutboxes();
    this.forget();
    this.signedOutReason = undefined;
    this.unreachable = undefined;
    this.changed();
    // Ends the session on the server, which also closes its sockets.
    if (token !== null) await auth.logout(token).catch(() => undefined);
  }

  /**
   * The server ended every session of the user at this tab's request (a password change, "sign out
   * everywhere"): this one is gone too, so the sign-in screen, saying why.
   */
  endedEverywhere(reason: 'password-changed' | 'signed-out-everywhere'): void {
    this.unreachable = undefined;
    // Asked for here, like a sign-out: the unsent chat messages go too.
    forgetOutboxes();
    this.end(reason);
  }

  /** The session ended without the user's say (refused refresh): sign-in screen, with why. */
  private end(reason: SignedOutReason): void {
    this.forget();
    this.signedOutReason = reason;
    this.changed();
  }

  private forget(): void {
    this.access = undefined;
    this.connect = undefined;
    this.user = undefined;
    sessionStorage.removeItem(REFRESH_KEY);
  }
}

function newMarker(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * Takes the exclusive Web Lock `name` and holds it until the returned release is called (or the
 * document goes away); undefined when it could not be had within `waitMs` (0: only if free now).
 */
function holdLock(name: string, waitMs: number): Promise<(() => void) | undefined> {
  return new Promise((resolve) => {
    const options: LockOptions =
      waitMs === 0 ? { ifAvailable: true } : { signal: AbortSignal.timeout(waitMs) };
    navigator.locks
      .request(name, options, (lock) => {
        if (lock === null) {
          resolve(undefined);
          return undefined;
        }
        return new Promise<void>((release) => resolve(() => release()));
      })
      .catch(() => resolve(undefined));
  });
}
