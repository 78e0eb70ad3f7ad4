/**
 * Runs the ledger audit on a schedule (LEDGER_AUDIT_INTERVAL_S, default 60 s) and keeps the last run
 * for the admin endpoint. Runs never overlap: the next one is scheduled when the previous finished.
 * Findings are logged as errors (they mean money is wrong) and handed to `onRun`, where the edge
 * counts them in `gigwire_ledger_audit_failures_total`; an audit that could not run (database down)
 * is a warning, not a finding.
 */
import type { Logger } from '../../platform/logger.js';
import type { CancelTimer, Timers } from '../../platform/timers.js';
import type { AuditFinding, AuditReport } from './audit.js';

export interface AuditRun {
  readonly startedAt: Date;
  readonly finishedAt: Date;
  readonly findings: readonly AuditFinding[];
  readonly totals: AuditReport['totals'];
  /** Set when the audit could not run; findings are then empty. */
  readonly error: string | undefined;
}

export interface LedgerAuditor {
  /** Audits now (waiting for a run in progress first) and returns the run. */
  readonly runOnce: () => Promise<AuditRun>;
  /** The last finished run, if any. */
  readonly last: () => AuditRun | undefined;
  /** Stops the schedule and waits for a run in progress. */
  readonly stop: () => Promise<void>;
}

/** Findings written to one log line at most (the rest are counted). */
const LOGGED_FINDINGS = 20;

export function startLedgerAuditor(deps: {
  /** The audit itself (auditLedger bound to the database). */
  readonly audit: () => Promise<AuditReport>;
  readonly timers: Timers;
  readonly log: Pick<Logger, 'error' | 'warn' | 'debug'>;
  readonly intervalMs: number;
  readonly onRun?: (run: AuditRun) => void;
}): LedgerAuditor {
  let lastRun: AuditRun | undefined;
  let running: Promise<AuditRun> | undefined;
  let cancel: CancelTimer | undefined;
  let stopped = false;

  const execute = async (): Promise<AuditRun> => {
    const startedAt = new Date(deps.timers.now());
    let run: AuditRun;
    try {
      const report = await deps.audit();
      run = { startedAt, finishedAt: new Date(deps.timers.now()), ...report, error: undefined };
      if (report.findings.length > 0) {
        deps.log.error(
          { findings: report.findings.slice(0, LOGGED_FINDINGS), count: report.findings.length },
          'ledger audit found violated invariants',
        );
      } else {
        deps.log.debug({ totals: report.totals }, 'ledger audit clean');
      }
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      run = { startedAt, finishedAt: new Date(deps.timers.now()), findings: [], totals: [], error: message };
      deps.log.warn({ err: error }, 'ledger audit could not run');
    }
    lastRun = run;
    deps.onRun?.(run);
    return run;
  };

  const runOnce = (): Promise<AuditRun> => {
    const next = (running ?? Promise.resolve()).then(execute);
    running = next;
    void next.finally(() => {
      if (running === next) running = undefined;
    });
    return next;
  };

  const schedule = () => {
    if (stopped) return;
    cancel = deps.timers.schedule(deps.intervalMs, () => {
      void runOnce().finally(schedule);
    });
  };
  schedule();

  return {
    runOnce,
    last: () => lastRun,
    stop: async () => {
      stopped = true;
      cancel?.();
      await running?.catch(() => undefined);
    },
  };
}
