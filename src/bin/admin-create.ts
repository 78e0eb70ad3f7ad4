/**
 * `npm run admin:create -- --email admin@example.com --password '…' [--username admin]`: creates an
 * admin account, or grants the admin role to the account with that email.
 */
import { parseArgs } from 'node:util';
import { migrateToLatest } from '../db/migrate.js';
import { createPasswordHasher } from '../domain/auth/passwords.js';
import { createAuthService } from '../domain/auth/service.js';
import { createTokenService } from '../domain/auth/tokens.js';
import { systemClock } from '../platform/clock.js';
import { runOneShot } from './one-shot.js';

const { values } = parseArgs({
  options: {
    email: { type: 'string' },
    password: { type: 'string' },
    username: { type: 'string', default: 'admin' },
  },
});

if (values.email === undefined || values.password === undefined) {
  process.stderr.write(
    'usage: npm run admin:create -- --email <email> --password <password> [--username <name>]\n',
  );
  process.exitCode = 2;
} else {
  const { email, password, username } = values;
  await runOneShot('admin:create', async ({ config, db, log }) => {
    await migrateToLatest(db, log);
    const noCounters = {
      peek: async () => ({ count: 0, resetInMs: 0 }),
      hit: async () => ({ count: 0, resetInMs: 0 }),
      clear: async () => undefined,
      release: async () => undefined,
    };
    const auth = createAuthService({
      db,
      clock: systemClock,
      log,
      tokens: createTokenService(db, config.jwt, systemClock),
      passwords: createPasswordHasher(),
      // Account creation never consults the login counters.
      counters: noCounters,
      settings: { refresh: config.refresh, login: config.login },
    });
    const admin = await auth.ensureAdmin(email, password, username);
    process.stdout.write(`admin ${admin.username} <${admin.email}> (${admin.id}) is ready\n`);
  });
}
