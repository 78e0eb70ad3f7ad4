import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './index.js';

const context = { cwd: '/srv/gigwire', isRoot: false, stdoutIsTty: false, pid: 4242 };
const load = (env: Record<string, string>) => loadConfig(env, context);

describe('MAIL_FROM', () => {
  it.each([
    'gigwire <no-reply@gigwire.local>',
    'no-reply@example.com',
    '"Gig, Wire" <no-reply@example.com>',
    'Gigwire Support <support@mail.example.co.uk>',
  ])('takes a sender with an address: %s', (value) => {
    expect(load({ MAIL_FROM: value }).mail.from).toBe(value);
  });

  // Each was taken, and every mail went out from the null sender (MAIL FROM:<>) with an empty From.
  it.each([
    'gigwire',
    '<<<',
    'gigwire <no-reply>',
    'a@example.com, b@example.com',
    'gigwire no-reply@example.com',
  ])('refuses a sender without one address, in one line: %s', (value) => {
    expect(() => load({ MAIL_FROM: value })).toThrow(ConfigError);
    expect(() => load({ MAIL_FROM: value })).toThrow(
      `invalid configuration: MAIL_FROM must be a sender such as \`gigwire <no-reply@example.com>\` or no-reply@example.com (got ${JSON.stringify(value)})`,
    );
  });

  it('defaults to the documented sender', () => {
    expect(load({}).mail.from).toBe('gigwire <no-reply@gigwire.local>');
  });
});
