/**
 * Helmet headers, the CORS allowlist and per-IP rate limiting. The per-IP limit is counted in this
 * process's memory, not in Redis: it guards each api process against floods, costs no round trip per
 * request, and keeps working while Redis is down; what must hold across nodes (login throttling) is
 * counted in Redis by the auth service.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import cors from '@fastify/cors';
import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance } from 'fastify';
import helmet from 'helmet';

export interface SecurityOptions {
  readonly corsOrigins: readonly string[];
  readonly rateLimitPerMinute: number;
}

const UNLIMITED_PATHS = ['/health/', '/metrics'];

/**
 * The headers helmet's default configuration sets, computed once. Every one of them is static (no
 * CSP nonces, no directive functions), so running helmet per request (as @fastify/helmet does: it
 * builds the middleware and parses the CSP directives again for each request) bought nothing and
 * was a tenth of a small request's CPU.
 */
export function helmetHeaders(): ReadonlyArray<readonly [string, string]> {
  const headers: Array<readonly [string, string]> = [];
  const recorder = {
    setHeader: (name: string, value: string | number | readonly string[]) => {
      headers.push([name, String(value)]);
    },
    removeHeader: () => {},
  };
  helmet()({} as IncomingMessage, recorder as unknown as ServerResponse, () => {});
  return headers;
}

export async function registerSecurity(app: FastifyInstance, options: SecurityOptions): Promise<void> {
  const headers = helmetHeaders().map(([name, value]) => [name.toLowerCase(), value] as const);
  // Through Fastify's reply headers, not the raw response: the reply's headers are a plain object
  // written once by writeHead, while each raw setHeader validates the name and value and makes Node
  // merge the two header sets when the head is written (~3 % of GET /v1/me's CPU for 12 headers).
  // A route that sets its own header through the reply later (the web app's and the console's
  // content-security-policy) replaces the value, as before.
  app.addHook('onRequest', (_request, reply, done) => {
    for (const [name, value] of headers) reply.header(name, value);
    done();
  });
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
