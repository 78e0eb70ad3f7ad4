/**
 * Connection errors come once per reconnect attempt, and a client reconnects every 2 s or sooner
 * for as long as Redis is away: logged each time, a Redis outage filled the logs (the Redis clients
 * themselves log at most every 10 s, redis.ts). A gate lets one call through per interval and
 * counts the ones it held back.
 */

/** How often a connection error of one source is logged at most. */
export const CONNECTION_ERROR_LOG_EVERY_MS = 10_000;

/**
 * Returns a function to call before each log line: undefined when this line is held back, else the
 * number of lines held back since the last one let through.
 */
export function logGate(
  intervalMs: number = CONNECTION_ERROR_LOG_EVERY_MS,
  now: () => number = () => performance.now(),
): () => number | undefined {
  let lastAt = Number.NEGATIVE_INFINITY;
  let held = 0;
  return () => {
    const at = now();
    if (at - lastAt < intervalMs) {
      held += 1;
      return undefined;
    }
    lastAt = at;
    const heldBack = held;
    held = 0;
    return heldBack;
  };
}
