/**
 * Review 31 (operator): PUBLIC_URL (the base of every mailed link) and PAYMENTS_WEBHOOK_URL (the
 * base the sandbox posts webhooks to) took any http(s) URL, and paths were appended after whatever
 * it held: a fragment (`https://app.example.com/#/jobs`, the web app's address as the browser shows
 * it) hid every mailed token from the server, a query broke every link, and a user name and
 * password went out in every mail. Such a value is refused at start now (exit 2).
 */
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './index.js';

const load = (env: Record<string, string>) =>
  loadConfig(env, { cwd: '/srv/gigwire', isRoot: false, stdoutIsTty: false, pid: 1 });

describe('PUBLIC_URL and PAYMENTS_WEBHOOK_URL (review 31)', () => {
  it('accept a base URL, with or without a path', () => {
    expect(load({ PUBLIC_URL: 'https://app.example.com/' }).publicUrl).toBe('https://app.example.com');
    expect(load({ PUBLIC_URL: 'https://example.com/gigwire/' }).publicUrl).toBe(
      'https://example.com/gigwire',
    );
    expect(load({ PAYMENTS_WEBHOOK_URL: 'http://api:3000' }).payments.webhookBaseUrl).toBe('http://api:3000');
  });

  it('refuse a query, a fragment or credentials, which every link would carry', () => {
    for (const name of ['PUBLIC_URL', 'PAYMENTS_WEBHOOK_URL']) {
      for (const value of [
        'https://app.example.com/#/jobs',
        'https://app.example.com/?ref=mail',
        'https://app.example.com/?',
        'https://ops:hunter2@app.example.com',
      ]) {
        expect(() => load({ [name]: value }), `${name}=${value}`).toThrow(ConfigError);
        expect(() => load({ [name]: value }), `${name}=${value}`).toThrow(
          new RegExp(
            `${name} must be a URL starting with http:// or https://, with no query, fragment or user name`,
          ),
        );
        expect(() => load({ [name]: value })).not.toThrow(/hunter2/);
      }
    }
  });
});
