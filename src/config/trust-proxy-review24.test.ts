/**
 * Review 24: TRUST_PROXY refuses `true` because it trusts every hop (any client could choose its
 * IP and reset every per-IP limit with a made-up X-Forwarded-For), but a range of every address,
 * `0.0.0.0/0` or `::/0` (what an operator writes next when `true` is refused), was taken and did the
 * same, silently.
 */
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './index.js';

const load = (value: string) =>
  loadConfig({ TRUST_PROXY: value }, { cwd: '/srv/gigwire', isRoot: false, stdoutIsTty: false, pid: 1 })
    .trustProxy;

describe('TRUST_PROXY naming every address', () => {
  it('refuses 0.0.0.0/0 and ::/0 as it refuses true, naming the range', () => {
    for (const every of ['0.0.0.0/0', '::/0', '10.0.0.1, 0.0.0.0/0', '::/00']) {
      expect(() => load(every), every).toThrow(ConfigError);
      expect(() => load(every), every).toThrow(/TRUST_PROXY must not name .*\/0+ \(it trusts every hop/);
    }
  });

  it('still takes narrower ranges, public ones included (a CDN the operator trusts)', () => {
    expect(load('0.0.0.0/1')).toEqual(['0.0.0.0/1']);
    expect(load('173.245.48.0/20, 2400:cb00::/32')).toEqual(['173.245.48.0/20', '2400:cb00::/32']);
  });
});
