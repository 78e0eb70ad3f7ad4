/**
 * Operators' console, review 23: a failure inside one of bull-board's own routes (the queue list
 * while Redis is unreachable) reached bull-board's error handler, which answers any error 500 with
 * the raw error's message (ioredis names the host and port, "Connection is closed"). Now such a
 * failure is answered as the REST API answers an outage: 503 UNAVAILABLE with Retry-After and no
 * word of what failed. The admin's access check still passes (its session is in the database);
 * Redis is reached through a TCP proxy the test closes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sharedRedisUrl, startTestNode, type TestNode } from '../support/context.js';
import { httpClient } from '../support/http.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';

const ADMIN = { email: 'ops-redis@example.test', password: 'Cobalt-Heron-78?' };

let proxy: TcpProxy;
let testNode: TestNode;

beforeAll(async () => {
  const redis = new URL(sharedRedisUrl());
  proxy = await startTcpProxy({ host: redis.hostname, port: Number(redis.port || 6379) });
  redis.hostname = '127.0.0.1';
  redis.port = String(proxy.port);
  testNode = await startTestNode({
    REDIS_URL: redis.toString(),
    ADMIN_EMAIL: ADMIN.email,
    ADMIN_PASSWORD: ADMIN.password,
    REDIS_COMMAND_TIMEOUT_MS: '1000',
  });
}, 60_000);

afterAll(async () => {
  await testNode?.stop();
  await proxy?.close();
});

describe("the console's queue API while Redis is down", () => {
  it('answers 503 UNAVAILABLE with Retry-After to a signed-in admin, never the raw error', async () => {
    const api = httpClient(testNode.node.baseUrl);
    const login = await api.post<{ accessToken: string }>('/v1/auth/login', {
      login: ADMIN.email,
      password: ADMIN.password,
    });
    expect(login.status).toBe(200);
    const queues = () =>
      fetch(`${testNode.node.baseUrl}/admin/queues/api/queues`, {
        headers: { authorization: `Bearer ${login.body.accessToken}` },
        signal: AbortSignal.timeout(15_000),
      });
    expect((await queues()).status).toBe(200);

    await proxy.close();
    const response = await queues();
    const text = await response.text();
    expect(response.status, text).toBe(503);
    expect(response.headers.get('retry-after')).toMatch(/^\d+$/);
    expect((JSON.parse(text) as { code: string }).code).toBe('UNAVAILABLE');
    expect(text).not.toMatch(/ECONNREFUSED|127\.0\.0\.1|Connection is closed|timed out|:\d{4,5}\b/);
  }, 60_000);
});
