/**
 * The 503 contract of REST (protocol/PROTOCOL.md, error codes): a node that is shutting down, or
 * whose database is down, answers UNAVAILABLE 503 problem+json ("retry later"), never Fastify's own
 * JSON (`return503OnClosing`, no `code`, no `requestId`) nor INTERNAL 500 for a connection failure.
 */
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningNode, startNode } from '../../src/bin/start-node.js';
import { runShutdown } from '../../src/platform/shutdown.js';
import { until } from '../support/cluster.js';
import {
  captureLogs,
  sharedRedisUrl,
  startTestNode,
  tempDir,
  testConfig,
  uniqueRedisPrefix,
} from '../support/context.js';
import { httpClient, type Registered, registerUser } from '../support/http.js';
import { type PostgresServer, startPostgresServer } from '../support/servers.js';

interface RawResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

/** The responses read from one socket: interim ones (100 Continue) included, bodies by Content-Length. */
function parseResponses(bytes: string): RawResponse[] {
  const responses: RawResponse[] = [];
  let rest = bytes;
  for (let end = rest.indexOf('\r\n\r\n'); end !== -1; end = rest.indexOf('\r\n\r\n')) {
    const [statusLine = '', ...lines] = rest.slice(0, end).split('\r\n');
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const colon = line.indexOf(':');
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    const length = Number(headers['content-length'] ?? 0);
    responses.push({
      status: Number(/^HTTP\/1\.1 (\d{3})/.exec(statusLine)?.[1]),
      headers,
      body: rest.slice(end + 4, end + 4 + length),
    });
    rest = rest.slice(end + 4 + length);
  }
  return responses;
}

const expectUnavailableProblem = (response: { status: number; type: string | undefined; body: unknown }) => {
  expect(response.status).toBe(503);
  expect(response.type).toMatch(/^application\/problem\+json/);
  expect(response.body).toMatchObject({
    type: 'urn:gigwire:problem:UNAVAILABLE',
    status: 503,
    code: 'UNAVAILABLE',
    requestId: expect.any(String),
  });
};

describe('REST 503 UNAVAILABLE', () => {
  it('a request that arrives while the node shuts down is answered 503 problem+json UNAVAILABLE', async () => {
    const test = await startTestNode();
    const port = Number(new URL(test.node.baseUrl).port);
    const socket: Socket = connect(port, '127.0.0.1');
    let received = '';
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1');
    });
    socket.on('error', () => undefined);
    let stopping: Promise<void> | undefined;
    try {
      // A request in flight (its headers read and routed, its body not yet sent) keeps the socket
      // open through the shutdown; "100 Continue" says the server has seen it.
      const body = JSON.stringify({ login: 'nobody', password: 'wrong-password' });
      socket.write(
        `POST /v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n` +
          `Content-Length: ${body.length}\r\nExpect: 100-continue\r\n\r\n`,
      );
      expect(await until(() => received.startsWith('HTTP/1.1 100'), 10_000)).toBe(true);

      stopping = test.stop();
      // The HTTP server no longer listens: the node is closing.
      expect(await until(() => !test.node.app.server.listening, 20_000)).toBe(true);

      // The body of the first request, then a second request on the same connection.
      socket.write(`${body}GET /v1/me HTTP/1.1\r\nHost: x\r\nx-request-id: during-shutdown-1\r\n\r\n`);
      await closed;
      const [, first, second] = parseResponses(received);
      expect(first?.status).toBe(401);
      expect(second?.headers.connection).toBe('close');
      expectUnavailableProblem({
        status: second?.status ?? 0,
        type: second?.headers['content-type'],
        body: JSON.parse(second?.body ?? 'null'),
      });
      expect(JSON.parse(second?.body ?? 'null')).toMatchObject({
        requestId: 'during-shutdown-1',
        instance: '/v1/me',
      });
    } finally {
      socket.destroy();
      await (stopping ?? test.stop());
    }
  });

  describe('with PostgreSQL down', () => {
    let postgres: PostgresServer;
    let node: RunningNode;
    const logs = captureLogs();
    let api: ReturnType<typeof httpClient>;
    let user: Registered;

    beforeAll(async () => {
      postgres = await startPostgresServer(tempDir('unavailable-pg'));
      const pg = await import('pg');
      const admin = new pg.default.Client({ connectionString: `${postgres.baseUrl}/postgres` });
      await admin.connect();
      await admin.query('create database gigwire');
      await admin.end();
      node = await startNode(
        testConfig({
          DATABASE_URL: `${postgres.baseUrl}/gigwire`,
          REDIS_URL: sharedRedisUrl(),
          REDIS_PREFIX: uniqueRedisPrefix(),
          RATE_LIMIT_PER_MINUTE: '100000',
        }),
        logs.log,
        { pid: process.pid },
      );
      api = httpClient(node.baseUrl);
      user = await registerUser(api);
      await postgres.stop('immediate');
    }, 120_000);
    afterAll(async () => {
      if (node !== undefined) await runShutdown(node.shutdownSteps, { log: logs.log, timeoutMs: 10_000 });
      await postgres?.stop();
    });

    it('answers GET /v1/me 503 problem+json UNAVAILABLE, not 500 INTERNAL', async () => {
      // The first query may meet a pooled connection the server has just ended; each later one is
      // refused at connect. Both are the database being down.
      for (let i = 0; i < 3; i++) {
        const answer = await api.get('/v1/me', user.accessToken);
        expectUnavailableProblem({
          status: answer.status,
          type: answer.headers.get('content-type') ?? undefined,
          body: answer.body,
        });
        // The client is told to retry, not what failed (no host, no SQL).
        expect(String(answer.body.detail)).not.toMatch(/ECONNREFUSED|127\.0\.0\.1|select/i);
      }
      const failures = logs.lines().filter((line) => line.msg === 'dependency unavailable');
      expect(failures.length).toBeGreaterThan(0);
      expect(failures.every((line) => line.level === 40)).toBe(true);
    });
  });
});
