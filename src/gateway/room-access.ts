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
 *
 * So every refusal costs a lookup: each user's refusals take from a budget of their own on this
 * node (a token bucket, REFUSAL_BURST at once, then REFUSALS_PER_SECOND), and a lookup a spent
 * budget would pay for is not made: RATE_LIMITED instead (review 31: before, one account naming
 * random room ids on its 20 sockets within their frame rate made 1 000 lookups a second, each
 * answered FORBIDDEN, none counted toward a close). A member's requests spend nothing.
 */
import type { RoomId, UserId } from '../../protocol/src/ids.js';
import { AppError } from '../platform/errors.js';
import { RecencyMap } from '../platform/recency-map.js';

/** Refused lookups (not a member, or no such room) one user may cause at once on this node... */
export const REFUSAL_BURST = 300;
/** ...and per second after that. */
export const REFUSALS_PER_SECOND = 10;
/** Users whose refusal budget this node remembers (least recently used forgotten: a full one again). */
const REFUSAL_BUDGETS_KEPT = 10_000;

export interface RoomAccessOptions {
  /** One indexed lookup: is the user a member of the room (false also for unknown rooms)? */
  readonly isMember: (userId: UserId, roomId: RoomId) => Promise<boolean>;
  /** Milliseconds on a monotonic clock (performance.now): only differences are used. */
  readonly now: () => number;
  /** How long a positive answer is reused. */
  readonly ttlMs?: number;
  /** Rooms remembered at most; the least recently added are dropped first. */
  readonly maxRooms?: number;
  /** Refusals per user at once (default REFUSAL_BURST) and per second (default REFUSALS_PER_SECOND). */
  readonly refusalBurst?: number;
  readonly refusalsPerSecond?: number;
}

export function createRoomAccess(options: RoomAccessOptions) {
  // As long as a room actor trusts the members it read (MEMBERS_REFRESH_MS): a removal whose
  // announcement was lost ends within it on both paths.
  const ttlMs = options.ttlMs ?? 30_000;
  const maxRooms = options.maxRooms ?? 10_000;
  /** room → member → until when the answer holds. */
  const members = new Map<RoomId, Map<UserId, number>>();
  const burst = options.refusalBurst ?? REFUSAL_BURST;
  const perSecond = options.refusalsPerSecond ?? REFUSALS_PER_SECOND;
  /** Refusal budgets below full (a user absent here has a full one). */
  const refusals = new RecencyMap<UserId, { tokens: number; at: number }>(REFUSAL_BUDGETS_KEPT);
  const refusalsLeft = (userId: UserId, at: number) => {
    const budget = refusals.get(userId);
    return budget === undefined
      ? burst
      : Math.min(burst, budget.tokens + ((at - budget.at) * perSecond) / 1000);
  };

  const giveBack = (userId: UserId) => {
    const at = options.now();
    const tokens = Math.min(burst, refusalsLeft(userId, at) + 1);
    if (tokens >= burst) refusals.delete(userId);
    else refusals.set(userId, { tokens, at });
  };

  return {
    /**
     * Whether the user is a member of the room (false also for unknown rooms).
     * @throws AppError RATE_LIMITED (`details.retryAfterMs`) when it would need a lookup and the
     * user's refusals spent their budget.
     */
    async mayUse(userId: UserId, roomId: RoomId): Promise<boolean> {
      const until = members.get(roomId)?.get(userId);
      if (until !== undefined && until > options.now()) return true;
      const left = refusalsLeft(userId, options.now());
      if (left < 1) {
        throw new AppError(
          'RATE_LIMITED',
          `at most ${perSecond} requests a second for rooms you are not a member of; retry shortly`,
          { details: { retryAfterMs: Math.max(1, Math.ceil(((1 - left) * 1000) / perSecond)) } },
        );
      }
      // Taken before the lookup, so lookups in flight at once cannot all pass on one token; given
      // back when the user is a member.
      refusals.set(userId, { tokens: left - 1, at: options.now() });
      let member: boolean;
      try {
        member = await options.isMember(userId, roomId);
      } catch (error) {
        giveBack(userId);
        throw error;
      }
      if (!member) return false;
      giveBack(userId);
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
