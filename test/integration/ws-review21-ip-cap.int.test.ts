/**
 * WS_MAX_CONNECTIONS_PER_IP (review 21): the upgrade bucket bounds how fast one client address opens
 * WebSockets, not how many it holds, so one address could keep thousands of sockets (of many
 * accounts) and their file descriptors. At the cap, one more upgrade is answered 429 problem+json
 * before any auth work, on both transports; a closed socket and a refused upgrade give their place
 * back; the refusals are counted. Behind one trusted proxy (TRUST_PROXY=1), so each test picks its
 * client address with X-Forwarded-For, as the upgrade limit does.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startTestNode, type TestNode } from '../support/context.js';
import { httpClient, type Registered, registerUser } from '../support/http.js';

const CAP = 3;

describe('open WebSockets per client address', () => {
  let test: TestNode;
  let user: Registered;
  const open: WebSocket[] = [];

  beforeAll(async () => {
    test = await startTestNode({ TRUST_PROXY: '1', WS_MAX_CONNECTIONS_PER_IP: String(CAP) });
    user = await registerUser(httpClient(test.node.baseUrl));
  });
  afterAll(async () => {
    for (const ws of open) ws.terminate();
    await test.stop();
  });

  const urls = () => ({
    uws: test.node.uwsUrl ?? '',
    'fastify-ws': `${test.node.baseUrl.replace(/^http/, 'ws')}/ws`,
  });

  /** Opens a socket from `address` (X-Forwarded-For): the socket, or the refusal's status and body. */
  const connectFrom = (url: string, address: string, token = user.accessToken) =>
    new Promise<{ ws?: WebSocket; status: number; body: string; retryAfter?: string }>((resolve) => {
      const ws = new WebSocket(url, ['gigwire.v1.json', `bearer.${token}`], {
        headers: { 'x-forwarded-for': address },
      });
      ws.once('open', () => {
        open.push(ws);
        resolve({ ws, status: 101, body: '' });
      });
      ws.once('unexpected-response', (_request, response) => {
        let body = '';
        response.on('data', (chunk: Buffer) => {
          body += chunk.toString();
        });
        response.on('end', () =>
          resolve({
            status: response.statusCode ?? 0,
            body,
            retryAfter: response.headers['retry-after'] as string | undefined,
          }),
        );
      });
      ws.once('error', () => resolve({ status: 0, body: '' }));
    });

  it.for([
    ['uws', '198.51.100.21', '198.51.100.22'],
    ['fastify-ws', '198.51.100.31', '198.51.100.32'],
  ] as const)(
    'refuses one socket over the cap with 429, admits it again once one closed (%s)',
    async ([transport, address, other], { skip }) => {
      const url = urls()[transport];
      if (url === '') return skip('no uWS build loads on this Node');
      const held = [];
      for (let i = 0; i < CAP; i++) held.push(await connectFrom(url, address));
      expect(held.map((h) => h.status)).toEqual(Array(CAP).fill(101));

      const over = await connectFrom(url, address);
      expect(over.status).toBe(429);
      expect(over.retryAfter).toMatch(/^[1-9]\d*$/);
      expect(JSON.parse(over.body)).toMatchObject({
        code: 'RATE_LIMITED',
        detail: expect.stringContaining('too many open WebSockets from this address'),
      });
      // Another address is another client.
      expect((await connectFrom(url, other)).status).toBe(101);

      // A closed socket gives its place back (once the server has seen the close).
      const first = held[0]?.ws as WebSocket;
      first.close();
      await new Promise((resolve) => first.once('close', resolve));
      let again = await connectFrom(url, address);
      for (let attempt = 0; again.status === 429 && attempt < 50; attempt++) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        again = await connectFrom(url, address);
      }
      expect(again.status).toBe(101);
    },
  );

  it.for([
    ['uws', '198.51.100.41'],
    ['fastify-ws', '198.51.100.42'],
  ] as const)('a refused upgrade holds no place (%s)', async ([transport, address], { skip }) => {
    const url = urls()[transport];
    if (url === '') return skip('no uWS build loads on this Node');
    for (let i = 0; i < CAP * 2; i++)
      expect((await connectFrom(url, address, 'not-a-token')).status).toBe(401);
    const admitted = [];
    for (let i = 0; i < CAP; i++) admitted.push((await connectFrom(url, address)).status);
    expect(admitted).toEqual(Array(CAP).fill(101));
  });

  it('counts the refusals in gigwire_ws_upgrades_refused_total', async () => {
    const metrics = await (await fetch(`${test.node.baseUrl}/metrics`)).text();
    expect(metrics).toMatch(/gigwire_ws_upgrades_refused_total\{reason="connections_per_ip"[^}]*\} [1-9]/);
    expect(metrics).toMatch(/gigwire_ws_upgrades_refused_total\{reason="rate"[^}]*\} 0/);
  });
});
