/**
 * Helmet headers, the CORS allowlist and per-IP rate limiting. The per-IP limit is counted in this
 * process's memory, not in Redis: it guards each api process against floods, costs no round trip per
 * request, and keeps working while Redis is down; what must hold across nodes (login throttling) is
 * counted in Redis by the auth service.
 */
import cors from '@fastify/cors';
import helmet from '@fastify/helmet';
import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance } from 'fastify';

export interface SecurityOptions {
  readonly corsOrigins: readonly string[];
  readonly rateLimitPerMinute: number;
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
    // Distinct client IPs remembered at once (least recently seen dropped first): bounded memory.
    cache: 10_000,
    allowList: (request) => UNLIMITED_PATHS.some((path) => request.url.startsWith(path)),
  });
}
