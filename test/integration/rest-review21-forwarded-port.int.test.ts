/**
 * Behind a proxy that writes the client's port into X-Forwarded-For (`203.0.113.5:4711`,
 * `[2001:db8::1]:4711`: Azure Application Gateway does), the per-IP limits counted the entry as it
 * was, so each new connection of one client (a new source port) was a new client with a fresh
 * budget: RATE_LIMIT_PER_MINUTE, login throttling and the WebSocket caps all held nothing. A client
 * is its address, whatever port it came from (platform/client-network.ts).
 *
 * The node trusts one proxy hop (TRUST_PROXY=1, a hop count: the socket peer is the proxy), so
 * each request names its client in X-Forwarded-For as that proxy would.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestNode, type TestNode } from '../support/context.js';
import { httpClient } from '../support/http.js';

const LIMIT = 3;

describe('per-IP REST limit behind a proxy that forwards the client port (review 21)', () => {
  let node: TestNode;
  let api: ReturnType<typeof httpClient>;
  beforeAll(async () => {
    node = await startTestNode({ TRUST_PROXY: '1', RATE_LIMIT_PER_MINUTE: String(LIMIT) });
    api = httpClient(node.node.baseUrl);
  }, 60_000);
  afterAll(async () => {
    await node?.stop();
  });

  const statusesFrom = async (entries: readonly string[]) => {
    const statuses: number[] = [];
    for (const entry of entries) {
      const answer = await api.call('GET', '/.well-known/jwks.json', {
        headers: { 'x-forwarded-for': entry },
      });
      statuses.push(answer.status);
    }
    return statuses;
  };

  it('counts one IPv4 client over all its source ports', async () => {
    const ports = [40001, 40002, 40003, 40004, 40005];
    expect(await statusesFrom(ports.map((port) => `198.51.100.61:${port}`))).toEqual([
      200, 200, 200, 429, 429,
    ]);
    // The same address without a port is the same client; another address is not affected.
    expect(await statusesFrom(['198.51.100.61', '198.51.100.62:40001'])).toEqual([429, 200]);
  });

  it('counts a bracketed IPv6 client with a port as its /64', async () => {
    const entries = [1, 2, 3, 4].map((i) => `[2001:db8:61:1::${i}]:${50000 + i}`);
    expect(await statusesFrom(entries)).toEqual([200, 200, 200, 429]);
  });
});
