/**
 * Transfer scenario (gigwire only): POST /v1/wallet/transfers of 1 minor unit through autocannon, each
 * request with its own Idempotency-Key, so every 201 is one ledger transaction committed (idempotency
 * row, two entries, two account rows, one outbox event, in one PostgreSQL transaction) plus the wallet
 * push on the bus. Two cases:
 * - `pairs`: 16 disjoint sender → recipient pairs, requests spread round robin over them, so
 *   concurrent transfers rarely wait for the same account lock (the common case);
 * - `hot`: every request out of one wallet, so the transfers serialize on that account's row lock
 *   (FOR UPDATE) — the worst case of one busy payer.
 * The senders are funded before each run (`target.fundWallets`) with far more than a run can spend, so
 * an INSUFFICIENT_FUNDS answer would show up as non-2xx. Figures: transfers/s (201s), latency
 * p50/p99, non-2xx, server CPU µs per transfer and Postgres+Redis CPU µs per transfer.
 * Then a correctness check (`ledgerProblem`): gigwire's ledger auditor finds nothing and every 201 is
 * exactly one posted transfer; otherwise a `transfer@ledger` case without numbers fails the run.
 */
import { randomUUID } from 'node:crypto';
import autocannon from 'autocannon';
import {
  type CaseResult,
  errorText,
  failedCase,
  loadgenCheck,
  MeasureWindow,
  type Scenario,
  type ScenarioContext,
  skippedCase,
} from './scenario.js';
import { sleep } from './stats.js';
import type { ClientCredential } from './target.js';

/** Sender → recipient pairs of the `pairs` case; the scenario needs twice as many credentials. */
export const TRANSFER_PAIRS = 16;
const CONNECTIONS = 16;
/** Given to every sender before the first run: more than any run can spend at 1 per transfer. */
export const TRANSFER_FUNDING = 1_000_000_000;

export function transferSeconds(quick: boolean): number {
  return quick ? 1 : 8;
}

interface TransferCase {
  readonly caseId: string;
  readonly label: string;
  readonly level: number;
  /** [sender, recipient] pairs the requests rotate over. */
  readonly pairs: ReadonlyArray<readonly [ClientCredential, ClientCredential]>;
}

export function transferCases(credentials: readonly ClientCredential[]): TransferCase[] {
  const pairs: [ClientCredential, ClientCredential][] = [];
  for (let i = 0; i + 1 < credentials.length && pairs.length < TRANSFER_PAIRS; i += 2) {
    const sender = credentials[i];
    const recipient = credentials[i + 1];
    if (sender !== undefined && recipient !== undefined) pairs.push([sender, recipient]);
  }
  if (pairs.length === 0) throw new Error('transfer: needs at least 2 credentials');
  const hot = pairs[0];
  return [
    {
      caseId: 'transfer@pairs',
      label: `${pairs.length} pairs, ${CONNECTIONS} conns`,
      level: 1,
      pairs,
    },
    {
      caseId: 'transfer@hot',
      label: `1 sender, ${CONNECTIONS} conns`,
      level: 2,
      pairs: hot === undefined ? [] : [hot],
    },
  ];
}

/** The senders of every case (each funded once per target). */
export function transferSenders(credentials: readonly ClientCredential[]): ClientCredential[] {
  return [...new Set(transferCases(credentials).flatMap((c) => c.pairs.map(([sender]) => sender)))];
}

async function measure(ctx: ScenarioContext, transferCase: TransferCase, base: string): Promise<CaseResult> {
  const bodies = transferCase.pairs.map(([sender, recipient]) => ({
    authorization: `Bearer ${sender.token}`,
    body: JSON.stringify({ toUserId: recipient.userId, amount: 1 }),
  }));
  // Shared by all connections: request n goes to pair n mod pairs, so in-flight requests spread evenly.
  let next = 0;
  const duration = transferSeconds(ctx.quick);
  const window = new MeasureWindow(ctx.target, ctx.pool);
  const result = await autocannon({
    url: `${base}/v1/wallet/transfers`,
    method: 'POST',
    connections: CONNECTIONS,
    duration,
    requests: [
      {
        setupRequest: (request) => {
          const pick = bodies[next % bodies.length];
          next += 1;
          return {
            ...request,
            headers: {
              ...request.headers,
              'content-type': 'application/json',
              authorization: pick?.authorization ?? '',
              // A new key per request: each one is a new transfer, never a replay.
              'idempotency-key': randomUUID(),
            },
            body: pick?.body ?? '{}',
          };
        },
      },
    ],
  });
  const cpu = window.end();
  const ok = result['2xx'];
  const errors: string[] = [];
  if (result.non2xx > 0) errors.push(`${result.non2xx} non-2xx responses`);
  if (result.errors > 0) errors.push(`${result.errors} connection errors, ${result.timeouts} timeouts`);
  ctx.log(
    `${transferCase.caseId}: ${(ok / duration).toFixed(0)} transfers/s, p99 ${result.latency.p99} ms, non-2xx ${result.non2xx}`,
  );
  const answered = ok + result.non2xx;
  return {
    scenario: 'transfer',
    caseId: transferCase.caseId,
    label: transferCase.label,
    level: transferCase.level,
    metrics: {
      transfersPerSec: ok > 0 ? ok / duration : null,
      p50Ms: ok > 0 ? result.latency.p50 : null,
      p99Ms: ok > 0 ? result.latency.p99 : null,
      non2xx: result.non2xx,
      /** Raw counts, for the ledger check after the run. */
      transfers: ok,
      // Sent without an answer: errors, timeouts and those in flight when autocannon stopped.
      unanswered: Math.max(0, result.requests.sent - ok - result.non2xx),
      serverCpuUsPerTransfer: answered > 0 ? cpu.serverCpuUs / answered : null,
      auxCpuUsPerTransfer: answered > 0 ? cpu.auxCpuUs / answered : null,
      serverBusy: cpu.serverBusy,
    },
    loadgen: loadgenCheck(cpu, 0, 0),
    sustained: ok > 0 && result.non2xx === 0 && result.errors === 0,
    errors,
  };
}

export const transferScenario: Scenario = {
  id: 'transfer',
  appliesTo: (target) => target.httpUrl !== undefined,
  run: async (ctx) => {
    const base = (ctx.target.httpUrl ?? '').replace(/\/+$/, '');
    const cases = transferCases(ctx.credentials);
    if (ctx.target.fundWallets === undefined) {
      return cases.map((c) =>
        skippedCase('transfer', c.caseId, c.label, c.level, 'n/a: target cannot fund wallets'),
      );
    }
    // Outside the measurement windows; every run funds again (with its own operation keys).
    await ctx.target.fundWallets(transferSenders(ctx.credentials), TRANSFER_FUNDING);
    const before = await ctx.target.checkLedger?.();
    const out: CaseResult[] = [];
    for (const transferCase of cases) {
      try {
        out.push(await measure(ctx, transferCase, base));
      } catch (error) {
        out.push(failedCase('transfer', transferCase.caseId, transferCase.label, transferCase.level, error));
      }
      await sleep(ctx.quick ? 100 : 500);
    }
    if (ctx.target.checkLedger !== undefined && before !== undefined) {
      const problem = await ledgerProblem(ctx, before.transfers, out).catch(
        (error: unknown) => `the ledger check failed to run: ${errorText(error)}`,
      );
      // A case without numbers: the run names it among the missing numbers and exits 1.
      if (problem !== undefined) {
        out.push(failedCase('transfer', 'transfer@ledger', 'ledger audit after the run', 99, problem));
      }
    }
    return out;
  },
};

/**
 * The correctness check after the measured cases: gigwire's ledger auditor must find nothing, and
 * the journal must hold one new transfer per 201, plus at most one per request left without an
 * answer (autocannon abandons those in flight when its time is up; they may commit anyway), and
 * none for a non-2xx answer. Returns what is wrong, or undefined.
 */
async function ledgerProblem(
  ctx: ScenarioContext,
  transfersBefore: number,
  cases: readonly CaseResult[],
): Promise<string | undefined> {
  const after = await ctx.target.checkLedger?.();
  if (after === undefined) return undefined;
  const ok = cases.reduce((sum, c) => sum + (c.metrics.transfers ?? 0), 0);
  const unanswered = cases.reduce((sum, c) => sum + (c.metrics.unanswered ?? 0), 0);
  const posted = after.transfers - transfersBefore;
  const problems: string[] = [];
  if (after.findings.length > 0) {
    problems.push(
      `ledger audit: ${after.findings.length} finding(s): ${after.findings.slice(0, 5).join('; ')}`,
    );
  }
  const summary = `${posted} transfers posted for ${ok} answers 201 and ${unanswered} requests unanswered`;
  if (posted < ok || posted > ok + unanswered) problems.push(summary);
  ctx.log(`ledger after the run: ${after.findings.length} audit findings, ${summary}`);
  return problems.length > 0 ? problems.join('; ') : undefined;
}
