/**
 * Review 30 (the REST edge as an attacker): requests that escaped the per-IP limit count now.
 * - OPTIONS: @fastify/cors answers a preflight (and, with CORS_ORIGINS set, our hook refuses an
 *   OPTIONS that is no preflight) in onRequest hooks that ran before the limit's, and without
 *   CORS_ORIGINS its catch-all `OPTIONS *` route was not marked limited: OPTIONS was a method a
 *   client could send without limit, each request with its log lines, on any path.
 * - A path Fastify cannot route (malformed percent-encoding, a parameter over maxParamLength) is
 *   answered by `frameworkErrors` before any hook runs: it was never counted either.
 * The app is the real one; the services the GETs reach are stubs.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { restAppWithStubs } from '../app.testing.js';

const ORIGIN = 'https://app.example.test';
const USER = '00000000-0000-4000-8000-000000000001';
const LIMIT = 3;

const restApp = (corsOrigins: string[]) =>
  restAppWithStubs({
    auth: { authenticateNow: () => ({ userId: USER, roles: ['worker', 'hirer'], sessionId: 's' }) },
    rooms: { rooms: { list: async () => ({ data: [], nextCursor: null }) }, idempotency: {} },
    security: { corsOrigins, rateLimitPerMinute: LIMIT },
  });

let app: Awaited<ReturnType<typeof restApp>> | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

const preflight = { origin: ORIGIN, 'access-control-request-method': 'PATCH' };

const expectRateLimited = (answer: {
  statusCode: number;
  headers: Record<string, unknown>;
  json(): unknown;
}) => {
  expect(answer.statusCode).toBe(429);
  expect(answer.headers['content-type']).toContain('application/problem+json');
  expect(answer.headers['retry-after']).toMatch(/^\d+$/);
  expect(answer.json()).toMatchObject({ code: 'RATE_LIMITED', status: 429 });
};

describe('OPTIONS and the per-IP limit', () => {
  it.each([
    ['a preflight from an allowed origin', [ORIGIN], preflight, 204],
    ['an OPTIONS that is no preflight, with CORS_ORIGINS set', [ORIGIN], {}, 400],
    ['an OPTIONS without CORS_ORIGINS (405: the path answers other methods)', [], preflight, 405],
  ] as const)(
    'counts %s: past RATE_LIMIT_PER_MINUTE it is 429 RATE_LIMITED',
    async (_name, origins, headers, status) => {
      app = await restApp([...origins]);
      for (let i = 0; i < LIMIT; i++) {
        const answer = await app.inject({ method: 'OPTIONS', url: '/v1/rooms', headers });
        expect(answer.statusCode, `request ${i + 1}`).toBe(status);
      }
      expectRateLimited(await app.inject({ method: 'OPTIONS', url: '/v1/rooms', headers }));
      // The same budget as every other request of that client.
      expectRateLimited(await app.inject({ url: '/v1/rooms', headers: { authorization: 'Bearer t' } }));
    },
  );

  it.each([
    [[ORIGIN], 204],
    [[], 405],
  ] as const)(
    'counts an OPTIONS once (CORS_ORIGINS %j), and a 429 of a cross-origin GET keeps its CORS headers',
    async (origins, status) => {
      app = await restApp([...origins]);
      const get = { origin: ORIGIN, authorization: 'Bearer t' };
      expect((await app.inject({ method: 'OPTIONS', url: '/v1/rooms', headers: preflight })).statusCode).toBe(
        status,
      );
      for (let i = 1; i < LIMIT; i++)
        expect((await app.inject({ url: '/v1/rooms', headers: get })).statusCode).toBe(200);
      const refused = await app.inject({ url: '/v1/rooms', headers: get });
      expectRateLimited(refused);
      // A browser app on an allowed origin can read the 429 and its Retry-After.
      if (origins.length > 0) expect(refused.headers['access-control-allow-origin']).toBe(ORIGIN);
    },
  );
});

describe('a path Fastify cannot route and the per-IP limit', () => {
  const unroutable = ['/v1/users/%C0%AF', `/v1/users/${'a'.repeat(200)}`, '/v1/rooms/%E0%A4%A'];

  it('counts it: past RATE_LIMIT_PER_MINUTE it is 429 RATE_LIMITED with Retry-After, as problem+json', async () => {
    app = await restApp([]);
    for (let i = 0; i < LIMIT; i++) {
      const answer = await app.inject({ url: unroutable[i % unroutable.length] as string });
      expect(answer.statusCode, `request ${i + 1}`).toBe(400);
      expect(answer.json()).toMatchObject({ code: 'VALIDATION_FAILED' });
    }
    for (const url of unroutable) {
      const refused = await app.inject({ url });
      expectRateLimited(refused);
      expect(refused.headers['cache-control']).toBe('no-store');
      expect(refused.headers['x-request-id']).toBe(refused.json<{ requestId: string }>().requestId);
    }
    // The same budget as every other request of that client.
    expectRateLimited(await app.inject({ url: '/v1/rooms', headers: { authorization: 'Bearer t' } }));
  });

  it('shares the budget with routed requests', async () => {
    app = await restApp([]);
    for (let i = 0; i < LIMIT; i++)
      expect(
        (await app.inject({ url: '/v1/rooms', headers: { authorization: 'Bearer t' } })).statusCode,
      ).toBe(200);
    expectRateLimited(await app.inject({ url: '/v1/users/%C0%AF' }));
  });
});
