/**
 * Review 30 (operations): a request still arriving when the server closes cannot hold the shutdown.
 * Node checks HTTP_REQUEST_TIMEOUT_MS on a timer that `server.close()` stops, so once the node began
 * to shut down, a client sending its body (or its headers) a byte at a time held `app.close()` for
 * as long as it kept sending — past SHUTDOWN_TIMEOUT_MS, so the process exited 1 at the deadline
 * and the steps after "stop accepting HTTP" (Redis, the database pool, PGlite's flush, the managed
 * redis-server) never ran. With `closeGraceMs`, connections still busy that long after close()
 * began are closed; a request answered within it is answered as before.
 */
import { connect, type Socket } from 'node:net';
import pino from 'pino';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { buildApp, type RestDeps } from './app.js';

const USER = '00000000-0000-4000-8000-000000000001';

const restApp = (closeGraceMs: number | undefined, answerAfterMs = 0) =>
  buildApp({
    log: pino({ level: 'silent' }),
    metrics: new Registry(),
    health: { info: () => ({}), checks: {}, timeoutMs: 1_000, isDraining: () => false },
    // Node's own bound would come far too late: 10 minutes, checked every 30 s.
    httpEdge: { requestTimeoutMs: 600_000, maxConnectionsPerIp: 100, maxConnections: 1_000 },
    trustProxy: 0,
    ...(closeGraceMs === undefined ? {} : { closeGraceMs }),
    rest: {
      auth: { authenticateNow: () => ({ userId: USER, roles: ['worker'], sessionId: 's' }) },
      tokens: {},
      admin: {},
      users: {},
      rooms: {
        rooms: {
          list: async () => {
            await new Promise((resolve) => setTimeout(resolve, answerAfterMs));
            return { data: [], nextCursor: null };
          },
        },
        idempotency: {},
      },
      security: { corsOrigins: [], rateLimitPerMinute: 1_000 },
      version: 'test',
    } as unknown as RestDeps,
  });

let app: Awaited<ReturnType<typeof restApp>> | undefined;
const sockets: Socket[] = [];
const drips: NodeJS.Timeout[] = [];
afterEach(async () => {
  for (const drip of drips.splice(0)) clearInterval(drip);
  for (const socket of sockets.splice(0)) socket.destroy();
  await app?.close();
  app = undefined;
});

/** A client on `port` that writes `head`, then one more byte every 50 ms; resolves what it got when closed. */
function slowClient(port: number, head: string, drip: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    sockets.push(socket);
    let got = '';
    socket.on('data', (data) => {
      got += data.toString();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(got));
    socket.write(head);
    drips.push(setInterval(() => socket.writable && socket.write(drip), 50));
  });
}

const listen = async (built: NonNullable<typeof app>) => {
  await built.listen({ port: 0, host: '127.0.0.1' });
  return (built.server.address() as { port: number }).port;
};

describe('closing the server with requests still arriving', () => {
  it('closes connections whose request (body or headers) is still arriving after closeGraceMs', async () => {
    app = await restApp(200);
    const port = await listen(app);
    const body = slowClient(
      port,
      'PATCH /v1/me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\nContent-Type: application/json\r\nContent-Length: 60000\r\n\r\n{"displayName":"',
      'a',
    );
    const headers = slowClient(port, 'GET /v1/rooms HTTP/1.1\r\nHost: x\r\nX-Slow: ', 'a');
    // Both requests have begun arriving.
    await new Promise((resolve) => setTimeout(resolve, 150));
    await app.close();
    app = undefined;
    // The server closed their connections (without the bound: close() waited ~50 min for the body).
    await expect(body).resolves.toBe('');
    await expect(headers).resolves.toBe('');
  }, 15_000);

  it('still answers a request whose handler finishes within closeGraceMs', async () => {
    app = await restApp(5_000, 300);
    const port = await listen(app);
    const answer = fetch(`http://127.0.0.1:${port}/v1/rooms`, { headers: { authorization: 'Bearer t' } });
    await new Promise((resolve) => setTimeout(resolve, 100));
    await app.close();
    app = undefined;
    const response = await answer;
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ data: [], nextCursor: null });
  });
});
