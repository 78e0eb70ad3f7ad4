/**
 * `npm run ledger:audit`: checks every ledger
 * invariant once against DATABASE_URL (or the embedded PGlite under DATA_DIR), prints the report as
 * JSON and exits 1 when anything is wrong. Read-only, safe beside running processes.
 */
import { auditLedger } from '../domain/payments/audit.js';
import { runOneShot } from './one-shot.js';

await runOneShot('ledger-audit', async ({ db }) => {
  const report = await auditLedger(db);
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  if (report.findings.length > 0) throw new Error(`${report.findings.length} ledger invariant violation(s)`);
});
