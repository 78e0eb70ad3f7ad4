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

  it('reads IPv4-mapped addresses however written (uWS gives them zero-padded on a dual-stack listener)', () => {
    for (const ip of [
      '0000:0000:0000:0000:0000:ffff:c633:6407',
      '0:0:0:0:0:FFFF:C633:6407',
      '0000:0000:0000:0000:0000:ffff:198.51.100.7',
      '::0:ffff:c633:6407',
      '::0000:ffff:c633:6407',
    ]) {
      expect(clientNetwork(ip), ip).toBe('198.51.100.7');
    }
    // Two IPv4 clients are two clients, not one IPv6 /64.
    expect(clientNetwork('0000:0000:0000:0000:0000:ffff:c633:6408')).toBe('198.51.100.8');
  });

  it('groups a zero-padded IPv6 address with its compressed form', () => {
    expect(clientNetwork('2001:0db8:0000:0000:0000:0000:0000:0001')).toBe('2001:db8:0:0::/64');
    expect(clientNetwork('2001:0db8:0000:0000:0000:0000:0000:0001')).toBe(clientNetwork('2001:db8::1'));
    expect(clientNetwork('0000:0000:0000:0000:0000:0000:0000:0001')).toBe(clientNetwork('::1'));
  });

  it("counts an address with the client's port (as some proxies forward it) as the address (review 21)", () => {
    expect(clientNetwork('198.51.100.7:4711')).toBe('198.51.100.7');
    expect(clientNetwork('198.51.100.7:4712')).toBe('198.51.100.7');
    expect(clientNetwork('[2001:db8:aa:bb::1]:4711')).toBe('2001:db8:aa:bb::/64');
    expect(clientNetwork('[2001:db8:aa:bb::2]')).toBe('2001:db8:aa:bb::/64');
    expect(clientNetwork('[::ffff:198.51.100.7]:80')).toBe('198.51.100.7');
  });

  it('keeps anything unparsable as it is, and names a missing address', () => {
    expect(clientNetwork(null)).toBe('unknown');
    expect(clientNetwork('')).toBe('unknown');
    expect(clientNetwork('1::2::3')).toBe('1::2::3');
  });
});
