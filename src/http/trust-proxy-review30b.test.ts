/**
 * Review 30: TRUST_PROXY refuses `true`, `0.0.0.0/0` and `::/0` (every hop trusted: any client could
 * choose its IP), but `::ffff:0.0.0.0/96` (proxy-addr matches every IPv4 client against it) or two
 * halves `0.0.0.0/1,128.0.0.0/1` trusted every IPv4 client just the same and were taken.
 */
import proxyAddr from '@fastify/proxy-addr';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../config/index.js';

const load = (value: string) =>
  loadConfig({ TRUST_PROXY: value }, { cwd: '/srv/gigwire', isRoot: false, stdoutIsTty: false, pid: 1 })
    .trustProxy;

describe('TRUST_PROXY naming ranges that together hold every address (review 30)', () => {
  it('refuses an IPv4-mapped range of all IPv4, and sets of ranges covering an address family', () => {
    // What proxy-addr (Fastify's trustProxy) makes of the first: every IPv4 client is a trusted hop.
    const mapped = proxyAddr.compile(['::ffff:0.0.0.0/96']);
    expect(mapped('203.0.113.5', 0) && mapped('::ffff:198.51.100.7', 0)).toBe(true);
    const refused: [string, string][] = [
      ['::ffff:0.0.0.0/96', '::ffff:0.0.0.0/96 \\(it holds every IPv4'],
      ['::ffff:0:0/96', '::ffff:0:0/96 \\(it holds every IPv4'],
      ['0.0.0.0/1,128.0.0.0/1', '0.0.0.0/1, 128.0.0.0/1 \\(together they hold every IPv4'],
      ['::ffff:0.0.0.0/97, 128.0.0.0/1, loopback', '::ffff:0.0.0.0/97, 128.0.0.0/1 \\(together'],
      ['::/1, 8000::/1', '::/1, 8000::/1 \\(together they hold every IPv6'],
    ];
    for (const [value, named] of refused) {
      expect(() => load(value), value).toThrow(ConfigError);
      expect(() => load(value), value).toThrow(
        new RegExp(`TRUST_PROXY must not name ${named}.*number of proxies`),
      );
    }
  });

  it('still takes ranges that leave some clients out', () => {
    for (const value of [
      '0.0.0.0/1',
      '0.0.0.0/1, 128.0.0.0/2, 192.0.0.0/3',
      // proxy-addr matches no IPv4 client against a non-mapped IPv6 range, nor one shorter than /96.
      '::/1, 128.0.0.0/1',
      '::ffff:0.0.0.0/95, 0.0.0.0/1',
      '::ffff:0.0.0.0/97',
      '10.0.0.0/8, fd00::/8, loopback, linklocal, uniquelocal',
    ])
      expect(load(value), value).toEqual(value.split(',').map((item) => item.trim()));
  });
});
