/**
 * Fan-out scenario: R rooms × M members, every member connected and joined; the first P members of
 * each room publish open-loop at stepped fixed aggregate rates (gigwire: durable `room.send`).
 * Per step: delivered msgs/s, publish→receive p50/p99/max (from the scheduled send time), server
 * CPU µs per delivery (window = the step plus its drain) and, separately, Postgres + Redis CPU.
 * Steps stop rising once one overdrives the target.
 */
import { Histogram } from './histogram.js';
import type { PublishResult } from './ipc.js';
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

export interface FanoutShape {
  readonly rooms: number;
  readonly members: number;
  readonly publishersPerRoom: number;
  /** Aggregate published messages per second, one step each. */
  readonly rates: readonly number[];
  readonly stepMs: number;
  readonly warmupMs: number;
  readonly bodyBytes: number;
}

/** BENCH_FANOUT_RATES=250,500 runs only those steps (profiling one rate); unset: the steps below. */
const ratesOverride = (): number[] | undefined => {
  // biome-ignore lint/style/noProcessEnv: a profiling knob of the bench, not gigwire's configuration
  const text = process.env.BENCH_FANOUT_RATES;
  if (text === undefined || text === '') return undefined;
  const rates = text.split(',').map((r) => Number.parseInt(r, 10));
  if (rates.some((r) => !(r > 0))) throw new Error(`BENCH_FANOUT_RATES: not a list of rates: ${text}`);
  return rates;
};

/**
 * BENCH_FANOUT_SPREAD=1 spreads each room's messages evenly over time (`spreadOverRooms`) instead
 * of the default order, where each room gets its ten publishers' messages in one short burst per
 * round (bench/README.md, "Fan-out send order").
 */
const spreadSends = (): boolean => {
  // biome-ignore lint/style/noProcessEnv: a workload knob of the bench, not gigwire's configuration
  return process.env.BENCH_FANOUT_SPREAD === '1';
};

export function fanoutShape(quick: boolean): FanoutShape {
  const shape = defaultFanoutShape(quick);
  const rates = ratesOverride();
  return rates === undefined ? shape : { ...shape, rates };
}

function defaultFanoutShape(quick: boolean): FanoutShape {
  return quick
    ? {
        rooms: 10,
        members: 10,
        publishersPerRoom: 2,
        rates: [100, 200],
        stepMs: 1_500,
        warmupMs: 500,
        bodyBytes: 100,
      }
    : {
        rooms: 100,
        members: 100,
        publishersPerRoom: 10,
        rates: [250, 500, 1_000, 2_000, 4_000, 8_000],
        stepMs: 6_000,
        warmupMs: 1_500,
        bodyBytes: 100,
      };
}

const START_DELAY_MS = 300;
const DRAIN_MS = 500;

export interface Sender {
  readonly index: number;
  readonly roomId: string;
}

/**
 * Orders one worker's senders so its consecutive sends go to different rooms (the first publisher
 * of every room, then the second of every room, …), rotated by the worker's share so the workers
 * are in different rooms at any moment. Each room then gets its rate / rooms messages spread evenly
 * over time, whatever the number of workers. (In the default index order, worker w's round robin
 * sends two or three messages in a row to one room and all four workers start at the same room,
 * so every room gets its ten publishers' messages in one ~20 ms burst per round.)
 */
export function spreadOverRooms(list: readonly Sender[], worker: number, workers: number): Sender[] {
  const byRoom = new Map<string, Sender[]>();
  for (const sender of list) {
    const same = byRoom.get(sender.roomId);
    if (same === undefined) byRoom.set(sender.roomId, [sender]);
    else same.push(sender);
  }
  const rounds = Math.max(0, ...[...byRoom.values()].map((same) => same.length));
  const ordered: Sender[] = [];
  for (let round = 0; round < rounds; round += 1) {
    for (const same of byRoom.values()) {
      const sender = same[round];
      if (sender !== undefined) ordered.push(sender);
    }
  }
  // Rotated within the first round (one sender per room): worker w starts w/workers of the way round.
  const shift = Math.floor((worker * byRoom.size) / Math.max(1, workers));
  return [...ordered.slice(shift), ...ordered.slice(0, shift)];
}

function label(rate: number): string {
  return `${rate} msg/s`;
}

async function runStep(
  ctx: ScenarioContext,
  shape: FanoutShape,
  senders: readonly Sender[][],
  rate: number,
  durationMs: number,
): Promise<{
  publish: PublishResult[];
  received: number;
  latency: Histogram;
  cpu: ReturnType<MeasureWindow['end']>;
  /** The server's event-loop delay over the publishing (null: the target does not expose it). */
  loopLag: { p99Ms: number; maxMs: number; commitP99Ms: number | null; sendP99Ms: number | null } | null;
}> {
  const step = ctx.nextStep();
  const totalSenders = senders.reduce((sum, list) => sum + list.length, 0);
  const startAt = wallMs() + START_DELAY_MS;
  const publishing = ctx.pool.all('publish', (w) => ({
    step,
    startAt,
    durationMs,
    rate: (rate * (senders[w]?.length ?? 0)) / totalSenders,
    senders: senders[w] ?? [],
    bodyBytes: shape.bodyBytes,
  }));
  await sleep(Math.max(0, startAt - wallMs()));
  await ctx.target.eventLoopLag?.(); // restarts the server's delay histogram
  const window = new MeasureWindow(ctx.target, ctx.pool);
  const publish = await publishing;
  const loopLag = (await ctx.target.eventLoopLag?.()) ?? null;
  await sleep(DRAIN_MS);
  const collected = await ctx.pool.all('collect', () => ({ step }));
  const cpu = window.end();
  const latency = new Histogram();
  for (const c of collected) latency.merge(c.latency);
  return { publish, received: collected.reduce((sum, c) => sum + c.received, 0), latency, cpu, loopLag };
}

async function runFanout(ctx: ScenarioContext): Promise<CaseResult[]> {
  const shape = fanoutShape(ctx.quick);
  const clients = shape.rooms * shape.members;
  if (ctx.rooms.length < shape.rooms) throw new Error(`only ${ctx.rooms.length} rooms prepared`);
  const connect = await connectClients(ctx, clients, 64);
  if (connect.failed > 0)
    throw new Error(`${connect.failed} of ${clients} connects failed: ${connect.errors.join('; ')}`);
  const roomOf = (index: number) => ctx.rooms[Math.floor(index / shape.members)] as string;
  const joins = Array.from({ length: clients }, (_, index) => ({ index, roomId: roomOf(index) }));
  const joined = await ctx.pool.all('join', (w) => ({
    joins: joins.filter(({ index }) => workerOf(index, ctx.pool.size) === w),
    concurrency: 64,
  }));
  const joinFailed = joined.reduce((sum, r) => sum + r.failed, 0);
  if (joinFailed > 0)
    throw new Error(`${joinFailed} joins failed: ${joined.flatMap((r) => r.errors).join('; ')}`);
  const reopened = joined.reduce((sum, r) => sum + r.reopened, 0);
  ctx.log(
    `fanout: ${clients} clients connected and joined` +
      (reopened > 0 ? ` (${reopened} dropped by the server after hello and reopened)` : ''),
  );

  const byWorker: Sender[][] = Array.from({ length: ctx.pool.size }, () => []);
  for (let index = 0; index < clients; index += 1) {
    if (index % shape.members < shape.publishersPerRoom) {
      byWorker[workerOf(index, ctx.pool.size)]?.push({ index, roomId: roomOf(index) });
    }
  }
  const senders = spreadSends()
    ? byWorker.map((list, w) => spreadOverRooms(list, w, ctx.pool.size))
    : byWorker;

  const firstRate = shape.rates[0] ?? 100;
  await runStep(ctx, shape, senders, firstRate, shape.warmupMs);

  return stepThroughRates({
    scenario: 'fanout',
    rates: shape.rates,
    unit: 'msg/s',
    label,
    measure: async (rate, caseId) => {
      const { publish, received, latency, cpu, loopLag } = await runStep(
        ctx,
        shape,
        senders,
        rate,
        shape.stepMs,
      );
      const sent = publish.reduce((sum, r) => sum + r.sent, 0);
      const late = publish.reduce((sum, r) => sum + r.late, 0);
      const failed = publish.reduce((sum, r) => sum + r.failed, 0);
      const ack = new Histogram();
      for (const r of publish) ack.merge(r.ack);
      const expected = sent * shape.members;
      const deliveryRatio = expected > 0 ? received / expected : 0;
      const p99 = latency.quantileMs(0.99);
      const hasAux = ctx.target.auxPids().length > 0;
      const perDelivery = (us: number) => (received > 0 ? us / received : null);
      const loadgen = loadgenCheck(cpu, sent, late);
      const sustained =
        deliveryRatio >= 0.99 && p99 !== null && p99 <= 1_000 && failed === 0 && !loadgen.saturated;
      const result: CaseResult = {
        scenario: 'fanout',
        caseId,
        label: label(rate),
        level: rate,
        metrics: {
          rate,
          sent,
          sendFailed: failed,
          deliveredPerSec: received / (shape.stepMs / 1000),
          deliveryRatio,
          p50Ms: latency.quantileMs(0.5),
          p99Ms: p99,
          maxMs: latency.maxMs(),
          ackP99Ms: ack.quantileMs(0.99),
          serverCpuUsPerDelivery: perDelivery(cpu.serverCpuUs),
          auxCpuUsPerDelivery: hasAux ? perDelivery(cpu.auxCpuUs) : null,
          totalCpuUsPerDelivery: perDelivery(cpu.serverCpuUs + cpu.auxCpuUs),
          serverBusy: cpu.serverBusy,
          loopLagP99Ms: loopLag?.p99Ms ?? null,
          loopLagMaxMs: loopLag?.maxMs ?? null,
          commitP99Ms: loopLag?.commitP99Ms ?? null,
          serverSendP99Ms: loopLag?.sendP99Ms ?? null,
          mainWaitShare: cpu.serverMainWaitShare,
          helperBusy: cpu.serverHelperBusy,
        },
        loadgen,
        sustained,
        errors: [...new Set(publish.flatMap((r) => r.errors))],
      };
      ctx.log(
        `${caseId}: delivered ${(received / (shape.stepMs / 1000)).toFixed(0)}/s (${(deliveryRatio * 100).toFixed(1)}%), ` +
          `p99 ${p99?.toFixed(1) ?? '-'} ms, server ${(cpu.serverBusy * 100).toFixed(0)}%, load ${(cpu.loadgenBusy * 100).toFixed(0)}%` +
          (loopLag === null
            ? ''
            : `, server loop lag p99 ${loopLag.p99Ms.toFixed(1)} / max ${loopLag.maxMs.toFixed(1)} ms, group commit p99 ≤ ${loopLag.commitP99Ms ?? '-'} ms, send → ack in the room p99 ≤ ${loopLag.sendP99Ms ?? '-'} ms`) +
          `, main thread waited for its core ${(cpu.serverMainWaitShare * 100).toFixed(0)}% of the time, other server threads ${(cpu.serverHelperBusy * 100).toFixed(0)}% of a core`,
      );
      return {
        result,
        overdriven: deliveryRatio < 0.9 || p99 === null || p99 > 2_000 || failed > sent * 0.01,
      };
    },
  });
}

export const fanoutScenario: Scenario = {
  id: 'fanout',
  appliesTo: () => true,
  run: async (ctx) => {
    try {
      return await runFanout(ctx);
    } catch (error) {
      return fanoutShape(ctx.quick).rates.map((rate) =>
        failedCase('fanout', `fanout@${rate}`, label(rate), rate, error),
      );
    } finally {
      await closeClients(ctx).catch(() => 0);
      await sleep(ctx.quick ? 300 : 2_000);
    }
  },
};
