/**
 * Response compression for the REST lists (issue 15): a page of jobs, notifications, rooms, messages
 * or ledger entries is repetitive JSON of several KB that brotli or gzip shrink to a fifth or less,
 * which pays on any real network. Everything else is left alone: a single object (GET /v1/me) is a
 * few hundred bytes, where compression costs CPU and buys nothing, and every route without the
 * plugin's hooks keeps its per-request cost.
 *
 * Rules: only the GET routes in LIST_ROUTES; only bodies of at least COMPRESSION_THRESHOLD_BYTES;
 * only when the client's Accept-Encoding names br or gzip (brotli preferred, at quality 4: most of
 * its gain at a fraction of the CPU of its default 11); `Vary: accept-encoding` on what was
 * compressed. Request bodies are never decompressed (REST payloads are small, BODY_LIMIT_BYTES).
 */
import compress from '@fastify/compress';
import type { FastifyInstance } from 'fastify';

/** Below this many bytes a body goes out as is. */
export const COMPRESSION_THRESHOLD_BYTES = 1024;

/** The list endpoints whose answers may be compressed (GET, by route pattern). */
export const LIST_ROUTES: ReadonlySet<string> = new Set([
  '/v1/admin/emails',
  '/v1/admin/payments',
  '/v1/admin/users',
  '/v1/categories',
  '/v1/contracts/:id/reviews',
  '/v1/jobs',
  '/v1/jobs/:id/bids',
  '/v1/me/bids',
  '/v1/me/contacts',
  '/v1/me/contracts',
  '/v1/notifications',
  '/v1/rooms',
  '/v1/rooms/:id/messages',
  '/v1/users',
  '/v1/users/:id/reviews',
  '/v1/wallet/transactions',
]);

const ROUTE_OPTIONS = {
  threshold: COMPRESSION_THRESHOLD_BYTES,
  encodings: ['br', 'gzip'],
} as const;

/** Must be registered before the routes: it marks each route as it is added. */
export async function registerCompression(app: FastifyInstance): Promise<void> {
  // Runs before the plugin's own onRoute hook (hooks run in the order added): a route marked
  // `false` gets no hook at all, where the plugin would otherwise add one to every route.
  app.addHook('onRoute', (route) => {
    if (route.compress !== undefined) return;
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    const list = methods.includes('GET') && LIST_ROUTES.has(route.url);
    route.compress = list ? { ...ROUTE_OPTIONS, encodings: [...ROUTE_OPTIONS.encodings] } : false;
  });
  await app.register(compress, { global: false, ...ROUTE_OPTIONS, encodings: [...ROUTE_OPTIONS.encodings] });
}
