/**
 * The node-local session-validity cache behind `authenticate`: the session row every WebSocket
 * upgrade and authenticated REST request checks is answered from memory, otherwise read (through
 * the per-tick batcher).
 *
 * Invariants:
 * - Hard staleness bound: an entry is used only while `now - readAt < maxAgeMs`, where `readAt` is
 *   taken before its query was sent — unless the caller says the entry is `trusted`: the revocation
 *   feed is fresh and names neither the session nor its user, so no change of the row can have
 *   committed since it was read except in the last second (revocation-feed.ts). A revocation whose
 *   bus message never arrives is therefore seen by every request that starts 1 s after it committed.
 * - Every change the feed or the bus reports must reach `forget` (the caller's duty): a trusted
 *   entry is only as good as that.
 * - `forget` (a revocation announced on the bus, or made on this node) drops the user's entries at
 *   once, and no load that was already in flight may store its (possibly older) answer afterwards
 *   (an epoch counter), nor may a later caller join such a load.
 * - Bounded: at most `maxEntries` entries, the least recently used dropped first (a trusted entry
 *   lives as long as it is used, not `maxAgeMs`). A RecencyMap, not delete + set per hit: that
 *   made every hit of a hot session cost tens of µs in a full Map (recency-map.ts).
 * - A read in flight is joined only while it was asked for less than `maxAgeMs` ago (the same
 *   bound as an entry's): a slow database must not hand a later caller a pre-revocation row.
 * - Only found rows are kept: a missing session is asked for again each time.
 * - `prefill` (the feed's rows of newly created sessions) stores only if no `forget` happened since
 *   the rows' query was sent: an older snapshot must not undo a revocation heard meanwhile.
 */
import type { SessionId, UserId } from '../../../protocol/src/ids.js';
import { RecencyMap } from '../../platform/recency-map.js';

export interface SessionCacheOptions<V> {
  /** Reads one session's row (the per-tick batcher); undefined when there is none. */
  readonly load: (sessionId: SessionId) => Promise<V | undefined>;
  /** Whose session a row is, so a user's revocation finds its entries. */
  readonly userOf: (row: V) => UserId;
  /** Longest an answer is reused, ms. MUST stay ≤ 1 000: revocation within 1 s depends on it. */
  readonly maxAgeMs: number;
  /** Most entries kept. */
  readonly maxEntries: number;
  /** A monotonic ms clock (default `performance.now`): wall-clock jumps must not extend an entry. */
  readonly now?: () => number;
}

export interface SessionCache<V> {
  /** The session's row; `trusted`: the revocation feed vouches for it, any age will do. */
  readonly get: (sessionId: SessionId, trusted?: boolean) => Promise<V | undefined>;
  /**
   * The row `get` would answer from memory right now, by the same rules; undefined when `get`
   * would have to read it (never reads). Lets a caller decide without waiting when it can.
   */
  readonly peek: (sessionId: SessionId, trusted?: boolean) => V | undefined;
  /** Stores rows read elsewhere (sent at `readAt`, at `epoch`), unless a forget came after. */
  readonly prefill: (
    rows: readonly [SessionId, V][],
    sent: { readonly readAt: number; readonly epoch: number },
  ) => void;
  /** Counts forgets: taken before a prefill's query is sent. */
  readonly epoch: () => number;
  /** Drops the entries of this user's session, or of all their sessions when sessionId is absent. */
  readonly forget: (revoked: { readonly userId: UserId; readonly sessionId?: SessionId }) => void;
  /** Drops every entry, and no load in flight stores its answer (a forget of everyone). */
  readonly clear: () => void;
  readonly size: () => number;
}

interface Entry<V> {
  readonly row: V;
  readonly readAt: number;
}

export function createSessionCache<V>(options: SessionCacheOptions<V>): SessionCache<V> {
  const { load, userOf, maxAgeMs, maxEntries } = options;
  const now = options.now ?? (() => performance.now());
  const entries = new RecencyMap<SessionId, Entry<V>>(maxEntries);
  /** Reads in flight, with when each was asked for (its query was sent no earlier). */
  const loading = new Map<SessionId, { readonly promise: Promise<V | undefined>; readonly readAt: number }>();
  let epoch = 0;

  const store = (sessionId: SessionId, row: V, readAt: number) => {
    // A read that answers late (or a prefill from an older snapshot) never replaces a later one.
    const known = entries.peek(sessionId);
    if (known !== undefined && known.readAt > readAt) return;
    entries.set(sessionId, { row, readAt });
  };

  /** The entry's row while it may be used at `at` (else the entry is dropped). */
  const usable = (sessionId: SessionId, trusted: boolean, at: number): V | undefined => {
    const entry = entries.get(sessionId);
    if (entry === undefined) return undefined;
    if (trusted || at - entry.readAt < maxAgeMs) return entry.row;
    entries.delete(sessionId);
    return undefined;
  };

  return {
    peek: (sessionId, trusted = false) => usable(sessionId, trusted, now()),
    get: (sessionId, trusted = false) => {
      const readAt = now();
      const row = usable(sessionId, trusted, readAt);
      if (row !== undefined) return Promise.resolve(row);
      const inFlight = loading.get(sessionId);
      // A read asked for maxAgeMs ago or more may still answer from a snapshot older than a
      // revocation whose announcement was lost (a slow database): it is not joined, as an entry
      // that old would not be used.
      if (inFlight !== undefined && readAt - inFlight.readAt < maxAgeMs) return inFlight.promise;
      const startedIn = epoch;
      const done = () => {
        if (loading.get(sessionId)?.promise === promise) loading.delete(sessionId);
      };
      const promise = load(sessionId).then(
        (row) => {
          done();
          if (row !== undefined && epoch === startedIn) store(sessionId, row, readAt);
          return row;
        },
        (error: unknown) => {
          done();
          throw error;
        },
      );
      loading.set(sessionId, { promise, readAt });
      return promise;
    },
    prefill: (rows, sent) => {
      if (sent.epoch !== epoch) return;
      for (const [sessionId, row] of rows) store(sessionId, row, sent.readAt);
    },
    epoch: () => epoch,
    forget: ({ userId, sessionId }) => {
      epoch += 1;
      loading.clear();
      if (sessionId !== undefined) {
        entries.delete(sessionId);
        return;
      }
      for (const [key, entry] of entries.entries()) if (userOf(entry.row) === userId) entries.delete(key);
    },
    clear: () => {
      epoch += 1;
      loading.clear();
      entries.clear();
    },
    size: () => entries.size,
  };
}
