/**
 * The ledger auditor (TigerBeetle's idea, in SQL): checks every invariant of issue 11 §7 against the
 * stored rows and returns one finding per violation. A healthy ledger yields no findings. Read-only;
 * it runs in one REPEATABLE READ transaction so all checks see the same snapshot even while
 * operations commit around it.
 *
 * Invariants (numbering of research §3.2):
 * I1 each journal transaction has ≥ 2 entries summing to 0 · I2 all postings sum to 0 ·
 * I3 no account but provider clearing has posted − pending debits < 0 (or may go below 0) ·
 * I4 the append-only / balance guard triggers exist and are enabled ·
 * I5 cached balance = Σ entries, version = count, the last entry recorded that balance ·
 *    (and cached pending amounts = Σ pending holds) ·
 * I6 a hold is posted by exactly one transaction iff it is posted, moving the held amount ·
 * I7 a held escrow's account holds its amount, a resolved one holds only the shares parked for a
 *    party's wallet (reserved by their pending holds); no money in an escrow
 *    account without an escrow ·
 * I8 one external event → at most one transaction · I9 entries in their transaction's currency.
 */
import type { Kysely } from 'kysely';
import type { Database } from '../../db/database.js';
import { auditQueries, LEDGER_GUARD_TRIGGERS } from '../../db/repositories/ledger.repo.js';
import type { LedgerAccountKind } from '../../db/tables/ledger.table.js';

export type Invariant = 'I1' | 'I2' | 'I3' | 'I4' | 'I5' | 'I6' | 'I7' | 'I8' | 'I9';

export interface AuditFinding {
  readonly invariant: Invariant;
  readonly message: string;
  /** The offending row's ids and values (strings for money). */
  readonly details: Readonly<Record<string, string | null>>;
}

export interface AuditReport {
  readonly findings: readonly AuditFinding[];
  /** Σ posted per account kind and currency, as decimal strings of minor units. */
  readonly totals: readonly { kind: LedgerAccountKind; currency: string; posted: string }[];
}

const finding = (
  invariant: Invariant,
  message: string,
  details: Record<string, string | null>,
): AuditFinding => ({
  invariant,
  message,
  details,
});

export async function auditLedger(db: Kysely<Database>): Promise<AuditReport> {
  return db
    .transaction()
    .setIsolationLevel('repeatable read')
    .setAccessMode('read only')
    .execute(async (trx) => {
      const findings: AuditFinding[] = [];
      for (const row of (await auditQueries.unbalancedTransactions(trx)).rows) {
        findings.push(finding('I1', 'transaction does not balance', { ...row }));
      }
      const total = (await auditQueries.globalTotal(trx)).rows[0]?.total ?? '0';
      if (total !== '0') findings.push(finding('I2', 'postings do not sum to 0', { total }));
      for (const row of (await auditQueries.negativeAvailable(trx)).rows) {
        const message =
          BigInt(row.available) < 0n ? 'available balance below 0' : 'account allowed to go below 0';
        findings.push(finding('I3', message, { ...row }));
      }
      const triggers = new Map(
        (await auditQueries.guardTriggers(trx)).rows.map((row) => [row.name, row.enabled]),
      );
      for (const name of LEDGER_GUARD_TRIGGERS) {
        const enabled = triggers.get(name);
        // 'O' = enabled in origin mode (the default); 'D' = disabled.
        if (enabled === undefined || enabled === 'D') {
          findings.push(
            finding('I4', 'ledger guard trigger missing or disabled', {
              trigger: name,
              enabled: enabled ?? null,
            }),
          );
        }
      }
      for (const row of (await auditQueries.staleAccounts(trx)).rows) {
        findings.push(finding('I5', 'cached balance or version differs from the entries', { ...row }));
      }
      for (const row of (await auditQueries.stalePending(trx)).rows) {
        findings.push(finding('I5', 'cached pending amounts differ from the pending holds', { ...row }));
      }
      for (const row of (await auditQueries.inconsistentHolds(trx)).rows) {
        findings.push(finding('I6', row.problem, { id: row.id, status: row.status, postings: row.postings }));
      }
      for (const row of (await auditQueries.inconsistentEscrows(trx)).rows) {
        findings.push(finding('I7', 'escrow account balance does not match the escrow state', { ...row }));
      }
      for (const row of (await auditQueries.orphanEscrowAccounts(trx)).rows) {
        findings.push(finding('I7', 'money in an escrow account without an escrow', { ...row }));
      }
      for (const row of (await auditQueries.duplicateExternalRefs(trx)).rows) {
        findings.push(finding('I8', 'external event recorded more than once', { ...row }));
      }
      for (const row of (await auditQueries.currencyMismatches(trx)).rows) {
        findings.push(finding('I9', 'entry currency differs from its transaction', { ...row }));
      }
      const totals = (await auditQueries.totalsByKind(trx)).rows;
      return { findings, totals };
    });
}
