/**
 * `npm run migrate`: brings the database of DATABASE_URL (or the embedded PGlite under DATA_DIR) to the
 * latest migration and exits. Safe beside running processes: migrations take an advisory lock.
 */
import { migrateToLatest } from '../db/migrate.js';
import { runOneShot } from './one-shot.js';

// One transaction: a PostgreSQL restarting under it is waited for and the migrations run again.
await runOneShot(
  'migrate',
  async ({ db, log }) => {
    await migrateToLatest(db, log);
  },
  { rerunAfterRestart: true },
);
