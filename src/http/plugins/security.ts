/** Helmet headers, the CORS allowlist and per-IP rate limiting shared through Redis. */
import cors from '@fastify/cors';
import helmet from '@fastify/helmet';
import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance } from 'fastify';
import type { Redis } from '../../platform/redis.js';

export interface SecurityOptions {
  readonly corsOrigins: readonly string[];
  readonly rateLimitPerMinute: number;
  readonly redis: Redis;
  readonly redisPrefix: string;
}

const UNLIMITED_PATHS = ['/health/', '/metrics'];

export async function registerSecurity(app: FastifyInstance, options: SecurityOptions): Promise<void> {
  await app.register(helmet, { global: true });
  await app.register(cors, {
    // No allowlist, no cross-origin access: browsers on other origins are refused by default.
    origin: options.corsOrigins.length > 0 ? [...options.corsOrigins] : false,
    credentials: false,
    // What a browser app needs to read: the request id to quote, when to retry, and whether a
    // retried command was answered from its Idempotency-Key (the SDK's REST client).
    exposedHeaders: ['x-request-id', 'retry-after', 'idempotent-replayed'],
  });
  await app.register(rateLimit, {
    global: true,
    max: options.rateLimitPerMinute,
    timeWindow: 60_000,
    redis: options.redis,
    nameSpace: `${options.redisPrefix}:rate:`,
    // A Redis outage must not take REST down with it; readiness reports the outage.
    skipOnError: true,
    allowList: (request) => UNLIMITED_PATHS.some((path) => request.url.startsWith(path)),
  });
}
