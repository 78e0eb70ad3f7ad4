/**
 * The per-user socket cap (WS_MAX_SOCKETS_PER_USER, per node) without locking out a user whose
 * network flapped. A socket whose peer vanished without a FIN (a phone that switched networks, a
 * laptop lid) stays open here until the idle timeout notices it; with several tabs reconnecting,
 * those half-open sockets filled the cap and the new ones were closed 1008, which tells a client
 * to stop: the user had no realtime until the dead sockets timed out.
 *
 * So a new socket arriving at the cap asks the user's own open sockets whether they are alive,
 * synchronously (parallel upgrades each decide against what the earlier ones did):
 * - a socket the cap pinged at least PROBE_GRACE_MS ago that has sent nothing since (no frame, no
 *   pong) is silent: the one heard from longest ago is closed 4100 ("replaced by a newer socket of
 *   this user", reconnect) and the new socket is admitted;
 * - when every open socket answered a ping sent within the last LIVE_PROOF_MS, they are
 *   demonstrably live: the new socket is refused 1008 "too many sockets for this user" (stop), as
 *   before;
 * - otherwise the sockets not already being asked are pinged now and the new socket is refused
 *   4101 ("too many sockets for this user: checking the others, retry"), a reconnect code: the
 *   client's next attempt after its backoff finds the answer.
 * Right after the node's event loop was held (loop-stalls.ts) nothing is replaced (pongs may still
 * wait to be handled): the arrival is refused 4101 instead.
 * Only the connecting user's own sockets are counted, pinged or closed (the hub's set for the
 * authenticated user id), so nobody can use this against another user.
 */
import { CloseCode } from '../../protocol/src/codes.js';
import type { Connection } from './connection.js';

/** A socket pinged this long ago that has sent nothing since is taken for gone. */
export const PROBE_GRACE_MS = 3_000;
/** An answered ping proves a socket live for this long (then a new arrival pings it again). */
export const LIVE_PROOF_MS = 10_000;

export const SOCKET_CAP_REASONS = {
  replaced: 'replaced by a newer socket of this user',
  checking: 'too many sockets for this user: checking the others, retry',
  full: 'too many sockets for this user',
} as const;

export type SocketCapDecision<C> =
  | { readonly kind: 'admit' }
  /** Admit, after closing `victim` (silent) with SOCKET_REPLACED. */
  | { readonly kind: 'replace'; readonly victim: C }
  /** Refuse with SOCKET_LIMIT_CHECKING: the others were asked, retry. */
  | { readonly kind: 'checking' }
  /** Refuse with POLICY_VIOLATION: every open socket is demonstrably live. */
  | { readonly kind: 'full' };

type Probed = Pick<Connection, 'isOpen' | 'lastHeardAt' | 'lastProbedAt' | 'probe'>;

/**
 * Decides a new socket of a user who holds `existing` on this node (closing ones are not counted),
 * pinging those that must be asked. Synchronous: a `replace` victim is closing as soon as the
 * caller closes it, so a parallel upgrade picks another socket or is refused.
 */
export function decideAtSocketCap<C extends Probed>(
  existing: ReadonlySet<C> | readonly C[],
  cap: number,
  now: number,
  /**
   * Whether the node's event loop was just held (loop-stalls.ts): pongs that arrived meanwhile may
   * not have been handled yet, so no socket is taken for silent now (the arrival is told to retry).
   */
  recentlyStalled = false,
): SocketCapDecision<C> {
  // The common case, decided without a look at each socket.
  if (('size' in existing ? existing.size : existing.length) < cap) return { kind: 'admit' };
  const open: C[] = [];
  for (const connection of existing) if (connection.isOpen) open.push(connection);
  if (open.length < cap) return { kind: 'admit' };
  let victim: C | undefined;
  let allProvenLive = true;
  for (const connection of open) {
    const probedAt = connection.lastProbedAt;
    const answered = probedAt !== undefined && connection.lastHeardAt >= probedAt;
    if (probedAt !== undefined && !answered && now - probedAt >= PROBE_GRACE_MS) {
      if (victim === undefined || connection.lastHeardAt < victim.lastHeardAt) victim = connection;
    }
    if (!answered || now - probedAt >= LIVE_PROOF_MS) allProvenLive = false;
  }
  if (victim !== undefined) return recentlyStalled ? { kind: 'checking' } : { kind: 'replace', victim };
  if (allProvenLive) return { kind: 'full' };
  for (const connection of open) {
    const probedAt = connection.lastProbedAt;
    const pending = probedAt !== undefined && connection.lastHeardAt < probedAt;
    const proven = probedAt !== undefined && !pending && now - probedAt < LIVE_PROOF_MS;
    // A pending ping is not sent again: that would move its deadline with every retry.
    if (!pending && !proven) connection.probe(now);
  }
  return { kind: 'checking' };
}

/** The close code and reason of each refusal or replacement. */
export const socketCapClose = {
  replaced: { code: CloseCode.SOCKET_REPLACED, reason: SOCKET_CAP_REASONS.replaced },
  checking: { code: CloseCode.SOCKET_LIMIT_CHECKING, reason: SOCKET_CAP_REASONS.checking },
  full: { code: CloseCode.POLICY_VIOLATION, reason: SOCKET_CAP_REASONS.full },
} as const;
