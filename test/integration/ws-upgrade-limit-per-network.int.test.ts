/**
 * The WebSocket upgrade limit (WS_UPGRADES_PER_IP_PER_SECOND / BURST) counts clients as login
 * throttling does (clientNetwork): an IPv4 address, or an IPv6 /64, since one subscriber usually
 * holds a whole /64 and would otherwise have 2^64 budgets. On both transports, behind one trusted
 * proxy (TRUST_PROXY=1), so the client address comes from X-Forwarded-For. Eight upgrades at once
 * against a burst of two: whatever the refill meanwhile (one a second), some must be refused.
 * A proxy that appends its own X-Forwarded-For line (HAProxy's `option forwardfor`) leaves the
 * client's own line first: every line counts, in order, and the trusted last hop decides.
 */
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestNode, type TestNode } from '../support/context.js';
import { upgradeStatus } from '../support/ws-client.js';

describe('upgrade limit per client network', () => {
  let test: TestNode;

  beforeAll(async () => {
    test = await startTestNode({
      TRUST_PROXY: '1',
      WS_UPGRADES_PER_IP_PER_SECOND: '1',
      WS_UPGRADE_BURST_PER_IP: '2',
    });
  });
  afterAll(async () => {
    await test.stop();
  });

  // One /64 and one IPv4 address per transport: the two share one limiter.
  const transports = () => ({
    uws: { url: test.node.uwsUrl ?? '', net: '2001:db8:1:0', v4: '198.51.100.7' },
    'fastify-ws': {
      url: `${test.node.baseUrl.replace(/^http/, 'ws')}/ws`,
      net: '2001:db8:2:0',
      v4: '198.51.100.8',
    },
  });

  /** Statuses of upgrades sent at once, one from each X-Forwarded-For address (a bad token: 401 when admitted). */
  const upgradesFrom = (url: string, addresses: readonly string[]) =>
    Promise.all(
      addresses.map((address) =>
        upgradeStatus(url, ['gigwire.v1.json', 'bearer.x'], { 'x-forwarded-for': address }),
      ),
    );

  /** The status of a raw upgrade request (a bad token) carrying these X-Forwarded-For lines. */
  const rawUpgradeStatus = (url: string, forwardedLines: readonly string[]) =>
    new Promise<number>((resolve, reject) => {
      const socket = connect(Number(new URL(url).port), '127.0.0.1');
      let data = '';
      socket.on('data', (chunk) => {
        data += chunk.toString('latin1');
        if (data.includes('\r\n')) {
          socket.destroy();
          resolve(Number(/^HTTP\/1\.1 (\d{3}) /.exec(data)?.[1] ?? 0));
        }
      });
      socket.on('error', reject);
      socket.on('connect', () => {
        socket.write(
          'GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
            `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\n` +
            'Sec-WebSocket-Protocol: gigwire.v1.json, bearer.x\r\n' +
            forwardedLines.map((line) => `X-Forwarded-For: ${line}\r\n`).join('') +
            '\r\n',
        );
      });
    });

  it.for([
    ['uws', '203.0.113.10'],
    ['fastify-ws', '203.0.113.11'],
  ] as const)(
    'a client line before the proxy line picks no new budget (%s)',
    async ([t, proxied], { skip }) => {
      const { url } = transports()[t];
      if (url === '') return skip('no uWS build loads on this Node');
      // Each from a random address of the client's choosing, then the address the proxy saw.
      const randomV4 = () => [...randomBytes(4)].join('.');
      const statuses = await Promise.all(
        Array.from({ length: 8 }, () => rawUpgradeStatus(url, [randomV4(), proxied])),
      );
      expect(statuses).toContain(429);
      expect(statuses.every((s) => s === 429 || s === 401)).toBe(true);
    },
  );

  it.each(['uws', 'fastify-ws'] as const)('one IPv4 address is limited (control, %s)', async (t) => {
    const { url, v4 } = transports()[t];
    const statuses = await upgradesFrom(url, Array<string>(8).fill(v4));
    expect(statuses).toContain(429);
  });

  it.each(['uws', 'fastify-ws'] as const)(
    'the addresses of one IPv6 /64 share one budget (%s)',
    async (t) => {
      const { url, net } = transports()[t];
      const statuses = await upgradesFrom(
        url,
        Array.from({ length: 8 }, (_, n) => `${net}:${(n + 1).toString(16)}::1`),
      );
      expect(statuses).toContain(429);
      expect(statuses.every((s) => s === 429 || s === 401)).toBe(true);
      // The next /64 up is another client: admitted (to the token check, which refuses it).
      expect(await upgradesFrom(url, [`${net.replace(/:0$/, ':1')}::1`])).toEqual([401]);
    },
  );
});
