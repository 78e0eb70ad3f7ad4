/**
 * Placement: which live gateway node hosts a keyed actor (a room). Every node computes the same
 * answer from the same input — the node registry (the presence leases in Redis) — by rendezvous
 * hashing: the owner of a key is the live node with the highest hash of (node, key). When a node
 * dies only its keys move (each to its next-best node); when one joins it takes about 1/N of them.
 *
 * Views are refreshed every `refreshMs` and at once on demand (a fenced write, a refused forward).
 * Two nodes may disagree for a moment while a lease appears or lapses; that is safe because the
 * owner fences its writes with an epoch stored in the database (see the room actor): a node that
 * wrongly believes it owns a room can take it over, but two can never both commit.
 *
 * A node may also be suspected: a request published to it reached nobody, so its subscriber
 * connection is closed (killed, cut off). It is left out until its lease shows a renewal it made
 * after the suspicion, which a dead node never does — failover then takes a round trip instead of
 * a lease period.
 */
import { CONNECTION_ERROR_LOG_EVERY_MS, logGate } from './log-gate.js';
import type { Logger } from './logger.js';
import type { Timers } from './timers.js';

/** A live node and when its lease lapses (ms since the epoch). */
export interface NodeLease {
  readonly nodeId: string;
  readonly expiresAt: number;
}

export interface Placement {
  /** The node that hosts `key` in this node's current view. */
  readonly ownerOf: (key: string) => string;
  readonly isMine: (key: string) => boolean;
  /** The live nodes of the current view, sorted. */
  readonly nodes: () => readonly string[];
  /** Reads the registry now (concurrent calls share one read); keeps the old view on failure. */
  readonly refresh: () => Promise<void>;
  /** Leaves `nodeId` out until it renews its lease (a request to it reached nobody). */
  readonly suspect: (nodeId: string) => void;
  /** Told with the new node list whenever the view changes. */
  readonly onChange: (listener: (nodes: readonly string[]) => void) => void;
  /**
   * This node is shutting down: it stops counting itself, so it owns nothing from now on (its
   * actors hand off, forwarded requests are refused ROOM_MOVED) while others still reach it.
   */
  readonly leave: () => void;
  /** Refreshes every `refreshMs` until `stop`. */
  readonly start: () => Promise<void>;
  readonly stop: () => void;
}

/** FNV-1a over UTF-16 code units, then murmur3's finalizer: cheap, and well spread for rendezvous. */
export function rendezvousScore(nodeId: string, key: string): number {
  let hash = 0x811c9dc5;
  const input = `${nodeId}\u0000${key}`;
  for (let i = 0; i < input.length; i++) {
    hash ^= input.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b);
  hash ^= hash >>> 13;
  hash = Math.imul(hash, 0xc2b2ae35);
  hash ^= hash >>> 16;
  return hash >>> 0;
}

/** The owner of `key` among `nodes` (non-empty): highest score, ties to the smaller node id. */
export function rendezvousOwner(nodes: readonly string[], key: string): string {
  let best = nodes[0] ?? '';
  let bestScore = -1;
  for (const node of nodes) {
    const score = rendezvousScore(node, key);
    if (score > bestScore || (score === bestScore && node < best)) {
      best = node;
      bestScore = score;
    }
  }
  return best;
}

/** Owners remembered per view; a larger cache is simply started again. */
const MAX_CACHED_OWNERS = 100_000;

export function createPlacement(options: {
  readonly nodeId: string;
  /** The registry: nodes whose lease has not lapsed. */
  readonly liveNodes: () => Promise<readonly NodeLease[]>;
  readonly refreshMs: number;
  readonly timers: Timers;
  readonly log: Logger;
}): Placement {
  const { nodeId, timers, log } = options;
  let view: readonly string[] = [nodeId];
  let owners = new Map<string, string>();
  /** Suspected node → the lease expiry it had when suspected. */
  const suspects = new Map<string, number>();
  let leases: readonly NodeLease[] = [];
  const listeners: ((nodes: readonly string[]) => void)[] = [];
  let reading: Promise<void> | undefined;
  let cancelTimer: (() => void) | undefined;
  let running = false;
  let leaving = false;
  const registryErrorGate = logGate(CONNECTION_ERROR_LOG_EVERY_MS, timers.now);

  const applyView = () => {
    // A suspect whose lease lapsed is gone from the registry: a later life renews a newer lease
    // anyway, so forgetting it keeps the map to the nodes that exist (names change every deploy).
    const listed = new Set(leases.map((lease) => lease.nodeId));
    for (const suspect of suspects.keys()) if (!listed.has(suspect)) suspects.delete(suspect);
    const next = new Set<string>(leaving ? [] : [nodeId]);
    for (const lease of leases) {
      if (leaving && lease.nodeId === nodeId) continue;
      const suspectedAt = suspects.get(lease.nodeId);
      if (suspectedAt !== undefined && lease.expiresAt <= suspectedAt) continue;
      suspects.delete(lease.nodeId);
      next.add(lease.nodeId);
    }
    const sorted = [...next].sort();
    if (sorted.length === view.length && sorted.every((node, i) => node === view[i])) return;
    log.info({ nodes: sorted, before: view }, 'placement view changed');
    view = sorted;
    owners = new Map();
    for (const listener of listeners) {
      try {
        listener(view);
      } catch (error) {
        log.error({ err: error }, 'placement listener failed');
      }
    }
  };

  const refresh = (): Promise<void> => {
    reading ??= options
      .liveNodes()
      .then(
        (live) => {
          leases = live;
          applyView();
        },
        (error: unknown) => {
          // Once a second (and on every demand) while Redis is away: one line per 10 s (review 31).
          const heldBack = registryErrorGate();
          if (heldBack !== undefined) {
            log.warn({ err: error, heldBack }, 'placement: node registry unreadable; keeping the last view');
          }
        },
      )
      .finally(() => {
        reading = undefined;
      });
    return reading;
  };

  const loop = () => {
    if (!running) return;
    cancelTimer = timers.schedule(options.refreshMs, () => {
      refresh().finally(loop);
    });
  };

  const ownerOf = (key: string): string => {
    let owner = owners.get(key);
    if (owner === undefined) {
      owner = rendezvousOwner(view, key);
      if (owners.size >= MAX_CACHED_OWNERS) owners = new Map();
      owners.set(key, owner);
    }
    return owner;
  };

  return {
    ownerOf,
    isMine: (key) => ownerOf(key) === nodeId,
    nodes: () => view,
    refresh,
    suspect: (node) => {
      if (node === nodeId || suspects.has(node)) return;
      const lease = leases.find((l) => l.nodeId === node);
      if (lease === undefined) return; // not in the view anyway
      suspects.set(node, lease.expiresAt);
      log.info({ node }, 'placement: node suspected gone (a request reached nobody)');
      applyView();
    },
    leave: () => {
      leaving = true;
      applyView();
    },
    onChange: (listener) => {
      listeners.push(listener);
    },
    start: async () => {
      running = true;
      await refresh();
      loop();
    },
    stop: () => {
      running = false;
      cancelTimer?.();
    },
  };
}
