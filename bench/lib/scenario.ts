/**
 * What every scenario shares: the context it runs in (one target, the worker pool, sizes for quick
 * or full mode), the shape of its output (one CaseResult per measured case, e.g. one rate step),
 * the measurement window (server, Postgres/Redis and load-generator CPU over the same wall time)
 * and the saturation verdict on the load generator.
 */
import type { WorkerPool } from '../load/pool.js';
import type { ClientSpec, ConnectResult } from './ipc.js';
import { CpuMeter, type MachineCpu, MainThreadMeter, machineCpu } from './proc.js';
import { roundRobin } from './stats.js';
import type { ClientCredential, TargetServer } from './target.js';

export type ScenarioId = 'idle' | 'fanout' | 'reqrep' | 'rest' | 'transfer' | 'jitter' | 'jitterkill';
export const SCENARIO_IDS: readonly ScenarioId[] = [
  'idle',
  'fanout',
  'reqrep',
  'rest',
  'transfer',
  'jitter',
  'jitterkill',
];

export type Metrics = Record<string, number | null>;

/** Whether the load generator, not the server, may have been the limit. */
export interface LoadgenCheck {
  /** Load-core CPU used by workers + orchestrator over the window, fraction of one core. */
  readonly coreBusy: number;
  /** Fraction of scheduled sends fired more than LATE_MS behind schedule (0 when nothing is scheduled). */
  readonly lateFraction: number;
  readonly saturated: boolean;
  readonly reasons: readonly string[];
  /**
   * CPU used by processes that are none of ours (not the server, its Postgres/Redis, the load
   * generator) and CPU stolen by the hypervisor, in cores: a busy shared box makes figures noisy.
   */
  readonly otherBusy: number;
  readonly stealBusy: number;
  readonly noisy: boolean;
}

export interface CaseResult {
  readonly scenario: ScenarioId;
  /** Stable id of the case across targets and runs, e.g. `fanout@2000`. */
  readonly caseId: string;
  readonly label: string;
  /** The numeric parameter of the case (connections, msgs/s, …), for ordering and reference picking. */
  readonly level: number;
  readonly metrics: Metrics;
  readonly loadgen: LoadgenCheck;
  /** The step did not hold (too few deliveries / replies, or p99 over its bound). */
  readonly sustained: boolean;
  /** Why the case was not measured (e.g. an earlier step already overdrove the target). */
  readonly skipped?: string;
  readonly errors: readonly string[];
}

export interface ScenarioContext {
  readonly target: TargetServer;
  readonly pool: WorkerPool;
  readonly quick: boolean;
  /** Credentials for the largest scenario, fetched once per target. */
  readonly credentials: readonly ClientCredential[];
  /** Rooms prepared once per target over the first rooms × members credentials. */
  readonly rooms: readonly string[];
  /** A step number unique over the whole bench (stamped into message bodies). */
  readonly nextStep: () => number;
  readonly log: (line: string) => void;
}

export interface Scenario {
  readonly id: ScenarioId;
  readonly appliesTo: (target: TargetServer) => boolean;
  readonly run: (ctx: ScenarioContext) => Promise<CaseResult[]>;
}

const BUSY_LIMIT = 0.9;
const LATE_LIMIT = 0.05;
/** Other processes or steal above this share of one core mark a figure noisy. */
const NOISE_LIMIT = 0.05;

export interface WindowFigures {
  readonly wallMs: number;
  readonly serverCpuUs: number;
  readonly auxCpuUs: number;
  /** Server CPU over the window, fraction of one core. */
  readonly serverBusy: number;
  readonly loadgenBusy: number;
  /** CPU of every other process on the machine, and steal, in cores. */
  readonly otherBusy: number;
  readonly stealBusy: number;
  /** Share of the window the server's main thread waited for its core (the process that waited most). */
  readonly serverMainWaitShare: number;
  /** CPU of the server's other threads (GC helpers, libuv's pool), in cores. */
  readonly serverHelperBusy: number;
  /** Share of the window the main thread of the load worker that waited most waited for the load core. */
  readonly loadgenMainWaitShare: number;
}

/** CPU of the server, of its supporting processes and of the load core, over one wall-clock window. */
export class MeasureWindow {
  readonly #server: CpuMeter;
  readonly #serverThreads: MainThreadMeter;
  readonly #aux: CpuMeter;
  readonly #loadgen: CpuMeter;
  readonly #loadgenThreads: MainThreadMeter;
  readonly #machine: MachineCpu;

  constructor(target: TargetServer, pool: WorkerPool) {
    this.#machine = machineCpu();
    this.#server = new CpuMeter(() => target.serverPids?.() ?? [target.pid]);
    this.#serverThreads = new MainThreadMeter(() => target.serverPids?.() ?? [target.pid]);
    this.#aux = new CpuMeter(() => target.auxPids());
    this.#loadgen = new CpuMeter(() => [...pool.pids, process.pid]);
    this.#loadgenThreads = new MainThreadMeter(() => pool.pids);
  }

  end(): WindowFigures {
    const server = this.#server.read();
    const threads = this.#serverThreads.read();
    const aux = this.#aux.read();
    const loadgen = this.#loadgen.read();
    const machine = machineCpu();
    const wallUs = server.wallMs * 1000;
    const ours = server.cpuUs + aux.cpuUs + loadgen.cpuUs;
    return {
      wallMs: server.wallMs,
      serverCpuUs: server.cpuUs,
      auxCpuUs: aux.cpuUs,
      serverBusy: server.cpuUs / wallUs,
      loadgenBusy: loadgen.cpuUs / (loadgen.wallMs * 1000),
      // Both sides are tick-granular, so small negative differences are rounding: clamp at zero.
      otherBusy: Math.max(0, machine.processUs - this.#machine.processUs - ours) / wallUs,
      stealBusy: Math.max(0, machine.stealUs - this.#machine.stealUs) / wallUs,
      serverMainWaitShare: threads.mainWaitShare,
      serverHelperBusy: threads.helperBusy,
      loadgenMainWaitShare: this.#loadgenThreads.read().mainWaitShare,
    };
  }
}

export function loadgenCheck(
  window: Pick<WindowFigures, 'loadgenBusy' | 'otherBusy' | 'stealBusy'>,
  sent: number,
  late: number,
): LoadgenCheck {
  const coreBusy = window.loadgenBusy;
  const lateFraction = sent > 0 ? late / sent : 0;
  const reasons: string[] = [];
  if (coreBusy >= BUSY_LIMIT) reasons.push(`load core ${(coreBusy * 100).toFixed(0)}% busy`);
  if (lateFraction > LATE_LIMIT) reasons.push(`${(lateFraction * 100).toFixed(1)}% of sends late`);
  return {
    coreBusy,
    lateFraction,
    saturated: reasons.length > 0,
    reasons,
    otherBusy: window.otherBusy,
    stealBusy: window.stealBusy,
    noisy: window.otherBusy > NOISE_LIMIT || window.stealBusy > NOISE_LIMIT,
  };
}

const NO_LOADGEN: LoadgenCheck = {
  coreBusy: 0,
  lateFraction: 0,
  saturated: false,
  reasons: [],
  otherBusy: 0,
  stealBusy: 0,
  noisy: false,
};

/** Which worker holds client i (the same rule for connect, join and sending). */
export function workerOf(index: number, workers: number): number {
  return index % workers;
}

export interface ConnectSummary {
  readonly connected: number;
  readonly failed: number;
  readonly errors: string[];
  /** From the first attempt in any worker to the last connection in any worker. */
  readonly wallMs: number;
}

/**
 * Connects clients 0..count-1 of the context's credentials, spread round-robin over the workers.
 * gigwire clients open their sockets with their connect tokens (what the SDK does) unless
 * `credential` is 'access' (the access JWT, verified with Ed25519).
 */
export async function connectClients(
  ctx: ScenarioContext,
  count: number,
  concurrency: number,
  credential: 'connect' | 'access' = 'connect',
  credentials: readonly ClientCredential[] = ctx.credentials,
): Promise<ConnectSummary> {
  const specs: ClientSpec[] = credentials
    .slice(0, count)
    .map((c, index) =>
      credential === 'connect' && c.connectToken !== undefined
        ? { index, userId: c.userId, token: c.token, connectToken: c.connectToken }
        : { index, userId: c.userId, token: c.token },
    );
  if (specs.length < count) throw new Error(`only ${specs.length} credentials for ${count} clients`);
  const perWorker = roundRobin(specs, ctx.pool.size);
  const results: ConnectResult[] = await ctx.pool.all('connect', (w) => ({
    kind: ctx.target.name === 'socketio' ? 'socketio' : 'ws',
    url: ctx.target.wsUrl,
    clients: perWorker[w] ?? [],
    localAddresses: ctx.pool.localAddresses(w),
    concurrency,
  }));
  const active = results.filter((r) => r.connected + r.failed > 0);
  const startedAt = Math.min(...active.map((r) => r.startedAt));
  const finishedAt = Math.max(...active.map((r) => r.finishedAt));
  return {
    connected: results.reduce((sum, r) => sum + r.connected, 0),
    failed: results.reduce((sum, r) => sum + r.failed, 0),
    errors: [...new Set(results.flatMap((r) => r.errors))],
    wallMs: active.length === 0 ? 0 : finishedAt - startedAt,
  };
}

/** Closes every client in every worker; returns how many had dropped on their own. */
export async function closeClients(ctx: ScenarioContext): Promise<number> {
  const results = await ctx.pool.all('close', () => ({}));
  return results.reduce((sum, r) => sum + r.dropped, 0);
}

export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** A case that produced no numbers (the scenario failed before measuring it). */
export function failedCase(
  scenario: ScenarioId,
  caseId: string,
  label: string,
  level: number,
  error: unknown,
): CaseResult {
  return {
    scenario,
    caseId,
    label,
    level,
    metrics: {},
    loadgen: NO_LOADGEN,
    sustained: false,
    errors: [errorText(error)],
  };
}

export function skippedCase(
  scenario: ScenarioId,
  caseId: string,
  label: string,
  level: number,
  why: string,
): CaseResult {
  return { ...failedCase(scenario, caseId, label, level, why), errors: [], skipped: why };
}

/**
 * Measures a stepped scenario rate by rate, lowest first. Once a step overdrives the target
 * (`measure` says so), the higher steps are reported as skipped rather than run.
 */
export async function stepThroughRates(options: {
  readonly scenario: ScenarioId;
  readonly rates: readonly number[];
  /** e.g. "msg/s", for the skipped steps' reason. */
  readonly unit: string;
  readonly label: (rate: number) => string;
  readonly measure: (rate: number, caseId: string) => Promise<{ result: CaseResult; overdriven: boolean }>;
}): Promise<CaseResult[]> {
  const cases: CaseResult[] = [];
  let overdrivenAt: number | undefined;
  for (const rate of options.rates) {
    const caseId = `${options.scenario}@${rate}`;
    if (overdrivenAt !== undefined) {
      const why = `${overdrivenAt} ${options.unit} already overdrove it`;
      cases.push(skippedCase(options.scenario, caseId, options.label(rate), rate, why));
      continue;
    }
    const { result, overdriven } = await options.measure(rate, caseId);
    cases.push(result);
    if (overdriven) overdrivenAt = rate;
  }
  return cases;
}
