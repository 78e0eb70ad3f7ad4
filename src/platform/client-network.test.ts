import { describe, expect, it } from 'vitest';
import { clientNetwork } from './client-network.js';

describe('clientNetwork (what login throttling and the upgrade limit count as one client)', () => {
  it('is the address itself for IPv4, and IPv4-mapped IPv6 is the same client', () => {
    expect(clientNetwork('198.51.100.7')).toBe('198.51.100.7');
    expect(clientNetwork('::ffff:198.51.100.7')).toBe('198.51.100.7');
    expect(clientNetwork('::ffff:c633:6407')).toBe('198.51.100.7');
  });

  it('is the /64 for IPv6, however the address is written', () => {
    const net = '2001:db8:aa:bb::/64';
    for (const ip of [
      '2001:db8:aa:bb::1',
      '2001:0db8:00aa:00bb:ffff:ffff:ffff:ffff',
      '2001:DB8:AA:BB:1:2:3:4',
      '2001:db8:aa:bb:1::%eth0',
    ]) {
      expect(clientNetwork(ip), ip).toBe(net);
    }
    expect(clientNetwork('2001:db8:aa:bc::1')).not.toBe(net);
    expect(clientNetwork('::1')).toBe('0:0:0:0::/64');
  });

  it('keeps anything unparsable as it is, and names a missing address', () => {
    expect(clientNetwork(null)).toBe('unknown');
    expect(clientNetwork('')).toBe('unknown');
    expect(clientNetwork('1::2::3')).toBe('1::2::3');
  });
});
