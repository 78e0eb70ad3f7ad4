/**
 * Ops review 24: TRUST_PROXY was handed to Fastify only on processes that serve REST (roles `all` and
 * `api`). A `gateway` process behind a proxy took every client of its /ws on PORT (the fallback
 * transport, the only one where no native uWebSockets.js build loads) to be the proxy: all of them
 * shared one per-IP upgrade budget (WS_UPGRADES_PER_IP_PER_SECOND, a reconnect wave refused 429)
 * and one WS_MAX_CONNECTIONS_PER_IP / HTTP_MAX_CONNECTIONS_PER_IP cap, while the uWS port, which
 * reads TRUST_PROXY itself, told them apart. Now every role's Fastify follows TRUST_PROXY.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startTestNode, type TestNode } from '../support/context.js';

let testNode: TestNode;

beforeAll(async () => {
  testNode = await startTestNode({
    ROLE: 'gateway',
    TRUST_PROXY: '1',
    WS_UPGRADES_PER_IP_PER_SECOND: '1',
    WS_UPGRADE_BURST_PER_IP: '3',
  });
}, 60_000);

afterAll(async () => {
  await testNode?.stop();
});

/** The status of an upgrade with a refused token: 401 once admitted to auth, 429 over the budget. */
function upgradeStatus(url: string, forwardedFor: string): Promise<number> {
  const ws = new WebSocket(url, ['gigwire.v1.json', 'bearer.not-a-token'], {
    headers: { 'x-forwarded-for': forwardedFor },
  });
  return new Promise((resolve) => {
    ws.once('open', () => {
      ws.close();
      resolve(101);
    });
    ws.once('unexpected-response', (_request, response) => {
      response.resume();
      ws.terminate();
      resolve(response.statusCode ?? 0);
    });
    ws.once('error', () => resolve(0));
  });
}

describe('a gateway process behind a trusted proxy, /ws on PORT', () => {
  it('tells the clients apart by X-Forwarded-For, as the uWS port does', async () => {
    const url = `${testNode.node.baseUrl.replace(/^http/, 'ws')}/ws`;
    const fromA = await Promise.all(Array.from({ length: 8 }, () => upgradeStatus(url, '203.0.113.7')));
    expect(fromA.every((status) => status === 401 || status === 429)).toBe(true);
    expect(fromA).toContain(429);
    // Three other clients behind the same proxy: each its own budget, so each reaches auth.
    const others = await Promise.all(
      ['203.0.113.20', '203.0.113.21', '203.0.113.22'].map((ip) => upgradeStatus(url, ip)),
    );
    expect(others).toEqual([401, 401, 401]);
  });
});
