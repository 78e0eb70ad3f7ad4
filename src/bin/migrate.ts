/**
 * `npm run migrate`: brings the database of DATABASE_URL (or the embedded PGlite under DATA_DIR) to the
 * latest migration and exits. Safe beside running processes: migrations take an advisory lock.
 */
import { migrateToLatest } from '../db/migrate.js';
import { commandLine, runOneShot } from './one-shot.js';

// No options: anything on the command line (`--help`, `--dry-run`, `--status`) is refused rather than
// ignored, which would migrate all the same.
const args = commandLine('migrate', {}, 'usage: npm run migrate   (takes no arguments)\n');
// One transaction: a PostgreSQL restarting under it is waited for and the migrations run again.
if (args !== undefined) {
  await runOneShot(
    'migrate',
    async ({ db, log }) => {
      await migrateToLatest(db, log);
    },
    { rerunAfterRestart: true },
  );
}
