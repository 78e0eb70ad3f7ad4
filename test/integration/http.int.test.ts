/**
 * The HTTP edge's cross-cutting behaviour on the real composition: request ids, log redaction,
 * problem+json errors and Prometheus metrics.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningNode, startNode } from '../../src/bin/start-node.js';
import { runShutdown } from '../../src/platform/shutdown.js';
import {
  captureLogs,
  createMigratedDatabase,
  sharedRedisUrl,
  type TestDatabase,
  testConfig,
  uniqueRedisPrefix,
} from '../support/context.js';

describe('HTTP edge', () => {
  let db: TestDatabase;
  let node: RunningNode;
  const logs = captureLogs();

  beforeAll(async () => {
    db = await createMigratedDatabase();
    const config = testConfig({
      DATABASE_URL: db.url,
      REDIS_URL: sharedRedisUrl(),
      REDIS_PREFIX: uniqueRedisPrefix(),
      // The second as operators often write it: with a trailing slash, which no Origin header has.
      CORS_ORIGINS: 'https://app.example.test, https://second.example.test/',
    });
    node = await startNode(config, logs.log, { pid: process.pid });
  });
  afterAll(async () => {
    await runShutdown(node.shutdownSteps, { log: logs.log, timeoutMs: 5_000 });
    await db.drop();
  });

  const linesOf = (reqId: string) => logs.lines().filter((line) => line.reqId === reqId);

  it('lets an allowed browser origin read the request id, Retry-After, Date and the idempotent replay mark', async () => {
    const allowed = await fetch(`${node.baseUrl}/health/live`, {
      headers: { origin: 'https://app.example.test' },
    });
    expect(allowed.headers.get('access-control-allow-origin')).toBe('https://app.example.test');
    const exposed = (allowed.headers.get('access-control-expose-headers') ?? '')
      .split(',')
      .map((h) => h.trim());
    expect(exposed).toEqual(
      expect.arrayContaining(['x-request-id', 'retry-after', 'idempotent-replayed', 'date']),
    );
    const other = await fetch(`${node.baseUrl}/health/live`, {
      headers: { origin: 'https://evil.example.test' },
    });
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
    // A browser's preflight from the origin configured with its trailing slash.
    const preflight = await fetch(`${node.baseUrl}/v1/me`, {
      method: 'OPTIONS',
      headers: {
        origin: 'https://second.example.test',
        'access-control-request-method': 'GET',
        'access-control-request-headers': 'authorization',
      },
    });
    expect(preflight.status).toBeLessThan(300);
    expect(preflight.headers.get('access-control-allow-origin')).toBe('https://second.example.test');
  });

  it('echoes a given x-request-id and puts it on every log line of that request', async () => {
    const response = await fetch(`${node.baseUrl}/v1/nothing-here`, {
      headers: { 'x-request-id': 'client-abc-123' },
    });
    expect(response.headers.get('x-request-id')).toBe('client-abc-123');
    const lines = linesOf('client-abc-123');
    expect(lines.map((l) => l.msg)).toEqual(['incoming request', 'request completed']);
  });

  it('generates a request id when none or an unsafe one is given', async () => {
    const plain = await fetch(`${node.baseUrl}/v1/nothing-here`);
    const generated = plain.headers.get('x-request-id') ?? '';
    expect(generated).toMatch(/^[0-9a-f-]{36}$/);
    expect(linesOf(generated)).toHaveLength(2);

    const unsafe = await fetch(`${node.baseUrl}/v1/nothing-here`, {
      headers: { 'x-request-id': 'bad id\twith "quotes"' },
    });
    expect(unsafe.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('never logs credentials from headers, cookies or the query string', async () => {
    const response = await fetch(`${node.baseUrl}/v1/secret-check?access_token=SECRET-QUERY-TOKEN&x=1`, {
      headers: {
        authorization: 'Bearer SECRET-BEARER-TOKEN',
        cookie: 'session=SECRET-COOKIE',
        'x-request-id': 'redaction-check',
      },
    });
    expect(response.status).toBe(404);
    const lines = linesOf('redaction-check');
    expect(lines.length).toBeGreaterThan(0);
    expect(JSON.stringify(lines)).toContain('access_token=[Redacted]&x=1');
    expect(logs.text()).not.toMatch(/SECRET-(QUERY|BEARER|COOKIE)/);
  });

  it('redacts secret fields in any logged object', () => {
    logs.log.info(
      {
        password: 'pw-1',
        user: { refreshToken: 'rt-2', profile: { token: 't-3' } },
        headers: { authorization: 'a-4' },
      },
      'redaction probe',
    );
    const probe = logs.lines().find((l) => l.msg === 'redaction probe');
    expect(probe).toMatchObject({
      password: '[Redacted]',
      user: { refreshToken: '[Redacted]', profile: { token: '[Redacted]' } },
      headers: { authorization: '[Redacted]' },
    });
  });

  it('answers unknown routes with problem+json carrying a stable code and the request id', async () => {
    const response = await fetch(`${node.baseUrl}/v1/missing?q=1`, { headers: { 'x-request-id': 'nf-1' } });
    expect(response.status).toBe(404);
    expect(response.headers.get('content-type')).toContain('application/problem+json');
    expect(await response.json()).toEqual({
      type: 'urn:gigwire:problem:NOT_FOUND',
      title: 'Not found',
      status: 404,
      code: 'NOT_FOUND',
      detail: 'No route GET /v1/missing',
      instance: '/v1/missing',
      requestId: 'nf-1',
    });
  });

  it('exposes process metrics and request durations by route pattern and status', async () => {
    await fetch(`${node.baseUrl}/health/live`);
    const text = await (await fetch(`${node.baseUrl}/metrics`)).text();
    expect(text).toContain('process_cpu_user_seconds_total');
    expect(text).toContain('nodejs_eventloop_lag_seconds');
    expect(text).toMatch(
      /http_request_duration_seconds_count\{node="[^"]+",method="GET",route="\/health\/live",status_code="200"\} [1-9]/,
    );
    expect(text).toMatch(
      /http_request_duration_seconds_count\{node="[^"]+",method="GET",route="unmatched",status_code="404"\} [1-9]/,
    );
    expect(text).toMatch(/gigwire_info\{role="all",node="[^"]+"\} 1/);
  });
});
