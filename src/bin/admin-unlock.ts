/**
 * `npm run admin:unlock -- --email someone@example.com`: unlocks an account from the operator's
 * shell. Admins lock and unlock accounts over REST, but never their own; should every admin account
 * end up locked (one admin locking the others), this is the way back in.
 */
import { migrateToLatest } from '../db/migrate.js';
import { findUserByEmail, updateUser } from '../db/repositories/users.repo.js';
import { commandLine, runOneShot } from './one-shot.js';

const USAGE = 'usage: npm run admin:unlock -- --email <email>\n';
const values = commandLine('admin:unlock', { email: { type: 'string' } }, USAGE);

if (values === undefined) {
  // commandLine said what is wrong.
} else if (values.email === undefined) {
  process.stderr.write(USAGE);
  process.exitCode = 2;
} else {
  const email = values.email;
  await runOneShot('admin:unlock', async ({ db, log }) => {
    await migrateToLatest(db, log);
    const user = await findUserByEmail(db, email);
    if (user === undefined) throw new Error(`no account with the email ${email}`);
    if (user.locked_at === null) {
      process.stdout.write(`${user.username} <${user.email}> (${user.id}) was not locked\n`);
      return;
    }
    await updateUser(db, user.id, { locked_at: null });
    log.info({ userId: user.id }, 'account unlocked by an operator');
    process.stdout.write(`${user.username} <${user.email}> (${user.id}) unlocked: it can log in again\n`);
  });
}
