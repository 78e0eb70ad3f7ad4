import { describe, expect, it } from 'vitest';
import { redactUrl } from './logger.js';

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
