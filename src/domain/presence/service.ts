/**
 * Presence rules: who may watch whom (mutual contacts only: each added the other, so adding
 * someone back is how a contact request is accepted), what a presence state is, and what happens
 * on a transition (offline stores the last-seen time in Postgres, table user_last_seen, then every
 * node hears it on the bus). Whether a user is online comes from the node-lease store in Redis.
 *
 * Sockets opening and closing are counted per batch, not per socket (each socket would otherwise
 * cost a Redis script and a PUBLISH, ~0.1 ms of this process's CPU in socket writes): changes wait
 * while the previous batch is in Redis and until batchIntervalMs after it was sent (a quiet node's
 * first change waits one event-loop turn), then go as one `apply`, and the batch's transitions
 * are announced in one PRESENCE_BATCH_TOPIC message. Invariants: one
 * batch in Redis at a time, and batches are announced in the order they were applied, so a
 * user's changes are counted and announced in the order their sockets opened and closed (what
 * the per-user actor used to serialize); every transition is announced, even an online and
 * offline of the same user in one batch; a failed batch rejects the promises of its changes only.
 */
import type { Kysely } from 'kysely';
import type { PresenceState } from '../../../protocol/src/frames.js';
import type { UserId } from '../../../protocol/src/ids.js';
import type { Database } from '../../db/database.js';
import { lastSeenOf, mutualContactIdsAmong, setLastSeenMany } from '../../db/repositories/users.repo.js';
import type { Bus } from '../../platform/bus/bus.js';
import { PRESENCE_BATCH_TOPIC, PRESENCE_TOPIC } from '../../platform/bus/topics.js';
import type { Clock } from '../../platform/clock.js';
import { AppError } from '../../platform/errors.js';
import type { PresenceStore } from '../../platform/presence-store.js';

export { PRESENCE_BATCH_TOPIC, PRESENCE_TOPIC };

/**
 * Least time between two presence batches of a node: at most 100 Redis round trips and PUBLISHes
 * a second for any connect rate, at the price of announcing a transition up to 10 ms later.
 */
const DEFAULT_BATCH_INTERVAL_MS = 10;
/** Wait before setting a node's counts again after Redis refused it. */
const RESYNC_RETRY_MS = 1_000;

interface PendingChange {
  readonly userId: UserId;
  readonly delta: 1 | -1;
  /** Told when the change is counted and announced (callers of connected/disconnected). */
  readonly resolve?: () => void;
  /** Told when its batch failed. */
  readonly reject: (error: unknown) => void;
}

export function createPresenceService(deps: {
  readonly db: Kysely<Database>;
  readonly store: PresenceStore;
  readonly bus: Bus;
  readonly clock: Clock;
  /**
   * Least time between two batches of socket changes, ms (default 10): a quiet node's change goes
   * at the next event-loop turn, a busy node's wait up to this long and go together.
   */
  readonly batchIntervalMs?: number;
}) {
  const { db, store, bus, clock } = deps;
  const batchIntervalMs = deps.batchIntervalMs ?? DEFAULT_BATCH_INTERVAL_MS;

  // When many sockets close together (a node restarts, a network blip), one UPDATE per user would
  // take one pool connection each and starve everything else: last-seen times are written in
  // batches instead, one statement for all that arrived while the previous one was in flight.
  let queued = new Map<UserId, Date>();
  let nextWrite: Promise<void> | undefined;
  let previousWrite: Promise<void> = Promise.resolve();
  let retryLastSeen: ReturnType<typeof setTimeout> | undefined;
  const recordLastSeen = (userIds: readonly UserId[], at: Date): Promise<void> => {
    for (const userId of userIds) queued.set(userId, at);
    if (nextWrite === undefined) {
      const write = previousWrite.then(async () => {
        const batch = queued;
        queued = new Map();
        nextWrite = undefined;
        try {
          await setLastSeenMany(
            db,
            [...batch].map(([userId, seenAt]) => ({ userId, at: seenAt })),
          );
        } catch (error) {
          // Kept for the next write (the database may be back by then), unless a later time for
          // the same user came in meanwhile: a failure loses no time that watchers were told.
          for (const [userId, seenAt] of batch) {
            const later = queued.get(userId);
            if (later === undefined || later < seenAt) queued.set(userId, seenAt);
          }
          retryLastSeen ??= setTimeout(() => {
            retryLastSeen = undefined;
            if (queued.size > 0) recordLastSeen([], clock.now()).catch(() => undefined);
          }, RESYNC_RETRY_MS);
          retryLastSeen.unref?.();
          throw error;
        }
      });
      nextWrite = write;
      previousWrite = write.catch(() => undefined);
    }
    return nextWrite;
  };

  /** Stores the last-seen times of the users going offline, then tells every node in one message. */
  const announce = async (states: readonly { userId: UserId; online: boolean }[]) => {
    if (states.length === 0) return;
    const now = clock.now();
    const offline = states.filter((state) => !state.online).map((state) => state.userId);
    // The announcement goes out even if the write fails.
    const written =
      offline.length === 0
        ? undefined
        : await recordLastSeen(offline, now).then(
            () => undefined,
            (error: unknown) => ({ error }),
          );
    const lastSeenAt = now.toISOString();
    const told = states.map(
      ({ userId, online }): PresenceState =>
        online ? { userId, status: 'online', lastSeenAt: null } : { userId, status: 'offline', lastSeenAt },
    );
    // A user who went offline here may have connected to another node while the last-seen write
    // was in flight; that node announced them online at once (it writes nothing), so this offline
    // would reach watchers after it and leave them shown offline while connected. Whoever is
    // online again is announced so at the end of this message (scale review 25).
    const last = new Map(states.map(({ userId, online }) => [userId, online]));
    const gone = [...last].flatMap(([userId, online]) => (online ? [] : [userId]));
    if (gone.length > 0) {
      const onlineNow = await store.isOnline(gone).catch(() => gone.map(() => false));
      for (const [i, userId] of gone.entries()) {
        if (onlineNow[i] === true) told.push({ userId, status: 'online', lastSeenAt: null });
      }
    }
    await bus.publish(PRESENCE_BATCH_TOPIC, { states: told });
    if (written !== undefined) throw written.error;
  };

  const announceOffline = (userIds: readonly UserId[]) =>
    announce(userIds.map((userId) => ({ userId, online: false })));

  let pending: PendingChange[] = [];
  /** This node's true socket count per user (the gateway's, `useLocalCounts`): what a resync sets. */
  let localCounts: (() => ReadonlyMap<UserId, number>) | undefined;
  /** The next batch sets this node's counts whole (from `localCounts`) instead of applying deltas. */
  let resyncDue = false;
  /**
   * Users of batches (and resyncs) Redis failed: their transitions, if any, were never announced,
   * and a batch that timed out may still have run (a stalled Redis runs it when it wakes), so the
   * resync finds nothing left to change for them. The resync that next succeeds announces their
   * current state. Each entry counts its failures, so a resync clears only what it covered.
   */
  const inDoubt = new Map<UserId, number>();
  let failures = 0;
  const doubt = (userIds: Iterable<UserId>) => {
    if (localCounts === undefined) return; // no resync ever comes to clear them
    failures += 1;
    for (const userId of userIds) inDoubt.set(userId, failures);
  };
  let resyncRetry: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;
  let scheduled = false;
  let inRedis = false;
  let lastFlushAt = Number.NEGATIVE_INFINITY;
  /** The announcement of the latest batch: the next one goes out after it, so order holds per user. */
  let announced: Promise<unknown> = Promise.resolve();

  /** Schedules the next batch unless one is scheduled or in Redis (its end schedules the next). */
  const kick = () => {
    if (scheduled || inRedis || (pending.length === 0 && !resyncDue)) return;
    scheduled = true;
    const wait = lastFlushAt + batchIntervalMs - performance.now();
    if (wait <= 0) setImmediate(flush);
    else setTimeout(flush, wait);
  };

  /**
   * What Redis holds for this node is unknown (a batch or a resync failed: it may or may not have
   * run): its counts are set whole RESYNC_RETRY_MS later, when Redis may be back. One retry armed at
   * a time; nothing after `stop`.
   */
  const resyncLater = () => {
    if (localCounts === undefined || stopped || resyncRetry !== undefined) return;
    resyncRetry = setTimeout(() => {
      resyncRetry = undefined;
      if (stopped) return;
      resyncDue = true;
      kick();
    }, RESYNC_RETRY_MS);
    resyncRetry.unref?.();
  };

  const flush = () => {
    scheduled = false;
    if (inRedis || (pending.length === 0 && !resyncDue)) return;
    const batch = pending;
    pending = [];
    // A copy, taken now: sockets opening or closing while the resync is in Redis are changes of
    // the next batch, and must not be in the counts this one sets too.
    const counts = resyncDue && localCounts !== undefined ? new Map(localCounts()) : undefined;
    const doubted = counts === undefined ? undefined : new Map(inDoubt);
    resyncDue = false;
    inRedis = true;
    lastFlushAt = performance.now();
    const applied =
      counts === undefined
        ? store.apply(batch).then((transitions) =>
            batch.flatMap((change, i) => {
              const transition = transitions[i];
              return transition === null || transition === undefined
                ? []
                : [{ userId: change.userId, online: transition === 'online' }];
            }),
          )
        : store.reconcile(counts).then(async (changed) => {
            const states = changed.map(({ userId, transition }) => ({
              userId: userId as UserId,
              online: transition === 'online',
            }));
            // Users of failed batches the resync changed nothing for: announced as they are now.
            const told = new Set(states.map((state) => state.userId));
            const unsure = [...(doubted ?? new Map<UserId, number>()).keys()].filter((id) => !told.has(id));
            const online = await store.isOnline(unsure);
            for (const [i, userId] of unsure.entries()) states.push({ userId, online: online[i] === true });
            for (const [userId, failure] of doubted ?? []) {
              if (inDoubt.get(userId) === failure) inDoubt.delete(userId);
            }
            return states;
          });
    // Only Redis failing leaves its counts in doubt (a failed announcement does not).
    applied.catch(() => {
      doubt(counts === undefined ? batch.map((change) => change.userId) : counts.keys());
      resyncLater();
    });
    const previous = announced;
    const announcing = applied.then(async (states) => {
      await previous;
      await announce(states);
    });
    announced = announcing.catch(() => undefined);
    // What arrived while this batch was in Redis goes next, as one batch.
    const next = () => {
      inRedis = false;
      kick();
    };
    applied.then(next, next);
    announcing.then(
      () => {
        for (const change of batch) change.resolve?.();
      },
      (error: unknown) => {
        // Once per distinct callback: the gateway's socket changes share one, so a failed batch
        // is one log line, not one per socket.
        for (const reject of new Set(batch.map((change) => change.reject))) reject(error);
      },
    );
  };

  const enqueue = (change: PendingChange) => {
    pending.push(change);
    kick();
  };
  const change = (userId: UserId, delta: 1 | -1) =>
    new Promise<void>((resolve, reject) => enqueue({ userId, delta, resolve, reject }));

  return {
    /**
     * A socket of the user opened on this node; settles once it is counted and, when it was the
     * user's first anywhere, announced online (batched with the other sockets of this turn).
     */
    connected: (userId: UserId): Promise<void> => change(userId, 1),

    /** A socket of the user on this node closed; settles once counted (and the offline announced). */
    disconnected: (userId: UserId): Promise<void> => change(userId, -1),

    /**
     * `connected` (+1) / `disconnected` (-1) without a promise per socket (the gateway's hot path):
     * `onFailed` is called once per failed batch holding such a change.
     */
    socketChanged: (userId: UserId, delta: 1 | -1, onFailed: (error: unknown) => void): void =>
      enqueue({ userId, delta, reject: onFailed }),

    /**
     * The gateway's true socket count per user on this node, for resyncs: after a batch Redis
     * failed (it may or may not have run), and on `resync`, a batch sets the node's counts whole
     * from it and announces whoever that turns online or offline.
     */
    useLocalCounts: (counts: () => ReadonlyMap<UserId, number>): void => {
      localCounts = counts;
    },

    /**
     * Sets Redis to this node's counts with the next batch (the node's lease lapsed and a reaper
     * removed its counts). Runs in order with the other batches; retried every RESYNC_RETRY_MS
     * while Redis refuses it.
     */
    resync: (): void => {
      if (localCounts === undefined || stopped) return;
      resyncDue = true;
      kick();
    },

    /** No resync retries after this (shutdown). */
    stop: (): void => {
      stopped = true;
      clearTimeout(resyncRetry);
      resyncRetry = undefined;
    },

    /** Settles when every socket change asked for so far is counted and announced (shutdown). */
    drained: async (): Promise<void> => {
      for (;;) {
        const last = announced;
        await last;
        if (pending.length === 0 && !resyncDue && !inRedis && !scheduled && last === announced) return;
        // A batch still waits for its turn (setImmediate) or for the one in Redis.
        await new Promise((resolve) => setImmediate(resolve));
      }
    },

    /** Announces users of dead nodes (and of this node's previous life) as offline. */
    announceOffline,

    /**
     * @throws AppError FORBIDDEN when any id is not a mutual contact of the watcher (the watcher
     * added them and they added the watcher); nothing is revealed about the refused ids.
     */
    async assertMayWatch(watcher: UserId, userIds: readonly UserId[]): Promise<void> {
      const contacts = await mutualContactIdsAmong(db, watcher, userIds);
      const notContacts = userIds.filter((id) => !contacts.has(id));
      if (notContacts.length > 0) {
        throw new AppError('FORBIDDEN', 'presence is visible for mutual contacts only', {
          details: { userIds: notContacts },
        });
      }
    },

    async snapshot(userIds: readonly UserId[]): Promise<PresenceState[]> {
      const [online, lastSeen] = await Promise.all([store.isOnline(userIds), lastSeenOf(db, userIds)]);
      return userIds.map((userId, i) =>
        online[i]
          ? { userId, status: 'online', lastSeenAt: null }
          : { userId, status: 'offline', lastSeenAt: lastSeen.get(userId)?.toISOString() ?? null },
      );
    },
  };
}

export type PresenceService = ReturnType<typeof createPresenceService>;
