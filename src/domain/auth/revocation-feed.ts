/**
 * The node-local revocation feed behind `authenticate`: which sessions ended, and which users
 * changed (session version, lock, roles), recently enough that an access token issued before could
 * still be unexpired. With it, a token whose signature and expiry are valid is answered without
 * reading its session row — unless the feed is stale.
 *
 * Sources:
 * - the `auth_revocations` table (written by triggers, migration 0012), polled by one query per
 *   node every `pollMs`: the first poll loads the last `windowMs`, each later one every row whose
 *   transaction the previous poll's snapshot could not see, so a revocation that committed late
 *   is still read (and none twice);
 * - the bus announcements (`add`), which take effect at once, before the next poll.
 *
 * Invariants:
 * - Freshness: `check` answers 'stale' unless a poll whose query was *sent* less than
 *   `maxStalenessMs` (≤ 1 000) ago has been applied. A revocation committed at t is in every poll
 *   sent after t, so once the feed is fresh at t + 1 s it knows it: a revoked session is refused
 *   within 1 s on every node even when the bus message is lost. A stale feed (database down, loop
 *   stalled) never vouches for a session: the caller reads the session row instead.
 * - Entries are kept for `windowMs` of the database clock after they were written (an access
 *   token's lifetime plus a margin; the caller passes it) and then dropped: no token issued before
 *   them is still valid.
 */
import type { SessionId, UserId } from '../../../protocol/src/ids.js';
import type { AuthRevocation, AuthRevocationPage } from '../../db/repositories/sessions.repo.js';

export type RevocationVerdict =
  /** The session ended: refuse. */
  | 'revoked'
  /** Something about the user changed (or the feed is stale): read the session row. */
  | 'check'
  | 'stale'
  /** Nothing ended this session within a token's lifetime: its valid token may be trusted. */
  | 'clear';

export interface RevocationFeedOptions {
  /** One poll: the first with `{ withinMs }`, later ones with the previous page's `{ snapshot }`. */
  readonly read: (
    since: { readonly snapshot: string } | { readonly withinMs: number },
  ) => Promise<AuthRevocationPage>;
  /** How long an entry matters, ms of the database clock (access token TTL + leeway + margin). */
  readonly windowMs: number;
  /** Longest age of the last applied poll (from when it was sent) the feed answers on. ≤ 1 000. */
  readonly maxStalenessMs: number;
  /** Pause between the end of one poll and the start of the next. */
  readonly pollMs: number;
  /** Monotonic ms clock (default performance.now). */
  readonly now?: () => number;
  /** A poll failed (the feed turns stale if this lasts); called once per run of failures. */
  readonly onError?: (error: unknown) => void;
  /** Polls succeed again after failures. */
  readonly onRecovered?: () => void;
  /**
   * A poll after a gap this long (since the last applied poll was sent, ms) reloads the whole
   * window instead of continuing from the old snapshot: rows committed during the gap may have been
   * pruned by another node meanwhile (the prune spares only what committed in the last few
   * minutes), so an old snapshot could miss them. MUST stay well below the prune's spared age
   * (REVOCATION_PRUNE_EVERY_MS in service.ts). Default 60 s.
   */
  readonly resyncAfterMs?: number;
  /**
   * Called after each applied poll (prune hooks, tests). `full`: the page is a window load (the
   * first poll, or after a gap), which cannot name what changed before the window: the caller
   * must drop every row it holds that was read before.
   */
  readonly afterPoll?: (page: AuthRevocationPage, info: { readonly full: boolean }) => void;
}

export interface RevocationFeed {
  readonly check: (userId: UserId, sessionId: SessionId) => RevocationVerdict;
  /** A revocation heard on the bus (or made here): effective at once. */
  readonly add: (revoked: { readonly userId: UserId; readonly sessionId?: SessionId }) => void;
  /** Runs one poll now (the loop's step; tests call it directly). Rejects when the read fails. */
  readonly poll: () => Promise<void>;
  /** Starts the loop; resolves after the first poll (fresh) or its failure (stale until one works). */
  readonly start: () => Promise<void>;
  readonly stop: () => void;
  readonly isFresh: () => boolean;
  readonly size: () => { sessions: number; users: number };
}

export function createRevocationFeed(options: RevocationFeedOptions): RevocationFeed {
  const { read, windowMs, maxStalenessMs, pollMs } = options;
  const resyncAfterMs = options.resyncAfterMs ?? 60_000;
  if (maxStalenessMs > 1_000) throw new Error('maxStalenessMs must be at most 1 000 ms');
  const now = options.now ?? (() => performance.now());
  /** Entry → when it was written, ms of the database clock. */
  const sessions = new Map<SessionId, number>();
  const users = new Map<UserId, number>();
  let snapshot: string | undefined;
  /** When the last applied poll was sent (monotonic), and the database clock it saw. */
  let appliedSentAt = Number.NEGATIVE_INFINITY;
  let appliedDbNowMs: number | undefined;
  let failing = false;
  let timer: NodeJS.Timeout | undefined;
  let running = false;
  let polling: Promise<void> | undefined;

  /** The database clock now, estimated from the last poll (the wall clock before the first). */
  const dbNow = () => (appliedDbNowMs === undefined ? Date.now() : appliedDbNowMs + (now() - appliedSentAt));

  const remember = (map: Map<string, number>, key: string, atMs: number) => {
    const known = map.get(key);
    if (known === undefined || known < atMs) map.set(key, atMs);
  };

  const apply = (rows: readonly AuthRevocation[]) => {
    for (const row of rows) {
      if (row.sessionId === null) remember(users, row.userId, row.atMs);
      else remember(sessions, row.sessionId, row.atMs);
    }
  };

  const prune = (dbNowMs: number) => {
    const oldest = dbNowMs - windowMs;
    for (const map of [sessions, users] as Map<string, number>[])
      for (const [key, atMs] of map) if (atMs < oldest) map.delete(key);
  };

  const pollOnce = async () => {
    const sentAt = now();
    const full = snapshot === undefined || sentAt - appliedSentAt >= resyncAfterMs;
    const page = await read(full || snapshot === undefined ? { withinMs: windowMs } : { snapshot });
    apply(page.rows);
    snapshot = page.snapshot;
    // Polls run one at a time, so applied polls are in the order they were sent.
    appliedSentAt = sentAt;
    appliedDbNowMs = page.dbNowMs;
    prune(page.dbNowMs);
    options.afterPoll?.(page, { full });
  };

  const poll = () => {
    // One poll at a time: a caller arriving meanwhile waits for the one in flight and then runs its own
    // (a poll sent before the caller asked may miss what the caller is waiting for).
    const previous = polling ?? Promise.resolve();
    const next = previous.then(pollOnce, pollOnce);
    polling = next;
    const clear = () => {
      if (polling === next) polling = undefined;
    };
    next.then(clear, clear);
    return next;
  };

  const loop = async () => {
    timer = undefined;
    try {
      await poll();
      if (failing) {
        failing = false;
        options.onRecovered?.();
      }
    } catch (error) {
      if (!failing) {
        failing = true;
        options.onError?.(error);
      }
    }
    if (running) {
      timer = setTimeout(() => void loop(), pollMs);
      timer.unref();
    }
  };

  const isFresh = () => now() - appliedSentAt < maxStalenessMs;

  return {
    check: (userId, sessionId) => {
      if (sessions.has(sessionId)) return 'revoked';
      if (!isFresh()) return 'stale';
      return users.has(userId) ? 'check' : 'clear';
    },
    add: ({ userId, sessionId }) => {
      const atMs = dbNow();
      if (sessionId === undefined) remember(users, userId, atMs);
      else remember(sessions, sessionId, atMs);
    },
    poll,
    start: async () => {
      if (running) return;
      running = true;
      await loop();
    },
    stop: () => {
      running = false;
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
    },
    isFresh,
    size: () => ({ sessions: sessions.size, users: users.size }),
  };
}
