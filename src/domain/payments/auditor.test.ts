import { describe, expect, it } from 'vitest';
import { createManualTimers } from '../../platform/timers.js';
import type { AuditReport } from './audit.js';
import { type AuditRun, startLedgerAuditor } from './auditor.js';

const settle = () => new Promise((resolve) => setImmediate(resolve));

function fakeLog() {
  const lines: { level: string; msg: string }[] = [];
  const at = (level: string) => (_obj: unknown, msg?: string) => void lines.push({ level, msg: msg ?? '' });
  return { lines, log: { error: at('error'), warn: at('warn'), debug: at('debug') } as never };
}

describe('ledger auditor schedule', () => {
  it('audits every interval, never overlapping, logs findings as errors and outages as warnings', async () => {
    const timers = createManualTimers(1_000);
    const reports: (AuditReport | Error)[] = [
      { findings: [], totals: [] },
      {
        findings: [{ invariant: 'I2', message: 'postings do not sum to 0', details: { total: '1' } }],
        totals: [],
      },
      new Error('connection refused'),
    ];
    let calls = 0;
    const runs: AuditRun[] = [];
    const { lines, log } = fakeLog();
    const auditor = startLedgerAuditor({
      audit: async () => {
        const next = reports[calls++];
        if (next instanceof Error) throw next;
        return next ?? { findings: [], totals: [] };
      },
      timers,
      log,
      intervalMs: 60_000,
      onRun: (run) => runs.push(run),
    });
    expect(auditor.last()).toBeUndefined();
    timers.advance(59_999);
    await settle();
    expect(calls).toBe(0);

    for (let i = 0; i < 3; i++) {
      timers.advance(60_000);
      await settle();
    }
    expect(calls).toBe(3);
    expect(runs.map((r) => [r.findings.length, r.error])).toEqual([
      [0, undefined],
      [1, undefined],
      [0, 'connection refused'],
    ]);
    expect(lines.map((l) => l.level)).toEqual(['debug', 'error', 'warn']);
    expect(auditor.last()?.error).toBe('connection refused');

    // An on-demand run (the admin endpoint, `npm run ledger:audit`) works beside the schedule.
    expect((await auditor.runOnce()).findings).toEqual([]);
    await auditor.stop();
    timers.advance(600_000);
    await settle();
    expect(calls).toBe(4);
    expect(timers.pending()).toBe(0);
  });
});
