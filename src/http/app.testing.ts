/**
 * Test scaffolding of the REST app's unit tests (no I/O): the real `buildApp` with a silent log, a
 * registry of its own, a health section that is always ready and no services behind the routes —
 * a test passes the stubs its requests reach in `rest` (merged over empty ones). Requests stopped
 * before any service (the input guard, validation, CORS, headers) need none.
 */
import pino from 'pino';
import { Registry } from 'prom-client';
import { type AppDeps, buildApp, type RestDeps } from './app.js';

export function restAppWithStubs(
  rest: Record<string, unknown> = {},
  websocket?: AppDeps['websocket'],
): ReturnType<typeof buildApp> {
  return buildApp({
    log: pino({ level: 'silent' }),
    metrics: new Registry(),
    health: { info: () => ({}), checks: {}, timeoutMs: 1_000, isDraining: () => false },
    httpEdge: { requestTimeoutMs: 10_000, maxConnectionsPerIp: 100, maxConnections: 1_000 },
    trustProxy: 0,
    websocket,
    rest: {
      auth: {},
      tokens: {},
      users: {},
      admin: {},
      rooms: { rooms: {}, idempotency: {} },
      security: { corsOrigins: [], rateLimitPerMinute: 10_000 },
      version: 'test',
      ...rest,
    } as unknown as RestDeps,
  });
}

/** The app with every request signed in as `userId` (worker and hirer), contract and review routes stubbed empty. */
export const signedInRestApp = (userId: string): ReturnType<typeof buildApp> =>
  restAppWithStubs({
    auth: { authenticateNow: () => ({ userId, roles: ['worker', 'hirer'], sessionId: 's' }) },
    contracts: { contracts: {}, idempotency: {} },
    reviews: { marketplace: {}, idempotency: {} },
  });
