/**
 * `npm run ledger:audit`: checks every ledger
 * invariant once against DATABASE_URL (or the embedded PGlite under DATA_DIR), prints the report as
 * JSON and exits 1 when anything is wrong. Read-only, safe beside running processes.
 */
import { pendingMigrations } from '../db/migrate.js';
import { auditLedger } from '../domain/payments/audit.js';
import { commandLine, runOneShot } from './one-shot.js';

// No options: anything on the command line (`--fix`, `--since …`) is refused rather than ignored.
const args = commandLine('ledger:audit', {}, 'usage: npm run ledger:audit   (takes no arguments)\n');
if (args !== undefined) {
  await runOneShot('ledger-audit', async ({ db }) => {
    const pending = await pendingMigrations(db);
    if (pending.length > 0) {
      throw new Error(
        `the database is not migrated to this version (${pending.length} pending, from ${pending[0]}): run npm run migrate first`,
      );
    }
    const report = await auditLedger(db);
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    if (report.findings.length > 0)
      throw new Error(`${report.findings.length} ledger invariant violation(s)`);
  });
}
