/**
 * Presence rules: who may watch whom (mutual contacts only: each added the other, so adding
 * someone back is how a contact request is accepted), what a presence state is, and
 * what happens on a transition (offline stores last_seen_at in Postgres, then every node hears it
 * on the bus). Whether a user is online comes from the node-lease store in Redis.
 */
import type { Kysely } from 'kysely';
import type { PresenceState } from '../../../protocol/src/frames.js';
import type { UserId } from '../../../protocol/src/ids.js';
import type { Database } from '../../db/database.js';
import { lastSeenOf, mutualContactIdsAmong, setLastSeenMany } from '../../db/repositories/users.repo.js';
import type { Bus } from '../../platform/bus/bus.js';
import { PRESENCE_TOPIC } from '../../platform/bus/topics.js';
import type { Clock } from '../../platform/clock.js';
import { AppError } from '../../platform/errors.js';
import type { PresenceStore } from '../../platform/presence-store.js';

export { PRESENCE_TOPIC };

export function createPresenceService(deps: {
  readonly db: Kysely<Database>;
  readonly store: PresenceStore;
  readonly bus: Bus;
  readonly clock: Clock;
}) {
  const { db, store, bus, clock } = deps;

  // When many sockets close together (a node restarts, a network blip), one UPDATE per user would
  // take one pool connection each and starve everything else: last-seen times are written in
  // batches instead, one statement for all that arrived while the previous one was in flight.
  let queued = new Map<UserId, Date>();
  let nextWrite: Promise<void> | undefined;
  let previousWrite: Promise<void> = Promise.resolve();
  const recordLastSeen = (userIds: readonly UserId[], at: Date): Promise<void> => {
    for (const userId of userIds) queued.set(userId, at);
    if (nextWrite === undefined) {
      const write = previousWrite.then(async () => {
        const batch = queued;
        queued = new Map();
        nextWrite = undefined;
        await setLastSeenMany(
          db,
          [...batch].map(([userId, seenAt]) => ({ userId, at: seenAt })),
        );
      });
      nextWrite = write;
      previousWrite = write.catch(() => undefined);
    }
    return nextWrite;
  };

  /** Stores last_seen_at, then tells every node; the announcement goes out even if the write fails. */
  const announceOffline = async (userIds: readonly UserId[]) => {
    const now = clock.now();
    const written = await recordLastSeen(userIds, now).then(
      () => undefined,
      (error: unknown) => ({ error }),
    );
    await Promise.all(
      userIds.map((userId) => {
        const state: PresenceState = { userId, status: 'offline', lastSeenAt: now.toISOString() };
        return bus.publish(PRESENCE_TOPIC, state);
      }),
    );
    if (written !== undefined) throw written.error;
  };

  return {
    /** A socket of the user opened on this node. */
    async connected(userId: UserId): Promise<void> {
      if ((await store.connected(userId)) === 'online') {
        const state: PresenceState = { userId, status: 'online', lastSeenAt: null };
        await bus.publish(PRESENCE_TOPIC, state);
      }
    },

    /** A socket of the user on this node closed. */
    async disconnected(userId: UserId): Promise<void> {
      if ((await store.disconnected(userId)) === 'offline') await announceOffline([userId]);
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
