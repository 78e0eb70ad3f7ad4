/**
 * Ops review 24: SIGTERM under load. Node closes the HTTP connections that are idle when the server
 * begins to close, but not those busy with a request then: once answered, each stayed open as an
 * idle keep-alive connection, and the server's close waited for them until their keep-alive timeout
 * (72 s). The shutdown outlived SHUTDOWN_TIMEOUT_MS (9 s) in "stop accepting HTTP" and the process
 * exited 1 without running the steps after it (workers finishing their tasks, Redis clients, the
 * database pool, the managed redis-server). Now such a connection is closed as soon as its request
 * is answered. Registrations (each an argon2id hash, two at a time) keep requests in flight.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runShutdown } from '../../src/platform/shutdown.js';
import { startTestNode, type TestNode } from '../support/context.js';
import { untilDefined } from '../support/poll.js';

let testNode: TestNode;
let stopped = false;

beforeAll(async () => {
  testNode = await startTestNode({ ROLE: 'api' });
}, 60_000);

afterAll(async () => {
  if (!stopped) await testNode?.stop();
  else await testNode?.db.drop();
});

describe('a shutdown while keep-alive requests are in flight', () => {
  it('answers them and finishes every step in time', async () => {
    const base = testNode.node.baseUrl;
    /** The status, or 0 when the connection was closed before the request was read. */
    const register = async (): Promise<number> => {
      const name = randomUUID().slice(0, 12);
      try {
        const response = await fetch(`${base}/v1/auth/register`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            email: `${name}@example.test`,
            username: `u${name}`,
            password: 'Cobalt-Heron-78?x',
          }),
        });
        await response.arrayBuffer();
        return response.status;
      } catch {
        // Node's close() ends every connection without a request under way, one whose request is
        // still unread included; that race is the client's to retry, and not what this test is about.
        return 0;
      }
    };
    // One first, so the keep-alive pool holds connections that are busy when the shutdown begins.
    expect(await register()).toBe(202);
    let answered = 0;
    const inFlight = Array.from({ length: 20 }, () =>
      register().then((status) => {
        answered += 1;
        return status;
      }),
    );
    // Until the server reads one of them: on a loaded machine a fixed 100 ms was at times too short
    // for any, and every one was then refused (503) or closed unread (0), none answered (review 30).
    const read = () =>
      testNode.logs
        .lines()
        .filter(
          (line) =>
            line.msg === 'incoming request' && (line.req as { url?: string })?.url === '/v1/auth/register',
        ).length;
    await untilDefined(async () => (read() >= 2 ? true : undefined), 'a registration read by the server');
    expect(answered).toBeLessThan(20);
    stopped = true;
    const result = await runShutdown(testNode.node.shutdownSteps, {
      log: testNode.logs.log,
      timeoutMs: 9_000,
    });
    const statuses = await Promise.all(inFlight);
    expect(statuses.every((status) => status === 202 || status === 503 || status === 0)).toBe(true);
    expect(statuses).toContain(202);
    expect(result).toEqual({ exitCode: 0, failedSteps: [] });
  }, 60_000);
});
