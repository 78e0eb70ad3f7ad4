/**
 * Reconnect delays: exponential backoff with full jitter (a uniformly random delay between 0 and
 * the current ceiling), so clients dropped together by a node restart do not come back together.
 */

export interface ReconnectOptions {
  /** Ceiling of the first delay; each failed attempt doubles it. Default 250 ms. */
  readonly initialDelayMs: number;
  /** Largest ceiling. Default 10 s. */
  readonly maxDelayMs: number;
  /**
   * A connection that delivered `hello` and stayed open this long resets the backoff to its first
   * step; one that drops sooner keeps growing it, so a server that accepts and drops at once is
   * not hammered. Default 30 s (PROTOCOL.md, Close codes).
   */
  readonly stableAfterMs: number;
}

export const DEFAULT_RECONNECT: ReconnectOptions = {
  initialDelayMs: 250,
  maxDelayMs: 10_000,
  stableAfterMs: 30_000,
};

/** Delay before attempt number `attempt` (0 for the first retry): random in [0, min(max, initial·2^attempt)). */
export function backoffDelay(
  attempt: number,
  options: Pick<ReconnectOptions, 'initialDelayMs' | 'maxDelayMs'>,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(
    options.maxDelayMs,
    options.initialDelayMs * 2 ** Math.min(Math.max(attempt, 0), 30),
  );
  return Math.floor(random() * ceiling);
}

/**
 * The longest wait a server's `details.retryAfterMs` is taken for (as the backoff has its ceiling):
 * a buggy value (hours, 1e300) held the requests waiting on it that long (up to the 24.8 days a
 * timer holds), and a timer over 2^31 − 1 ms fires at once (browsers, Node), so a wait re-armed
 * from it spun. A non-finite number does not pass the codec in a server frame; here it is the cap.
 */
export const MAX_RETRY_AFTER_MS = 60_000;

/** A server's `retryAfterMs` as a wait: a number ≥ 0, at most MAX_RETRY_AFTER_MS (Infinity too); else undefined. */
export function retryAfterWait(value: unknown): number | undefined {
  if (typeof value !== 'number' || !(value >= 0)) return undefined;
  return Math.min(value, MAX_RETRY_AFTER_MS);
}

/**
 * A `Retry-After` header's value in ms (RFC 9110 §10.2.3: delay-seconds or an HTTP-date); undefined
 * when absent or unreadable. A number is always seconds, never a date: one with a fraction ("2.5",
 * not delay-seconds but plainly seconds) is rounded up to whole seconds, where `Date.parse("2.5")`
 * read it as 5 February 2001, long past, so no wait at all (review 32). A negative or malformed
 * number, or anything else without a letter, is unreadable. An HTTP-date counts from `now`: the
 * answer's own `Date` when it has one.
 */
export function retryAfterHeaderMs(header: unknown, now: number): number | undefined {
  const value = (Array.isArray(header) ? header[0] : header) as unknown;
  if (typeof value !== 'string') return undefined;
  const trimmed = value.trim();
  if (trimmed === '') return undefined;
  if (/^[+-]?(?:\d|\.\d)[\d.e+-]*$/i.test(trimmed)) {
    const seconds = Number(trimmed);
    return Number.isFinite(seconds) && seconds >= 0 ? Math.ceil(seconds) * 1000 : undefined;
  }
  // Every HTTP-date names its month (and day) in letters: without any, "12 30" or "2.5.1" is no
  // date, though Date.parse would make one of it.
  if (!/[a-z]/i.test(trimmed)) return undefined;
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}
