import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './index.js';

const load = (value: string | undefined) =>
  loadConfig({ TRUST_PROXY: value }, { cwd: '/srv/gigwire', isRoot: false, stdoutIsTty: false, pid: 1 })
    .trustProxy;

describe('TRUST_PROXY', () => {
  it('trusts nothing by default or with false / 0', () => {
    expect(load(undefined)).toBe(0);
    expect(load('false')).toBe(0);
    expect(load('0')).toBe(0);
  });

  it('takes a hop count, or proxy addresses and CIDRs', () => {
    expect(load('1')).toBe(1);
    expect(load('2')).toBe(2);
    expect(load('172.28.0.10')).toEqual(['172.28.0.10']);
    expect(load(' 10.0.0.0/8, fd00::/8 ,loopback')).toEqual(['10.0.0.0/8', 'fd00::/8', 'loopback']);
  });

  it('refuses true (every hop trusted: a client could choose its IP), naming the alternatives', () => {
    expect(() => load('true')).toThrow(ConfigError);
    expect(() => load('TRUE')).toThrow(/TRUST_PROXY must not be true .*number of proxies/);
  });

  it('refuses anything that is not an address, a CIDR or a count', () => {
    for (const bad of ['yes', 'nginx', '10.0.0.0/33', '10.0.0.1/8/1', '1.2.3', '-1', '100', ',']) {
      expect(() => load(bad), bad).toThrow(/TRUST_PROXY must be false, a number of proxies/);
    }
  });
});
