/**
 * A budget per user on this node for the WebSocket requests that cost the node a database or Redis
 * round trip (or a signature check) and are not bounded otherwise: `presence.subscribe`,
 * `notifications.read`, `auth.refresh`. Room requests have their own bounds (the room actor's
 * queue, room-reads.ts); these were bounded only by each socket's frame rate — 50 a second on each
 * of a user's 20 sockets, 1 000 database round trips a second from one account where REST allows an
 * address 10 (review 24).
 *
 * A token bucket: BURST at once (a reconnect of every socket of a user resubscribing 1 000 contacts
 * in frames of 100 fits), refilled at PER_SECOND. A spent budget answers RATE_LIMITED with the wait
 * until it holds a request again; the SDK backs off and retries.
 */
import type { UserId } from '../../protocol/src/ids.js';
import { AppError } from '../platform/errors.js';
import { RecencyMap } from '../platform/recency-map.js';

export const USER_REQUESTS_PER_SECOND = 10;
export const USER_REQUEST_BURST = 300;
/** Users whose budget this node remembers (least recently used forgotten: a full budget again). */
const BUDGETS_KEPT = 10_000;

export interface UserRequestBudgetOptions {
  readonly perSecond?: number;
  readonly burst?: number;
  /** Milliseconds on a monotonic clock (default performance.now). */
  readonly now?: () => number;
}

/** Takes one request from the user's budget, or throws RATE_LIMITED (`details.retryAfterMs`). */
export type UserRequestBudget = (userId: UserId) => void;

export function createUserRequestBudget(options: UserRequestBudgetOptions = {}): UserRequestBudget {
  const perSecond = options.perSecond ?? USER_REQUESTS_PER_SECOND;
  const burst = options.burst ?? USER_REQUEST_BURST;
  const now = options.now ?? (() => performance.now());
  /** Budgets below full (a user absent here has a full one). */
  const budgets = new RecencyMap<UserId, { tokens: number; at: number }>(BUDGETS_KEPT);
  return (userId) => {
    const at = now();
    const budget = budgets.get(userId);
    const tokens =
      budget === undefined ? burst : Math.min(burst, budget.tokens + ((at - budget.at) * perSecond) / 1000);
    if (tokens < 1) {
      throw new AppError(
        'RATE_LIMITED',
        `at most ${perSecond} presence, notification and token requests per second per user; retry shortly`,
        { details: { retryAfterMs: Math.max(1, Math.ceil(((1 - tokens) * 1000) / perSecond)) } },
      );
    }
    budgets.set(userId, { tokens: tokens - 1, at });
  };
}
