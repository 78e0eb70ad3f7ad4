/**
 * Review 25 (the REST edge as an attacker), answers given before or beside the usual hooks:
 * - a path Fastify cannot route (bad percent-encoding) is answered with helmet's headers and
 *   `cache-control: no-store` like every other answer;
 * - with CORS_ORIGINS set, an OPTIONS that is no browser's preflight is problem+json with a code
 *   (@fastify/cors answered a text/plain "Invalid Preflight Request");
 * - requests for paths no route answers (404, 405) count against the per-IP limit (they did not);
 * - a static file asked with a Range it cannot satisfy or a failing precondition (If-Match) keeps
 *   its 416/412 as problem+json (they were 500 INTERNAL, each logged as an unhandled error).
 * The app is the real one; no request here reaches a service, so the services are empty.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { RestDeps } from './app.js';
import { restAppWithStubs } from './app.testing.js';
import { helmetHeaders } from './plugins/security.js';

const ORIGIN = 'https://app.example.test';

function restApp(rateLimitPerMinute = 1_000, web?: RestDeps['web']) {
  return restAppWithStubs({ security: { corsOrigins: [ORIGIN], rateLimitPerMinute }, web });
}

let app: Awaited<ReturnType<typeof restApp>> | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

const expectSecured = (headers: Record<string, unknown>) => {
  for (const [name, value] of helmetHeaders()) expect(headers[name.toLowerCase()], name).toBe(value);
  expect(headers['cache-control']).toBe('no-store');
};

describe('answers given before the hooks', () => {
  it("carry helmet's headers and no-store on a path that is not valid percent-encoded UTF-8", async () => {
    app = await restApp();
    const answer = await app.inject({ method: 'GET', url: '/v1/users/%C0%AF' });
    expect(answer.statusCode).toBe(400);
    expect(answer.json()).toMatchObject({ code: 'VALIDATION_FAILED' });
    expectSecured(answer.headers);
  });
});

describe('OPTIONS with CORS_ORIGINS set', () => {
  it('answers an OPTIONS that is no preflight 400 problem+json, and a preflight as before', async () => {
    app = await restApp();
    for (const headers of [{}, { origin: ORIGIN }, { 'access-control-request-method': 'GET' }]) {
      const answer = await app.inject({ method: 'OPTIONS', url: '/v1/me', headers });
      expect(answer.statusCode).toBe(400);
      expect(answer.headers['content-type']).toContain('application/problem+json');
      expect(answer.json()).toMatchObject({ code: 'VALIDATION_FAILED', status: 400 });
    }
    const preflight = await app.inject({
      method: 'OPTIONS',
      url: '/v1/me',
      headers: { origin: ORIGIN, 'access-control-request-method': 'PATCH' },
    });
    expect(preflight.statusCode).toBe(204);
    expect(preflight.headers['access-control-allow-origin']).toBe(ORIGIN);
  });
});

describe('the per-IP limit', () => {
  it('counts requests for paths no route answers (404, 405) like any other', async () => {
    app = await restApp(3);
    const statuses = [];
    for (const url of ['/v1/no-such-route', '/no-such-page', '/v1/auth/login'])
      statuses.push((await app.inject({ method: 'GET', url })).statusCode);
    expect(statuses).toEqual([404, 404, 405]);
    const refused = await app.inject({ method: 'GET', url: '/v1/no-such-route' });
    expect(refused.statusCode).toBe(429);
    expect(refused.json()).toMatchObject({ code: 'RATE_LIMITED' });
    expect(refused.headers['retry-after']).toBeDefined();
  });
});

describe('static files (the web app) asked with conditions they cannot meet', () => {
  it('answers an unsatisfiable Range 416 and a failed If-Match 412, problem+json, never 500', async () => {
    const root = mkdtempSync(join(tmpdir(), 'web-review25-'));
    try {
      mkdirSync(join(root, 'assets'));
      writeFileSync(join(root, 'index.html'), '<!doctype html><title>t</title>');
      writeFileSync(join(root, 'assets', 'app-0123abcd.js'), 'console.log(1);\n');
      app = await restApp(1_000, { root });
      const url = '/assets/app-0123abcd.js';
      const range = await app.inject({ method: 'GET', url, headers: { range: 'bytes=999999-' } });
      expect(range.statusCode).toBe(416);
      expect(range.headers['content-type']).toContain('application/problem+json');
      expect(range.headers['content-range']).toBe('bytes */16');
      expect(range.json()).toMatchObject({ code: 'VALIDATION_FAILED', status: 416 });
      const stale = await app.inject({ method: 'GET', url, headers: { 'if-match': '"no-such-etag"' } });
      expect(stale.statusCode).toBe(412);
      expect(stale.json()).toMatchObject({ code: 'VALIDATION_FAILED', status: 412 });
      expect((await app.inject({ method: 'GET', url })).statusCode).toBe(200);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
