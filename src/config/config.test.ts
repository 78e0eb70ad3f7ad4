import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './index.js';

const context = { cwd: '/srv/gigwire', isRoot: false, stdoutIsTty: false, pid: 4242 };
const load = (env: Record<string, string | undefined>) => loadConfig(env, context);

function problemLine(env: Record<string, string>): string {
  try {
    load(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('uses documented defaults when nothing is set', () => {
    const config = load({});
    expect(config).toMatchObject({
      role: 'all',
      host: '127.0.0.1',
      port: 3000,
      dataDir: '/srv/gigwire/data',
      databaseUrl: undefined,
      redisUrl: undefined,
      redisPrefix: 'gw',
      installSystemPackages: false,
      logLevel: 'info',
      logPretty: false,
      shutdownTimeoutMs: 9000,
    });
    expect(Object.isFrozen(config)).toBe(true);
    // Nested settings too: one part of the process cannot change them for the others.
    expect(Object.isFrozen(config.ws)).toBe(true);
    expect(Object.isFrozen(config.payments.webhookSecrets)).toBe(true);
  });

  it('treats an empty value as unset', () => {
    expect(load({ PORT: '', ROLE: '  ' }).port).toBe(3000);
  });

  it('parses given values', () => {
    const config = load({
      ROLE: 'gateway',
      PORT: '8080',
      DATA_DIR: '/var/lib/gigwire',
      DATABASE_URL: 'postgres://u@db:5432/app',
      REDIS_URL: 'redis://cache:6379',
      LOG_PRETTY: 'true',
      INSTALL_SYSTEM_PACKAGES: 'auto',
    });
    expect(config).toMatchObject({
      role: 'gateway',
      port: 8080,
      dataDir: '/var/lib/gigwire',
      databaseUrl: 'postgres://u@db:5432/app',
      redisUrl: 'redis://cache:6379',
      logPretty: true,
      installSystemPackages: false,
    });
  });

  it('keeps CORS_ORIGINS as the origins browsers send (no trailing slash, lower case, no default port)', () => {
    expect(
      load({ CORS_ORIGINS: 'https://app.example.com/, https://App.Example.com:443, http://localhost:5173/' })
        .corsOrigins,
    ).toEqual(['https://app.example.com', 'https://app.example.com', 'http://localhost:5173']);
    for (const notAnOrigin of [
      'https://app.example.com/app',
      'https://app.example.com/?x=1',
      'https://u:p@app.example.com',
      '*',
      'ftp://files.example.com',
    ])
      expect(problemLine({ CORS_ORIGINS: notAnOrigin }), notAnOrigin).toContain('CORS_ORIGINS');
  });

  it('resolves auto flags from the context', () => {
    const config = loadConfig({}, { ...context, isRoot: true, stdoutIsTty: true });
    expect(config.installSystemPackages).toBe(true);
    expect(config.logPretty).toBe(true);
  });

  it('names the variable and the value in one line for a non-numeric port', () => {
    const line = problemLine({ PORT: 'abc' });
    expect(line).toBe('invalid configuration: PORT must be a whole number between 0 and 65535 (got "abc")');
    expect(line).not.toContain('\n');
  });

  it('rejects out-of-range numbers, unknown roles and wrong URL schemes, all in one line', () => {
    const line = problemLine({
      PORT: '70000',
      ROLE: 'boss',
      DATABASE_URL: 'mysql://x',
      REDIS_URL: 'not a url',
    });
    expect(line).toContain('PORT must be between 0 and 65535 (got "70000")');
    expect(line).toContain('ROLE must be one of all, api, gateway, worker (got "boss")');
    expect(line).toContain('DATABASE_URL must be a URL starting with postgres:// or postgresql://');
    expect(line).toContain('REDIS_URL must be a URL starting with redis:// or rediss://');
    expect(line).not.toContain('\n');
  });

  it('reads STARTUP_WAIT_S as whole seconds from 0 (no wait) to an hour, and refuses anything else', () => {
    expect(load({ STARTUP_WAIT_S: '0' }).startupWaitMs).toBe(0);
    expect(load({ STARTUP_WAIT_S: '3600' }).startupWaitMs).toBe(3_600_000);
    for (const value of ['-1', '1.5', '3601', 'soon', '1e3', '0x10']) {
      expect(problemLine({ STARTUP_WAIT_S: value }), value).toMatch(
        /^invalid configuration: STARTUP_WAIT_S must be/,
      );
    }
  });

  it('rejects a Redis prefix that would break key patterns', () => {
    expect(problemLine({ REDIS_PREFIX: 'a b*' })).toContain('REDIS_PREFIX must be 1-32 characters');
  });

  it('accepts a currency with two decimal places, the only kind amounts are shown in', () => {
    expect(load({}).payments.currency).toBe('USD');
    expect(load({ CURRENCY: 'EUR' }).payments.currency).toBe('EUR');
    expect(load({ CURRENCY: ' GBP ' }).payments.currency).toBe('GBP');
  });

  it('refuses a currency whose minor unit is not a hundredth, or no currency at all', () => {
    // Shown as hundredths everywhere: JPY amounts would read 100 times too small, KWD 10 times too large.
    expect(problemLine({ CURRENCY: 'JPY' })).toBe(
      'invalid configuration: CURRENCY must be a currency with two decimal places such as USD or EUR (got "JPY")',
    );
    expect(problemLine({ CURRENCY: 'KWD' })).toContain('CURRENCY must be a currency with two decimal places');
    // ABC is no currency at all; XXX is ISO 4217's own code for "no currency" (no minor unit).
    for (const code of ['usd', 'US', 'DOLLAR', 'ABC', 'XXX']) {
      expect(problemLine({ CURRENCY: code })).toBe(
        `invalid configuration: CURRENCY must be an ISO 4217 currency code such as USD or EUR (got "${code}")`,
      );
    }
  });
});

describe('payment webhooks in production', () => {
  const secret = `whsec_${Buffer.alloc(32, 1).toString('base64')}`;

  it('refuses the public development secret when NODE_ENV=production, except on a gateway', () => {
    const publicUrl = 'https://gigwire.example';
    for (const role of ['all', 'api', 'worker']) {
      expect(() => load({ NODE_ENV: 'production', ROLE: role, PUBLIC_URL: publicUrl }), role).toThrow(
        /PAYMENTS_WEBHOOK_SECRETS/,
      );
    }
    expect(load({ NODE_ENV: 'production', ROLE: 'gateway' }).role).toBe('gateway');
    // Written another way, it still means production (review 31: the checks were skipped).
    for (const written of ['Production', 'PRODUCTION', 'prod'])
      expect(() => load({ NODE_ENV: written, ROLE: 'api' }), written).toThrow(/PAYMENTS_WEBHOOK_SECRETS/);
    expect(load({ NODE_ENV: 'staging', ROLE: 'api' }).role).toBe('api');
    // Mail-sending processes need PUBLIC_URL for their links; a REST-only api does not.
    for (const role of ['all', 'worker']) {
      expect(
        () => load({ NODE_ENV: 'production', ROLE: role, PAYMENTS_WEBHOOK_SECRETS: secret }),
        role,
      ).toThrow(/PUBLIC_URL must be set/);
    }
    expect(load({ NODE_ENV: 'production', ROLE: 'api', PAYMENTS_WEBHOOK_SECRETS: secret }).role).toBe('api');
    const configured = load({
      NODE_ENV: 'production',
      PAYMENTS_WEBHOOK_SECRETS: secret,
      PUBLIC_URL: publicUrl,
    });
    expect(configured.payments.developmentWebhookSecret).toBe(false);
    // One-shot commands (migrate as a release step, admin:create…) send no mail and take no webhooks.
    expect(
      loadConfig(
        { NODE_ENV: 'production', DATABASE_URL: 'postgres://db/gigwire' },
        { ...context, purpose: 'command' },
      ).databaseUrl,
    ).toBe('postgres://db/gigwire');
    // Outside production the development secret still works out of the box.
    expect(load({}).payments.developmentWebhookSecret).toBe(true);
  });

  it('posts sandbox webhooks to PAYMENTS_WEBHOOK_URL when set, else PUBLIC_URL', () => {
    expect(load({ PUBLIC_URL: 'http://localhost:8080/' }).payments.webhookBaseUrl).toBe(
      'http://localhost:8080',
    );
    expect(
      load({ PUBLIC_URL: 'http://localhost:8080', PAYMENTS_WEBHOOK_URL: 'http://api:3000/' }).payments
        .webhookBaseUrl,
    ).toBe('http://api:3000');
  });
});

describe('configuration errors never print secrets', () => {
  it('shows a rejected URL without the password of its user info or credential parameters', () => {
    const line = problemLine({
      DATABASE_URL: 'mysql://admin:hunter2-db@db:3306/app',
      REDIS_URL: 'redis://:hunter2-redis@cache:99999/0',
      SMTP_URL: 'http://mailer:hunter2-smtp@mail:587',
      PUBLIC_URL: 'ftp://web:hunter2-public@example.com/?token=hunter2-query&x=1',
    });
    for (const secret of ['hunter2-db', 'hunter2-redis', 'hunter2-smtp', 'hunter2-public', 'hunter2-query']) {
      expect(line).not.toContain(secret);
    }
    expect(line).toContain(
      'DATABASE_URL must be a URL starting with postgres:// or postgresql:// (got "mysql://admin:***@db:3306/app")',
    );
    expect(line).toContain('(got "redis://:***@cache:99999/0")');
    expect(line).toContain('(got "http://mailer:***@mail:587")');
    expect(line).toContain('(got "ftp://web:***@example.com/?token=***&x=1")');
  });

  it('hides user info that is not a valid URL, up to the last @', () => {
    const line = problemLine({ DATABASE_URL: 'postgres://u:p@ss:w@rd@db:port/app' });
    expect(line).not.toContain('ss:w');
    expect(line).toContain('(got "postgres://u:***@db:port/app")');
    expect(problemLine({ REDIS_URL: 'token-only@cache' })).toContain('(got "***@cache")');
  });

  it('never shows the value of a secret setting', () => {
    const line = problemLine({
      ADMIN_EMAIL: 'admin@example.com',
      ADMIN_PASSWORD: 'short-pw',
      PAYMENTS_WEBHOOK_SECRETS: 'whsec_bm90LWVub3VnaA==,plain-hunter2',
      JWT_PRIVATE_KEY: '{"kty":"OKP","crv":"Ed25519","d":"hunter2-private-key"',
    });
    for (const secret of ['short-pw', 'bm90LWVub3VnaA', 'plain-hunter2', 'hunter2-private-key']) {
      expect(line).not.toContain(secret);
    }
    expect(line).toContain('ADMIN_PASSWORD must be 10 to 128 characters (value not shown: it is a secret)');
    expect(line).toContain('PAYMENTS_WEBHOOK_SECRETS must be secrets of the form');
    expect(line).toContain('JWT_PRIVATE_KEY must be an Ed25519 private JWK as JSON');
    expect(line.match(/value not shown: it is a secret/g)).toHaveLength(3);
  });

  it('does not also say ADMIN_EMAIL and ADMIN_PASSWORD must be set together when one was given but refused', () => {
    const line = problemLine({ ADMIN_EMAIL: 'admin@example.com', ADMIN_PASSWORD: 'short' });
    expect(line).toBe(
      'invalid configuration: ADMIN_PASSWORD must be 10 to 128 characters (value not shown: it is a secret)',
    );
    expect(
      problemLine({ ADMIN_EMAIL: 'not-an-email', ADMIN_PASSWORD: 'long enough password' }),
    ).not.toContain('set together');
    // Only one of them given is still refused.
    expect(problemLine({ ADMIN_EMAIL: 'admin@example.com' })).toContain(
      'ADMIN_EMAIL and ADMIN_PASSWORD must be set together',
    );
  });

  it('accepts an Ed25519 private JWK and refuses any other JSON', () => {
    const { d, x } = generateKeyPairSync('ed25519').privateKey.export({ format: 'jwk' });
    const jwk = { kty: 'OKP', crv: 'Ed25519', d, x, kid: 'k1' };
    expect(load({ JWT_PRIVATE_KEY: JSON.stringify(jwk) }).jwt.privateKey).toBe(JSON.stringify(jwk));
    expect(problemLine({ JWT_PRIVATE_KEY: JSON.stringify({ ...jwk, crv: 'P-256' }) })).toContain(
      'JWT_PRIVATE_KEY must be an Ed25519 private JWK',
    );
  });
});
