/**
 * Review 27 (the REST edge, a client on a bad network or with a generic HTTP library):
 * - a contract transition (deliver, approve, cancel…) takes an optional body (a note for the room).
 *   Called as many HTTP clients send every POST, `Content-Type: application/json` and nothing in the
 *   body, it answered 400 "Body cannot be empty" (review 16 let routes without a body schema through,
 *   not those whose body is optional): the worker could not deliver, the hirer not approve;
 * - the OpenAPI document said their `requestBody` is `required`, while the SDK sends none: a client
 *   generated from it had to send a body the route does not need.
 * The app is the real one; the requests here stop before any service (no Idempotency-Key: the
 * route's own 400 shows the request got past the body), so the services are empty.
 */
import pino from 'pino';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { buildApp, type RestDeps } from '../app.js';

const USER = '00000000-0000-4000-8000-000000000001';
const CONTRACT = '00000000-0000-4000-8000-000000000002';
const TRANSITIONS = ['deliver', 'request-changes', 'approve', 'cancel', 'dispute'];

const restApp = () =>
  buildApp({
    log: pino({ level: 'silent' }),
    metrics: new Registry(),
    health: { info: () => ({}), checks: {}, timeoutMs: 1_000, isDraining: () => false },
    httpEdge: { requestTimeoutMs: 10_000, maxConnectionsPerIp: 100, maxConnections: 1_000 },
    trustProxy: 0,
    rest: {
      auth: { authenticateNow: () => ({ userId: USER, roles: ['worker', 'hirer'], sessionId: 's' }) },
      tokens: {},
      users: {},
      admin: {},
      rooms: { rooms: {}, idempotency: {} },
      contracts: { contracts: {}, idempotency: {} },
      reviews: { marketplace: {}, idempotency: {} },
      security: { corsOrigins: [], rateLimitPerMinute: 10_000 },
      version: 'test',
    } as unknown as RestDeps,
  });

let app: Awaited<ReturnType<typeof restApp>> | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

const post = (url: string, headers: Record<string, string> = {}) =>
  app?.inject({
    method: 'POST',
    url,
    headers: { authorization: 'Bearer token', 'content-type': 'application/json', ...headers },
    payload: '',
  });

describe('an optional body sent empty with a JSON content type', () => {
  it('is no body to a contract transition: the route goes on to its own checks', async () => {
    app = await restApp();
    for (const transition of TRANSITIONS) {
      const answer = await post(`/v1/contracts/${CONTRACT}/${transition}`);
      expect(answer?.statusCode, transition).toBe(400);
      // The Idempotency-Key the route requires is what is missing, not a body it does not need.
      expect(answer?.json(), transition).toMatchObject({
        code: 'VALIDATION_FAILED',
        errors: [{ path: 'headers.idempotency-key' }],
      });
    }
  });

  it('is still refused where the body is required', async () => {
    app = await restApp();
    const answer = await post(`/v1/contracts/${CONTRACT}/review`, { 'idempotency-key': 'k-1' });
    expect(answer?.statusCode).toBe(400);
    expect(answer?.json()).toMatchObject({ code: 'VALIDATION_FAILED' });
    expect(JSON.stringify(answer?.json())).toMatch(/[Bb]ody/);
  });

  it('is documented as optional in OpenAPI; required bodies stay required', async () => {
    app = await restApp();
    const response = await app.inject({ method: 'GET', url: '/openapi.json' });
    const doc = response.json();
    for (const transition of TRANSITIONS) {
      const operation = doc.paths[`/v1/contracts/{id}/${transition}`].post;
      expect(operation.requestBody.required, transition).toBe(false);
    }
    expect(doc.paths['/v1/contracts/{id}/review'].post.requestBody.required).toBe(true);
    expect(doc.paths['/v1/admin/contracts/{id}/resolve'].post.requestBody.required).toBe(true);
    expect(response.body).not.toContain('x-gigwire-optional-body');
  });
});
