/**
 * Operators' console, review 22: a failure of the console's own access check (its database lookup
 * of the cookie, or the token check) was answered by bull-board's error handler, which owns the
 * routes under /admin/queues: a 500 `{error, message}` carrying the raw error's message (a
 * database host and port, SQL text) to anyone, no sign-in needed (a cookie of the right shape is
 * looked up). The REST API answers the same outage 503 UNAVAILABLE problem+json with Retry-After
 * and never says what failed; the console's access check now does too. The database is reached
 * through a TCP proxy that the test closes.
 */
import { randomBytes } from 'node:crypto';
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
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';

let database: TestDatabase;
let proxy: TcpProxy;
let node: RunningNode;
const logs = captureLogs();

beforeAll(async () => {
  database = await createMigratedDatabase();
  const url = new URL(database.url);
  proxy = await startTcpProxy({ host: url.hostname, port: Number(url.port || 5432) });
  url.hostname = '127.0.0.1';
  url.port = String(proxy.port);
  node = await startNode(
    testConfig({
      DATABASE_URL: url.toString(),
      REDIS_URL: sharedRedisUrl(),
      REDIS_PREFIX: uniqueRedisPrefix(),
      LEDGER_AUDIT_INTERVAL_S: '0',
    }),
    logs.log,
    { pid: process.pid },
  );
}, 60_000);

afterAll(async () => {
  if (node !== undefined) await runShutdown(node.shutdownSteps, { log: logs.log, timeoutMs: 10_000 });
  await proxy?.close();
  await database?.drop();
});

describe('console access check while the database is down', () => {
  it('answers 503 UNAVAILABLE problem+json, never the raw error, to a caller not signed in', async () => {
    const base = node.baseUrl;
    await proxy.close();
    const cookie = `gigwire_console=${randomBytes(32).toString('base64url')}`;
    for (const path of ['/admin/queues/api/queues', '/admin/queues', '/admin/queues/static/index.html']) {
      const response = await fetch(`${base}${path}`, { headers: { cookie }, redirect: 'manual' });
      const text = await response.text();
      expect(response.status, `${path}: ${text}`).toBe(503);
      expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(response.headers.get('retry-after')).toBe('2');
      expect((JSON.parse(text) as { code: string }).code).toBe('UNAVAILABLE');
      expect(text).not.toMatch(/ECONNREFUSED|127\.0\.0\.1|Connection terminated|connect/);
    }
  }, 60_000);
});
