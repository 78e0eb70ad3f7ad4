/**
 * Fixed-window request counts per key in this process's memory: the REST per-IP limit.
 *
 * A window starts at a key's first request and lasts `windowMs` (monotonic clock); the first `max`
 * requests of a window pass, later ones are refused until it ends. At most `maxKeys` keys are
 * remembered, the least recently seen dropped first (RecencyMap), so a flood of distinct addresses
 * costs bounded memory; a dropped key starts a fresh window when it comes back.
 *
 * Synchronous and allocation-free on the allowed path on purpose: it runs before every limited
 * request, and the plugin it replaced (@fastify/rate-limit) cost several promises and three
 * response headers per request — a visible share of an authenticated GET's CPU.
 */
import { RecencyMap } from './recency-map.js';

export interface LocalRateLimitOptions {
  /** Requests allowed per key and window. */
  readonly max: number;
  readonly windowMs: number;
  /** Most keys remembered at once. */
  readonly maxKeys: number;
  /** Monotonic milliseconds (default `performance.now`); tests pass their own. */
  readonly now?: () => number;
}

interface Window {
  count: number;
  readonly endsAt: number;
}

/**
 * Counts one request of `key`. Answers `undefined` when it may pass, else the whole seconds (≥ 1)
 * until the key's window ends: the Retry-After of its 429.
 */
export type LocalRateLimit = (key: string) => number | undefined;

export function createLocalRateLimit(options: LocalRateLimitOptions): LocalRateLimit {
  const { max, windowMs } = options;
  if (!Number.isInteger(max) || max < 0) throw new RangeError('max must be a whole number ≥ 0');
  if (!(windowMs > 0)) throw new RangeError('windowMs must be > 0');
  const now = options.now ?? (() => performance.now());
  const windows = new RecencyMap<string, Window>(options.maxKeys);
  return (key) => {
    const at = now();
    let window = windows.get(key);
    if (window === undefined || at >= window.endsAt) {
      window = { count: 0, endsAt: at + windowMs };
      windows.set(key, window);
    }
    window.count += 1;
    if (window.count <= max) return undefined;
    return Math.max(1, Math.ceil((window.endsAt - at) / 1000));
  };
}
