import { describe, expect, it } from 'vitest';
import { createLogger, redactUrl } from './logger.js';

/** A logger writing into an array of raw JSON lines. */
function capture() {
  const lines: string[] = [];
  const log = createLogger({
    level: 'info',
    pretty: false,
    base: { node: 'n1' },
    destination: { write: (line: string) => void lines.push(line.trim()) },
  });
  return { log, lines };
}

/** The keys of a JSON line in order, repeats included (JSON.parse would hide a repeat). */
const keysOf = (line: string) => [...line.matchAll(/[{,]"([^"]+)":/g)].map((m) => m[1]);

describe('child loggers', () => {
  it('write one component key for a child of a child, joined with a dot', () => {
    const { log, lines } = capture();
    const placement = log.child({ component: 'gateway' }).child({ component: 'placement' });
    placement.info('placed');
    placement.child({ component: 'lease' }).info('renewed');
    const [first, second] = lines;
    expect(keysOf(first ?? '').filter((k) => k === 'component')).toHaveLength(1);
    expect(JSON.parse(first ?? '{}')).toMatchObject({
      node: 'n1',
      component: 'gateway.placement',
      msg: 'placed',
    });
    expect(JSON.parse(second ?? '{}')).toMatchObject({ component: 'gateway.placement.lease' });
    expect(placement.bindings()).toMatchObject({ component: 'gateway.placement' });
  });

  it('keep the child value of any other repeated key, once, and leave unrelated children alone', () => {
    const { log, lines } = capture();
    const child = log.child({ component: 'gateway', userId: 'u1' });
    child.child({ userId: 'u2', password: 'hunter2' }).info('again');
    child.child({ reqId: 'r1' }).info('request');
    const [repeated, plain] = lines;
    expect(keysOf(repeated ?? '').filter((k) => k === 'userId')).toHaveLength(1);
    expect(JSON.parse(repeated ?? '{}')).toMatchObject({
      component: 'gateway',
      userId: 'u2',
      password: '[Redacted]',
    });
    expect(repeated).not.toContain('hunter2');
    expect(JSON.parse(plain ?? '{}')).toMatchObject({ component: 'gateway', userId: 'u1', reqId: 'r1' });
    expect(new Set(keysOf(plain ?? '')).size).toBe(keysOf(plain ?? '').length);
  });
});

describe('redactUrl', () => {
  it('redacts token parameters in every spelling the server would decode to the same name', () => {
    for (const key of [
      'access_token',
      'access%5Ftoken',
      'access%5ftoken',
      '%61ccess_token',
      'ACCESS_TOKEN',
      'refresh_token',
      'refresh%5Ftoken',
      'token',
      '%74oken',
    ]) {
      const redacted = redactUrl(`/ws?a=1&${key}=s3cr3t.value&b=2`);
      expect(redacted, key).not.toContain('s3cr3t');
      expect(redacted, key).toBe(`/ws?a=1&${key}=[Redacted]&b=2`);
    }
  });

  it('keeps other parameters, paths without a query, and parameters that only look alike', () => {
    expect(redactUrl('/v1/users?q=token&limit=5')).toBe('/v1/users?q=token&limit=5');
    expect(redactUrl('/v1/users')).toBe('/v1/users');
    expect(redactUrl('/ws?access_tokens=x')).toBe('/ws?access_tokens=x');
    expect(redactUrl('/ws?access_token')).toBe('/ws?access_token=[Redacted]');
  });
});
