/**
 * The only place that constructs ioredis clients. Clients reconnect forever with capped backoff, so
 * a Redis restart heals without restarting gigwire; readiness reports the outage meanwhile.
 */
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from './logger.js';

export type { Redis } from 'ioredis';

export interface RedisClientOptions {
  /** `redis://…` / `rediss://…` URL, or an absolute unix socket path. */
  readonly endpoint: string;
  /** Shown in logs: which client this is (`main`, `subscriber`, `tasks`). */
  readonly name: string;
  readonly log: Logger;
  /**
   * BullMQ workers and blocking commands need `null` (wait for reconnects forever);
   * request paths keep a bound so a dead Redis fails the request instead of hanging it.
   */
  readonly maxRetriesPerRequest?: number | null;
  /**
   * Milliseconds after which a command without an answer is rejected ("Command timed out"), even
   * while the connection looks healthy (a stalled or SIGSTOPped server never closes it). Set it on
   * every client used on request paths (the main client, the bus subscriber); never on clients
   * that run blocking commands (BullMQ). Unset: no limit.
   */
  readonly commandTimeoutMs?: number;
}

const LOG_EVERY_MS = 10_000;

export function createRedisClient(options: RedisClientOptions): Redis {
  const settings: RedisOptions = {
    connectionName: `gigwire:${options.name}`,
    maxRetriesPerRequest: options.maxRetriesPerRequest === undefined ? 2 : options.maxRetriesPerRequest,
    retryStrategy: (attempt) => Math.min(100 * attempt, 2_000),
    lazyConnect: false,
    // A failover behind one endpoint (a DNS name or proxy moved to the promoted replica) leaves
    // this connection on the demoted primary, which answers every write READONLY for as long as it
    // stays connected (and PING as ever). Connect again, to whatever the endpoint names now; the
    // refused command fails (1, not 2: a write resent alone could leave its MULTI half applied).
    // ops-review25-redis-failover.int.test.ts.
    reconnectOnError: (error) => (error.message.startsWith('READONLY') ? 1 : false),
    ...(options.commandTimeoutMs === undefined ? {} : { commandTimeout: options.commandTimeoutMs }),
  };
  const client = new Redis(options.endpoint, settings);
  // Without an 'error' listener ioredis prints every reconnect failure; log them at most every 10 s.
  let lastLoggedAt = 0;
  client.on('error', (error: Error) => {
    const now = Date.now();
    if (now - lastLoggedAt < LOG_EVERY_MS) return;
    lastLoggedAt = now;
    options.log.warn({ err: error, client: options.name }, 'redis connection error');
  });
  client.on('ready', () => {
    if (lastLoggedAt !== 0) options.log.info({ client: options.name }, 'redis connection restored');
    lastLoggedAt = 0;
  });
  return client;
}

/** Closes a client politely, falling back to a hard disconnect when Redis is unreachable. */
export async function closeRedisClient(client: Redis): Promise<void> {
  if (client.status === 'end') return;
  if (client.status !== 'ready') {
    client.disconnect();
    return;
  }
  try {
    await client.quit();
  } catch {
    client.disconnect();
  }
}
