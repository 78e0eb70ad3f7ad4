/** The one-time warning for TRUST_PROXY left off behind a proxy (proxy-hint.ts), without a server. */
import { describe, expect, it } from 'vitest';
import { isProxyNetworkPeer, proxyHint } from './proxy-hint.js';

const request = (remoteAddress: string, forwardedFor?: string) => ({
  headers: forwardedFor === undefined ? {} : { 'x-forwarded-for': forwardedFor },
  socket: { remoteAddress },
});

describe('proxyHint', () => {
  it('warns once when a private or loopback peer forwards for someone while TRUST_PROXY is off', () => {
    const lines: string[] = [];
    const hint = proxyHint(0, { warn: (_fields: object, message: string) => lines.push(message) } as never);
    expect(hint).toBeDefined();
    hint?.(request('203.0.113.9', '198.51.100.1')); // a public client sending the header itself
    hint?.(request('10.0.0.5')); // a private peer without the header
    expect(lines).toEqual([]);
    hint?.(request('::ffff:10.0.0.5', '198.51.100.1'));
    hint?.(request('127.0.0.1', '198.51.100.2'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('TRUST_PROXY is off');
  });

  it('says nothing when TRUST_PROXY is set', () => {
    expect(proxyHint(1, { warn: () => undefined } as never)).toBeUndefined();
    expect(proxyHint(['10.0.0.0/8'], { warn: () => undefined } as never)).toBeUndefined();
  });

  it('knows where proxies sit', () => {
    for (const address of [
      '127.0.0.1',
      '10.1.2.3',
      '172.20.0.4',
      '192.168.1.1',
      '100.64.0.1',
      '::1',
      'fd00::1',
      '::ffff:192.168.0.2',
    ])
      expect(isProxyNetworkPeer(address), address).toBe(true);
    for (const address of ['203.0.113.9', '172.32.0.1', '2001:db8::1', '', 'not an address'])
      expect(isProxyNetworkPeer(address), address).toBe(false);
  });
});
