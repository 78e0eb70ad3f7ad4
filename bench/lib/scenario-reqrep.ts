/**
 * Request/reply scenario: C connections take turns sending `ping` with an id (Socket.IO: `ping`
 * with an ack) open-loop at stepped fixed aggregate rates. Per step: replies/s, p50/p99/max from
 * the scheduled send time to the reply, and server CPU µs per request.
 */
import { Histogram } from './histogram.js';
import {
  type CaseResult,
  closeClients,
  connectClients,
  failedCase,
  loadgenCheck,
  MeasureWindow,
  type Scenario,
  type ScenarioContext,
  stepThroughRates,
  workerOf,
} from './scenario.js';
import { sleep, wallMs } from './stats.js';

export interface ReqRepShape {
  readonly connections: number;
  readonly rates: readonly number[];
  readonly stepMs: number;
  readonly warmupMs: number;
}

export function reqrepShape(quick: boolean): ReqRepShape {
  return quick
    ? { connections: 100, rates: [500, 1_000], stepMs: 1_500, warmupMs: 500 }
    : { connections: 1_000, rates: [2_000, 5_000, 10_000, 20_000], stepMs: 5_000, warmupMs: 1_500 };
}

const START_DELAY_MS = 300;

function label(rate: number): string {
  return `${rate} req/s`;
}

async function runStep(
  ctx: ScenarioContext,
  indexes: readonly number[][],
  total: number,
  rate: number,
  durationMs: number,
) {
  const startAt = wallMs() + START_DELAY_MS;
  const pending = ctx.pool.all('reqrep', (w) => ({
    startAt,
    durationMs,
    rate: (rate * (indexes[w]?.length ?? 0)) / total,
    indexes: indexes[w] ?? [],
  }));
  await sleep(Math.max(0, startAt - wallMs()));
  const window = new MeasureWindow(ctx.target, ctx.pool);
  const results = await pending;
  const cpu = window.end();
  const latency = new Histogram();
  for (const r of results) latency.merge(r.latency);
  return { results, latency, cpu };
}

async function runReqRep(ctx: ScenarioContext): Promise<CaseResult[]> {
  const shape = reqrepShape(ctx.quick);
  const connect = await connectClients(ctx, shape.connections, 64);
  if (connect.failed > 0) throw new Error(`${connect.failed} connects failed: ${connect.errors.join('; ')}`);
  const indexes: number[][] = Array.from({ length: ctx.pool.size }, () => []);
  for (let index = 0; index < shape.connections; index += 1)
    indexes[workerOf(index, ctx.pool.size)]?.push(index);

  await runStep(ctx, indexes, shape.connections, shape.rates[0] ?? 100, shape.warmupMs);

  return stepThroughRates({
    scenario: 'reqrep',
    rates: shape.rates,
    unit: 'req/s',
    label,
    measure: async (rate, caseId) => {
      const { results, latency, cpu } = await runStep(ctx, indexes, shape.connections, rate, shape.stepMs);
      const sent = results.reduce((sum, r) => sum + r.sent, 0);
      const late = results.reduce((sum, r) => sum + r.late, 0);
      const replied = results.reduce((sum, r) => sum + r.replied, 0);
      const failed = results.reduce((sum, r) => sum + r.failed, 0);
      const p99 = latency.quantileMs(0.99);
      const loadgen = loadgenCheck(cpu, sent, late);
      const result: CaseResult = {
        scenario: 'reqrep',
        caseId,
        label: label(rate),
        level: rate,
        metrics: {
          rate,
          sent,
          failed,
          repliesPerSec: replied / (shape.stepMs / 1000),
          p50Ms: latency.quantileMs(0.5),
          p99Ms: p99,
          maxMs: latency.maxMs(),
          serverCpuUsPerRequest: replied > 0 ? cpu.serverCpuUs / replied : null,
          serverBusy: cpu.serverBusy,
        },
        loadgen,
        sustained: failed === 0 && p99 !== null && p99 <= 1_000 && !loadgen.saturated,
        errors: [...new Set(results.flatMap((r) => r.errors))],
      };
      ctx.log(
        `${caseId}: ${(replied / (shape.stepMs / 1000)).toFixed(0)} replies/s, p99 ${p99?.toFixed(2) ?? '-'} ms, ` +
          `server ${(cpu.serverBusy * 100).toFixed(0)}%, load ${(cpu.loadgenBusy * 100).toFixed(0)}%`,
      );
      return { result, overdriven: failed > sent * 0.01 || p99 === null || p99 > 2_000 };
    },
  });
}

export const reqrepScenario: Scenario = {
  id: 'reqrep',
  appliesTo: () => true,
  run: async (ctx) => {
    try {
      return await runReqRep(ctx);
    } catch (error) {
      return reqrepShape(ctx.quick).rates.map((rate) =>
        failedCase('reqrep', `reqrep@${rate}`, label(rate), rate, error),
      );
    } finally {
      await closeClients(ctx).catch(() => 0);
      await sleep(ctx.quick ? 200 : 1_000);
    }
  },
};
