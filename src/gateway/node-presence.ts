/**
 * This gateway node in the node registry: its presence lease (renewed every third of
 * PRESENCE_LEASE_MS), the reaping of nodes whose lease lapsed (their users go offline), and the
 * cleanup of what an earlier life of this NODE_ID left behind. Placement reads the same leases.
 * Periodic work runs on the Timers port.
 */
import { UserId } from '../../protocol/src/ids.js';
import type { PresenceService } from '../domain/presence/service.js';
import { CONNECTION_ERROR_LOG_EVERY_MS, logGate } from '../platform/log-gate.js';
import type { Logger } from '../platform/logger.js';
import type { PresenceStore } from '../platform/presence-store.js';
import { type CancelTimer, every, type Timers } from '../platform/timers.js';

const REAP_EVERY_MS = 3_000;
/** Beyond one renewal interval, for a live twin's renewal to land (its own timer, Redis, GC). */
const TWIN_RENEWAL_SLACK_MS = 1_000;

/**
 * Sockets of this node opening and closing, as presence changes (counted and announced in batches
 * by the presence service). Fire and forget for the socket; a failed batch (Redis down) is logged
 * once, not once per socket in it. Redis holds a running count per node, so a lost batch would
 * leave it wrong for good (a user online with no socket, or offline with one): this keeps the
 * node's true count per user and, after a failure, has the service set Redis to it (`resync`).
 */
export function createSocketPresence(deps: {
  readonly presence: Pick<PresenceService, 'socketChanged' | 'useLocalCounts' | 'resync'>;
  readonly log: Logger;
}) {
  const counts = new Map<UserId, number>();
  deps.presence.useLocalCounts(() => counts);
  const report = (error: unknown) =>
    deps.log.error({ err: error }, "presence changes failed; this node's counts will be set again");
  return {
    opened: (userId: UserId) => {
      counts.set(userId, (counts.get(userId) ?? 0) + 1);
      deps.presence.socketChanged(userId, 1, report);
    },
    closed: (userId: UserId) => {
      const left = (counts.get(userId) ?? 0) - 1;
      if (left > 0) counts.set(userId, left);
      else counts.delete(userId);
      deps.presence.socketChanged(userId, -1, report);
    },
    /** Sets Redis to this node's true counts (after its lease lapsed and its counts were reaped). */
    resync: () => deps.presence.resync(),
  };
}

export function createNodePresence(deps: {
  readonly nodeId: string;
  readonly store: PresenceStore;
  readonly presence: Pick<PresenceService, 'announceOffline'>;
  readonly timers: Timers;
  readonly leaseMs: number;
  readonly log: Logger;
  /**
   * Told when a renewal found the lease gone (a reaper removed this node's counts meanwhile), or
   * succeeded after one failed (that one may have run and found it gone): the counts are set again.
   */
  readonly onLeaseLost: () => void;
}) {
  const { store, log } = deps;
  const stops: CancelTimer[] = [];
  // Renewals (every third of the lease) and reaps (every 3 s) fail for as long as Redis is away:
  // one line per 10 s each, with the count held back, not one per attempt (review 31).
  const renewalErrorGate = logGate(CONNECTION_ERROR_LOG_EVERY_MS, deps.timers.now);
  const reapErrorGate = logGate(CONNECTION_ERROR_LOG_EVERY_MS, deps.timers.now);
  // A start refused before the lease was taken must not touch it at shutdown: it is a live twin's.
  let joined = false;

  const announceOffline = async (userIds: string[]) => {
    const parsed = userIds.map((id) => UserId.safeParse(id)).flatMap((r) => (r.success ? [r.data] : []));
    if (parsed.length > 0) await deps.presence.announceOffline(parsed);
  };

  const wait = (ms: number) => new Promise<void>((resolve) => deps.timers.schedule(ms, resolve));

  /**
   * A live lease under this NODE_ID at start belongs to a crashed earlier life (it stays as it is
   * until it lapses) or to another live process (it renews it every third of the lease). The second
   * is refused before anything is cleared: two processes under one NODE_ID would wipe each other's
   * presence counts and both host the rooms placement gives that node. A clean shutdown lets the
   * lease lapse, so only a restart after a crash waits here.
   */
  const refuseLiveTwin = async () => {
    const held = await store.ownLeaseExpiresAt();
    // Undefined once lapsed, by Redis's clock (this process's may be off).
    if (held === undefined) return;
    const waitMs = Math.floor(deps.leaseMs / 3) + TWIN_RENEWAL_SLACK_MS;
    log.info(
      { waitMs },
      'this NODE_ID holds a live presence lease: waiting to see whether another process renews it',
    );
    await wait(waitMs);
    const now = await store.ownLeaseExpiresAt();
    if (now !== undefined && now > held) {
      throw new Error(
        `NODE_ID "${deps.nodeId}" is in use: another live process renews its presence lease. Give each process its own NODE_ID`,
      );
    }
  };

  return {
    /**
     * Refuses a live twin, clears an earlier life's counts, takes the lease, then renews it and
     * reaps dead nodes.
     */
    join: async () => {
      await refuseLiveTwin();
      joined = true;
      // A previous life of this node (same NODE_ID, crashed) may have left counts behind.
      await announceOffline(await store.clearNode());
      await store.renewLease();
      // A renewal that failed may still have run (a command timed out on a stalled or cut-off
      // Redis runs when it wakes, or ioredis sends it again after reconnecting): if a reaper had
      // removed the lease and this node's counts by then, that renewal is the one that saw the
      // lease gone, and its answer is lost; the next one finds the lease and answers false. So
      // the counts are set again after the next renewal that succeeds (scale review 25).
      let renewalFailed = false;
      stops.push(
        every(deps.timers, Math.floor(deps.leaseMs / 3), () =>
          store
            .renewLease()
            .then((wasGone) => {
              const inDoubt = renewalFailed;
              renewalFailed = false;
              if (wasGone) {
                log.warn("presence lease had lapsed and was reaped; setting this node's counts again");
              } else if (inDoubt) {
                log.info("presence lease renewed after a failed renewal; setting this node's counts again");
              } else return;
              deps.onLeaseLost();
            })
            .catch((error: unknown) => {
              renewalFailed = true;
              const heldBack = renewalErrorGate();
              if (heldBack !== undefined) log.warn({ err: error, heldBack }, 'presence lease renewal failed');
            }),
        ),
        every(deps.timers, REAP_EVERY_MS, () =>
          store
            .reapDeadNodes()
            .then(announceOffline)
            .catch((error: unknown) => {
              const heldBack = reapErrorGate();
              if (heldBack !== undefined) log.warn({ err: error, heldBack }, 'presence reaper failed');
            }),
        ),
      );
    },
    /** Stops renewing and lets the lease lapse at once: placement elsewhere stops choosing this node. */
    withdraw: async () => {
      for (const stop of stops.splice(0)) stop();
      if (!joined) return;
      await store
        .expireLease()
        .catch((error: unknown) => log.warn({ err: error }, 'presence lease not expired'));
    },
    /** Leaves the registry: this node's users without another node go offline now. */
    leave: async () => {
      if (!joined) return;
      await announceOffline(await store.clearNode());
    },
  };
}
