/**
 * Reconnect jitter (issue 14, issue 15's goal row): R rooms × M receivers, each room with one
 * stable publisher sending numbered messages open-loop; every receiver drops its connection
 * abruptly every 10–20 s for 1–3 s (quick: scaled down) and reconnects the way its library does
 * (bench/load/jitter.ts): gigwire through its SDK (rejoin with sinceSeq, gaps through history),
 * Socket.IO with connection state recovery, raw uWS by joining again (it has no recovery).
 * Figures: delivery (distinct messages received / messages acknowledged × receivers), messages
 * lost, duplicates seen by the application, and the gap-fill time after a reconnect: from the
 * start of the reconnect (the new socket created) to the arrival of the last message missed
 * during the outage, p50/p99/max over every drop that missed something.
 *
 * `jitterkill` is the same run with a server process SIGKILLed halfway through (`target.crash`):
 * gigwire with GATEWAY_PROCESSES=2 loses one of its two copies (the supervisor restarts it; its
 * clients reconnect to the survivor through the shared port and its rooms move there); the peers
 * lose their only process and are started again on the same port, so the recovery state they kept
 * in memory is gone. The connections the kill closed count as drops of their own (`serverDrops`).
 */
import { Histogram } from './histogram.js';
import type { JitterKind, JitterMember, JitterRunResult, JitterTiming } from './jitter-ipc.js';
import {
  type CaseResult,
  failedCase,
  loadgenCheck,
  MeasureWindow,
  type Scenario,
  type ScenarioContext,
  workerOf,
} from './scenario.js';
import { sleep, wallMs } from './stats.js';

export interface JitterShape extends JitterTiming {
  readonly rooms: number;
  /** Receivers per room (each room has one more member: its publisher). */
  readonly receiversPerRoom: number;
}

export function jitterShape(quick: boolean): JitterShape {
  return quick
    ? {
        rooms: 4,
        receiversPerRoom: 20,
        ratePerRoom: 10,
        durationMs: 5_000,
        dropEveryMs: [1_500, 3_000],
        outageMs: [300, 800],
        quietTailMs: 1_000,
        drainMs: 1_000,
        bodyBytes: 100,
      }
    : {
        rooms: 20,
        receiversPerRoom: 50,
        ratePerRoom: 5,
        durationMs: 60_000,
        dropEveryMs: [10_000, 20_000],
        outageMs: [1_000, 3_000],
        quietTailMs: 5_000,
        drainMs: 3_000,
        bodyBytes: 100,
      };
}

/** Credentials the scenario needs (receivers + one publisher per room). */
export function jitterCredentials(quick: boolean): number {
  const shape = jitterShape(quick);
  return shape.rooms * (shape.receiversPerRoom + 1);
}

const START_DELAY_MS = 500;

function label(shape: JitterShape, kill: boolean): string {
  return `${shape.rooms * shape.receiversPerRoom} clients, ${shape.rooms} rooms${kill ? ', server process killed at half time' : ''}`;
}

function kindOf(ctx: ScenarioContext): JitterKind {
  return ctx.target.name === 'socketio' ? 'socketio' : ctx.target.name === 'uws' ? 'uws' : 'gigwire';
}

async function runJitter(ctx: ScenarioContext, kill: boolean): Promise<CaseResult> {
  const scenario = kill ? 'jitterkill' : 'jitter';
  const crash = ctx.target.crash;
  if (kill && crash === undefined) throw new Error(`${ctx.target.name} cannot kill a server process`);
  const shape = jitterShape(ctx.quick);
  const perRoom = shape.receiversPerRoom + 1;
  const needed = shape.rooms * perRoom;
  const credentials = ctx.credentials.slice(0, needed);
  if (credentials.length < needed) throw new Error(`only ${credentials.length} credentials for ${needed}`);
  // Fresh rooms each run (gigwire: real group rooms; peers: names, messages told apart by run step).
  const roomIds = await ctx.target.prepareRooms(credentials, shape.rooms, perRoom);
  const members: JitterMember[] = credentials.map((credential, index) => ({
    index,
    userId: credential.userId,
    token: credential.token,
    ...(credential.connectToken === undefined ? {} : { connectToken: credential.connectToken }),
    room: Math.floor(index / perRoom),
    roomId: roomIds[Math.floor(index / perRoom)] as string,
  }));
  const isPublisher = (member: JitterMember) => member.index % perRoom === 0;
  const workers = ctx.pool.size;
  const setup = await ctx.pool.all('jitterSetup', (w) => ({
    kind: kindOf(ctx),
    url: ctx.target.wsUrl,
    localAddresses: ctx.pool.localAddresses(w),
    publishers: members.filter((m) => isPublisher(m) && workerOf(m.index, workers) === w),
    receivers: members.filter((m) => !isPublisher(m) && workerOf(m.index, workers) === w),
    concurrency: 32,
  }));
  const setupFailed = setup.reduce((sum, r) => sum + r.failed, 0);
  if (setupFailed > 0)
    throw new Error(
      `${setupFailed} of ${needed} connects failed: ${setup.flatMap((r) => r.errors).join('; ')}`,
    );
  ctx.log(`jitter: ${needed} clients connected and joined (${shape.rooms} rooms)`);

  const step = ctx.nextStep();
  const startAt = wallMs() + START_DELAY_MS;
  const { rooms: _rooms, receiversPerRoom: _receivers, ...timing } = shape;
  const running = ctx.pool.all('jitterRun', () => ({ ...timing, step, startAt }));
  await sleep(Math.max(0, startAt - wallMs()));
  const window = new MeasureWindow(ctx.target, ctx.pool);
  await ctx.target.eventLoopLag?.().catch(() => null); // restarts the server's delay histogram
  let crashed: Promise<{ killedPid: number; replacedMs: number | null } | Error> | undefined;
  if (kill && crash !== undefined) {
    await sleep(Math.max(0, startAt + shape.durationMs / 2 - wallMs()));
    crashed = crash().catch((error: unknown) => (error instanceof Error ? error : new Error(String(error))));
  }
  const results: JitterRunResult[] = await running;
  const cpu = window.end();
  // Whether the server held its loop: a gap fill waits for it as much as for a load worker.
  const serverLag = (await ctx.target.eventLoopLag?.().catch(() => null)) ?? null;
  const killed = crashed === undefined ? undefined : await crashed;
  if (killed instanceof Error) throw killed;
  if (killed !== undefined)
    ctx.log(
      `jitterkill: killed pid ${killed.killedPid}; replaced after ${killed.replacedMs?.toFixed(0) ?? '(not within 60 s)'} ms`,
    );

  const acked = new Map<number, number>();
  let sent = 0;
  let sendFailed = 0;
  for (const r of results)
    for (const p of r.publishers) {
      acked.set(p.room, p.acked);
      sent += p.sent;
      sendFailed += p.failed;
    }
  let expected = 0;
  let unique = 0;
  let duplicates = 0;
  for (const r of results)
    for (const room of r.rooms) {
      const roomExpected = room.receivers * (acked.get(room.room) ?? 0);
      expected += roomExpected;
      unique += Math.min(room.unique, roomExpected);
      duplicates += room.duplicates;
    }
  const sum = (pick: (r: JitterRunResult) => number) => results.reduce((total, r) => total + pick(r), 0);
  const fill = new Histogram();
  const reconnect = new Histogram();
  for (const r of results) {
    fill.merge(r.fill);
    reconnect.merge(r.reconnect);
  }
  logBreakdown(ctx, results);
  const gaps = sum((r) => r.gaps);
  const filled = sum((r) => r.filled);
  const drops = sum((r) => r.drops);
  const deliveryRatio = expected > 0 ? unique / expected : 0;
  const loadgen = loadgenCheck(
    cpu,
    sent,
    sum((r) => r.late),
  );
  const metrics = {
    sent,
    sendFailed,
    deliveryRatio,
    lost: expected - unique,
    duplicates,
    drops,
    reconnected: sum((r) => r.reconnected),
    gaps,
    gapsFilledRatio: gaps > 0 ? filled / gaps : null,
    lostInGaps: sum((r) => r.lostInGaps),
    notRecovered: ctx.target.name === 'socketio' ? sum((r) => r.notRecovered) : null,
    serverDrops: sum((r) => r.serverDrops),
    killReplacedMs: killed?.replacedMs ?? null,
    gapFillP50Ms: fill.quantileMs(0.5),
    gapFillP99Ms: fill.quantileMs(0.99),
    gapFillMaxMs: fill.maxMs(),
    reconnectP50Ms: reconnect.quantileMs(0.5),
    reconnectP99Ms: reconnect.quantileMs(0.99),
    workerLoopLagP99Ms: Math.max(...results.map((r) => r.loopLagP99Ms)),
    workerWaitShare: cpu.loadgenMainWaitShare,
    serverBusy: cpu.serverBusy,
  };
  ctx.log(
    `${scenario}: delivered ${(deliveryRatio * 100).toFixed(2)}% (lost ${expected - unique}, ${duplicates} duplicates), ` +
      `${drops} drops, ${filled}/${gaps} gaps filled, fill p50 ${metrics.gapFillP50Ms?.toFixed(1) ?? '-'} ms ` +
      `p99 ${metrics.gapFillP99Ms?.toFixed(1) ?? '-'} ms, reconnected p50 ${metrics.reconnectP50Ms?.toFixed(1) ?? '-'} ms, worker loop lag p99 ${metrics.workerLoopLagP99Ms.toFixed(0)} ms (a worker waited for the load core ${(metrics.workerWaitShare * 100).toFixed(0)}% of the run)${serverLag === null ? '' : `, server loop lag p99 ${serverLag.p99Ms.toFixed(1)} / max ${serverLag.maxMs.toFixed(1)} ms`}, server ${(cpu.serverBusy * 100).toFixed(0)}%, load ${(cpu.loadgenBusy * 100).toFixed(0)}%`,
  );
  return {
    scenario,
    caseId: `${scenario}@${shape.rooms * shape.receiversPerRoom}`,
    label: label(shape, kill),
    level: shape.rooms * shape.receiversPerRoom,
    metrics,
    loadgen,
    sustained: sendFailed === 0 && !loadgen.saturated,
    errors: [...new Set(results.flatMap((r) => r.errors))],
  };
}

/** One log line: p50/p99 of each step of the filled gaps' time (gigwire's reconnect phases). */
function logBreakdown(ctx: ScenarioContext, results: readonly JitterRunResult[]): void {
  const steps = new Map<string, Histogram>();
  let afterJoinOk = 0;
  for (const r of results) {
    afterJoinOk += r.breakdown.afterJoinOk;
    for (const [name, data] of Object.entries(r.breakdown.steps)) {
      let histogram = steps.get(name);
      if (histogram === undefined) {
        histogram = new Histogram();
        steps.set(name, histogram);
      }
      histogram.merge(data);
    }
  }
  const text = [...steps]
    .filter(([, h]) => h.quantileMs(0.5) !== null)
    .map(([name, h]) => `${name} ${h.quantileMs(0.5)?.toFixed(1)}/${h.quantileMs(0.99)?.toFixed(1)}`)
    .join(', ');
  if (text !== '')
    ctx.log(`jitter fill breakdown p50/p99 ms: ${text}; last missed after the rejoin reply: ${afterJoinOk}`);
}

function jitterVariant(kill: boolean): Scenario {
  const id = kill ? 'jitterkill' : 'jitter';
  return {
    id,
    appliesTo: (target) => !kill || target.crash !== undefined,
    run: async (ctx) => {
      const shape = jitterShape(ctx.quick);
      try {
        return [await runJitter(ctx, kill)];
      } catch (error) {
        const level = shape.rooms * shape.receiversPerRoom;
        return [failedCase(id, `${id}@${level}`, label(shape, kill), level, error)];
      } finally {
        await ctx.pool.all('close', () => ({})).catch(() => []);
        await sleep(ctx.quick ? 300 : 2_000);
      }
    },
  };
}

export const jitterScenario: Scenario = jitterVariant(false);
/** The jitter run with one server process SIGKILLed halfway (gigwire2, uws, socketio). */
export const jitterKillScenario: Scenario = jitterVariant(true);
