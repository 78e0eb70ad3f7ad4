/**
 * `npm run admin:create -- --email admin@example.com --password '…' [--username admin]`: creates an
 * admin account. An existing account with that email is granted the admin role only with
 * `--promote`, and only when its email is verified (its own password is kept; --password is then
 * not needed). Without --promote an existing non-admin account is refused, never promoted.
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
    promote: { type: 'boolean', default: false },
  },
});

if (values.email === undefined || (values.password === undefined && !values.promote)) {
  process.stderr.write(
    'usage: npm run admin:create -- --email <email> --password <password> [--username <name>]\n' +
      '       npm run admin:create -- --email <email> --promote   (grant admin to an existing, verified account)\n',
  );
  process.exitCode = 2;
} else {
  const { email, password, username, promote } = values;
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
    const { user, outcome } = await auth.ensureAdmin(email, password, { username, promote });
    process.stdout.write(`admin ${user.username} <${user.email}> (${user.id}) ${outcome}\n`);
  });
}
