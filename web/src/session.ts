/**
 * Who is signed in. The access token lives in memory only (15 min; a script of another origin
 * cannot read it, and a reload simply refreshes it). The refresh token is kept in sessionStorage:
 * it survives a reload of the tab but not closing the browser, is not shared with other tabs (each
 * tab is its own session, so two tabs never race to spend one single-use refresh token), and it is
 * never sent automatically the way a cookie would be (no CSRF). An XSS could still read it; the CSP
 * (scripts from this origin only) is the defence there.
 */
import type { AccessCredential } from '../../protocol/src/client/index.js';
import { tokenExpiresAt } from '../../protocol/src/client/jwt.js';
import { type Api, auth, createApi, isApiError, type Me, type TokenSource } from './api.js';

const REFRESH_KEY = 'gigwire.refreshToken';
/** Refresh this long before the access token expires. */
const EARLY_MS = 30_000;

export class Session implements TokenSource {
  readonly api: Api = createApi(this);
  user: Me | undefined;
  private access: string | undefined;
  /** The connect token issued with `access` (opens the WebSocket with a cheaper check). */
  private connect: string | undefined;
  private refreshing: Promise<string> | undefined;
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
    sessionStorage.setItem(REFRESH_KEY, refreshToken);
  }

  async accessToken(force = false): Promise<string> {
    const expiresAt = this.access === undefined ? 0 : (tokenExpiresAt(this.access) ?? 0);
    if (!force && this.access !== undefined && expiresAt - EARLY_MS > Date.now()) return this.access;
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
    if (token === null) throw new Error('signed out');
    try {
      const pair = await auth.refresh(token);
      this.keep(pair.accessToken, pair.refreshToken, pair.connectToken);
      return pair.accessToken;
    } catch (error) {
      // A spent or expired session: sign out locally; a network error keeps the token for later.
      if (isApiError(error) && error.status === 401) this.forget();
      throw error;
    }
  }

  /** After a reload: a stored refresh token signs the tab in again. */
  async restore(): Promise<void> {
    if (this.refreshToken === null) return;
    try {
      await this.accessToken(true);
      this.user = await this.api.me();
    } catch {
      this.forget();
    }
    this.changed();
  }

  async signIn(login: string, password: string): Promise<void> {
    const result = await auth.login({ login, password });
    this.keep(result.accessToken, result.refreshToken, result.connectToken);
    this.user = result.user;
    this.changed();
  }

  async signOut(): Promise<void> {
    const token = this.refreshToken;
    this.forget();
    this.changed();
    // Ends the session on the server, which also closes its sockets.
    if (token !== null) await auth.logout(token).catch(() => undefined);
  }

  private forget(): void {
    this.access = undefined;
    this.connect = undefined;
    this.user = undefined;
    sessionStorage.removeItem(REFRESH_KEY);
  }
}
