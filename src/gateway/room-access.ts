/**
 * The gate in front of room actors: a `room.*` request reaches (and so activates) a room's actor
 * only when its sender is a member. Without it, every random room id cost an actor activation (a
 * query and two minutes of memory). The room actor still checks membership itself; this only
 * decides whether it is worth waking.
 *
 * A small per-node cache of positive answers keeps the hot path (sends) free of a query per frame.
 * Only "is a member" is cached, for `ttlMs`, and a room's entries are dropped whenever its
 * membership changes (the rooms.membership bus message every node receives). A stale "member" is
 * harmless: the actor refuses the request. "Not a member" is never cached, so a user just added can
 * use the room at once.
 */
import type { RoomId, UserId } from '../../protocol/src/ids.js';

export interface RoomAccessOptions {
  /** One indexed lookup: is the user a member of the room (false also for unknown rooms)? */
  readonly isMember: (userId: UserId, roomId: RoomId) => Promise<boolean>;
  /** Milliseconds on a monotonic clock (performance.now): only differences are used. */
  readonly now: () => number;
  /** How long a positive answer is reused. */
  readonly ttlMs?: number;
  /** Rooms remembered at most; the least recently added are dropped first. */
  readonly maxRooms?: number;
}

export function createRoomAccess(options: RoomAccessOptions) {
  // As long as a room actor trusts the members it read (MEMBERS_REFRESH_MS): a removal whose
  // announcement was lost ends within it on both paths.
  const ttlMs = options.ttlMs ?? 30_000;
  const maxRooms = options.maxRooms ?? 10_000;
  /** room → member → until when the answer holds. */
  const members = new Map<RoomId, Map<UserId, number>>();

  return {
    async mayUse(userId: UserId, roomId: RoomId): Promise<boolean> {
      const until = members.get(roomId)?.get(userId);
      if (until !== undefined && until > options.now()) return true;
      if (!(await options.isMember(userId, roomId))) return false;
      let room = members.get(roomId);
      if (room === undefined) {
        if (members.size >= maxRooms) {
          const oldest = members.keys().next().value;
          if (oldest !== undefined) members.delete(oldest);
        }
        room = new Map();
        members.set(roomId, room);
      }
      room.set(userId, options.now() + ttlMs);
      return true;
    },
    /** The room's membership changed: ask the database again next time. */
    forget(roomId: RoomId): void {
      members.delete(roomId);
    },
  };
}

export type RoomAccess = ReturnType<typeof createRoomAccess>;
