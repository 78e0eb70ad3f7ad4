/**
 * `npm run admin:create -- --email admin@example.com --password '…' [--username admin]`: creates an
 * admin account. `--password-stdin` reads the password from standard input instead (its first line),
 * so it is not in the process list, where every local user can read a command line. An existing account with that email is granted the admin role only with
 * `--promote`, and only when its email is verified (its own password is kept; --password is then
 * not needed). Without --promote an existing non-admin account is refused, never promoted.
 */
import { Email, NewPassword, Username } from '../../protocol/src/rest/auth.js';
import { migrateToLatest } from '../db/migrate.js';
import { weakPasswordReason } from '../domain/auth/common-passwords.js';
import { createPasswordHasher } from '../domain/auth/passwords.js';
import { createAuthService } from '../domain/auth/service.js';
import { createTokenService } from '../domain/auth/tokens.js';
import { systemClock } from '../platform/clock.js';
import { commandLine, runOneShot } from './one-shot.js';

const USAGE =
  'usage: npm run admin:create -- --email <email> --password <password> [--username <name>]\n' +
  '       npm run admin:create -- --email <email> --password-stdin [--username <name>]   (the password on standard input)\n' +
  '       npm run admin:create -- --email <email> --promote   (grant admin to an existing, verified account)\n';

const values = commandLine(
  'admin:create',
  {
    email: { type: 'string' },
    password: { type: 'string' },
    'password-stdin': { type: 'boolean', default: false },
    username: { type: 'string', default: 'admin' },
    promote: { type: 'boolean', default: false },
  },
  USAGE,
);

/**
 * The account is made with the rules registration applies (an email address; a username of 3-32
 * of A-Z a-z 0-9 _ . -): an address with a stray space or no `@` would make an admin who cannot
 * sign in with it and whose mail goes nowhere.
 */
function invalidArgument(name: 'email' | 'username', value: string): string | undefined {
  const parsed = (name === 'email' ? Email : Username).safeParse(value);
  return parsed.success
    ? undefined
    : `--${name} ${JSON.stringify(value)}: ${parsed.error.issues[0]?.message}`;
}

/**
 * The password as registration and ADMIN_PASSWORD take it (10-128 characters, none of the most
 * common): admin:create made an admin whose password was `short`. Never quoted (the line may end up in a terminal's scrollback or
 * a CI log).
 */
function invalidPassword(password: string | undefined): string | undefined {
  if (password === undefined) return undefined;
  const parsed = NewPassword.safeParse(password);
  if (!parsed.success) return `--password: ${parsed.error.issues[0]?.message}`;
  // What ensureAdmin would refuse (one of the most common, a run), before the migrations run: it
  // exited 1 with "start failed"-style noise after migrating, not 2 naming the argument.
  const weak = weakPasswordReason(password, []);
  return weak === undefined ? undefined : `--password ${weak}`;
}

/** The first line of standard input, without its line ending (`echo "$PW" | … --password-stdin`). */
async function passwordFromStdin(): Promise<string> {
  let text = '';
  for await (const chunk of process.stdin) {
    text += String(chunk);
    if (text.includes('\n') || text.length > 4096) break;
  }
  return text.split(/\r?\n/)[0] ?? '';
}

if (values?.['password-stdin'] === true) {
  if (values.password !== undefined) {
    process.stderr.write('gigwire: admin:create: give --password or --password-stdin, not both\n');
    process.exitCode = 2;
  } else {
    values.password = await passwordFromStdin();
  }
}

const invalid =
  values === undefined || values.email === undefined
    ? undefined
    : (invalidArgument('email', values.email) ??
      invalidArgument('username', values.username) ??
      invalidPassword(values.password));

if (values === undefined || process.exitCode === 2) {
  // commandLine (or the stdin check) said what is wrong.
} else if (values.email === undefined || (values.password === undefined && !values.promote)) {
  process.stderr.write(USAGE);
  process.exitCode = 2;
} else if (invalid !== undefined) {
  process.stderr.write(`gigwire: admin:create: ${invalid}\n`);
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
    // An operator re-running the command with a new password could read "existing" as a reset.
    const note =
      outcome === 'existing' && password !== undefined
        ? " (its password is unchanged: --password sets only a new account's; change it in the app, or with the forgot-password mail)"
        : '';
    process.stdout.write(`admin ${user.username} <${user.email}> (${user.id}) ${outcome}${note}\n`);
  });
}
