/**
 * Turns the raw per-run cases into the published figures: the median of every metric over runs,
 * ratios to raw uWS and to Socket.IO taken pair by pair within each run (then the median of those
 * ratios), the reference step of the stepped scenarios, the goals of the issue with met/missed,
 * and the list of cases that produced no numbers.
 */
import type { CaseResult, LoadgenCheck, ScenarioId } from './scenario.js';
import { median, minMax, ratio } from './stats.js';
import type { TargetName } from './target.js';

export interface CaseRecord {
  readonly run: number;
  readonly target: TargetName;
  readonly result: CaseResult;
}

export interface SummaryRow {
  readonly scenario: ScenarioId;
  readonly caseId: string;
  readonly label: string;
  readonly level: number;
  readonly target: TargetName;
  /** Median over the runs that measured the case. */
  readonly metrics: Record<string, number | null>;
  /** [min, max] over runs, per metric. */
  readonly spread: Record<string, [number, number] | null>;
  /** Median over runs of the same-run ratio, keyed `<metric>/<base target>`. */
  readonly ratios: Record<string, number | null>;
  readonly measuredRuns: number;
  readonly sustainedRuns: number;
  readonly saturatedRuns: number;
  readonly loadgenBusy: number | null;
  readonly saturationReasons: readonly string[];
  /** Runs during which other processes (or the hypervisor) took a noticeable share of the CPU. */
  readonly noisyRuns: number;
  /** Median CPU of other processes + steal over the window, in cores. */
  readonly otherBusy: number | null;
  /** Set when no run measured the case. */
  readonly skipped?: string;
  readonly errors: readonly string[];
}

/** Metrics that must have a number in every measured case (the CI check). */
export const PRIMARY_METRICS: Readonly<Record<ScenarioId, readonly string[]>> = {
  idle: ['connectPerSec', 'serverCpuUsPerConnect', 'serverRssKbPerConn'],
  fanout: ['deliveredPerSec', 'p99Ms', 'serverCpuUsPerDelivery'],
  reqrep: ['p99Ms', 'serverCpuUsPerRequest'],
  rest: ['okPerSec', 'p99Ms'],
  transfer: ['transfersPerSec', 'p99Ms', 'serverCpuUsPerTransfer'],
  // Gap-fill times are not primary: raw uWS never fills a gap (it has no recovery).
  jitter: ['deliveryRatio', 'duplicates', 'gapsFilledRatio'],
  jitterkill: ['deliveryRatio', 'duplicates', 'gapsFilledRatio'],
};

interface RatioSpec {
  readonly metric: string;
  readonly base: TargetName;
  readonly baseMetric: string;
  /** Only for this target (absent: every target but the base). */
  readonly only?: TargetName;
}

const RATIO_SPECS: Readonly<Record<ScenarioId, readonly RatioSpec[]>> = {
  idle: [
    { metric: 'serverCpuUsPerConnect', base: 'uws', baseMetric: 'serverCpuUsPerConnect' },
    { metric: 'serverCpuUsPerConnect', base: 'socketio', baseMetric: 'serverCpuUsPerConnect' },
    { metric: 'serverRssKbPerConn', base: 'uws', baseMetric: 'serverRssKbPerConn' },
    { metric: 'serverRssKbPerConn', base: 'socketio', baseMetric: 'serverRssKbPerConn' },
  ],
  fanout: [
    { metric: 'serverCpuUsPerDelivery', base: 'uws', baseMetric: 'serverCpuUsPerDelivery' },
    { metric: 'serverCpuUsPerDelivery', base: 'socketio', baseMetric: 'serverCpuUsPerDelivery' },
    { metric: 'totalCpuUsPerDelivery', base: 'uws', baseMetric: 'serverCpuUsPerDelivery' },
    // Two gateway processes against one, step by step.
    {
      metric: 'serverCpuUsPerDelivery',
      base: 'gigwire',
      baseMetric: 'serverCpuUsPerDelivery',
      only: 'gigwire2',
    },
    { metric: 'p99Ms', base: 'gigwire', baseMetric: 'p99Ms', only: 'gigwire2' },
  ],
  reqrep: [
    { metric: 'serverCpuUsPerRequest', base: 'uws', baseMetric: 'serverCpuUsPerRequest' },
    { metric: 'serverCpuUsPerRequest', base: 'socketio', baseMetric: 'serverCpuUsPerRequest' },
  ],
  rest: [],
  transfer: [],
  jitter: [],
  jitterkill: [],
};

export function ratioKey(metric: string, base: TargetName): string {
  return `${metric}/${base}`;
}

function key(scenario: ScenarioId, caseId: string, target: TargetName): string {
  return `${scenario}|${caseId}|${target}`;
}

export function summarize(records: readonly CaseRecord[], runs: number): SummaryRow[] {
  const groups = new Map<string, CaseRecord[]>();
  for (const record of records) {
    const k = key(record.result.scenario, record.result.caseId, record.target);
    groups.set(k, [...(groups.get(k) ?? []), record]);
  }
  const byRun = new Map<string, CaseResult>();
  for (const record of records) {
    byRun.set(
      `${record.run}|${key(record.result.scenario, record.result.caseId, record.target)}`,
      record.result,
    );
  }

  const rows: SummaryRow[] = [];
  for (const group of groups.values()) {
    const first = group[0];
    if (first === undefined) continue;
    const { scenario, caseId, label, level } = first.result;
    const measured = group.filter((r) => r.result.skipped === undefined);
    const metricNames = [...new Set(measured.flatMap((r) => Object.keys(r.result.metrics)))];
    const metrics: Record<string, number | null> = {};
    const spread: Record<string, [number, number] | null> = {};
    for (const name of metricNames) {
      const values = measured.map((r) => r.result.metrics[name]);
      metrics[name] = median(values);
      spread[name] = minMax(values);
    }
    const ratios: Record<string, number | null> = {};
    for (const spec of RATIO_SPECS[scenario]) {
      if (spec.base === first.target || (spec.only !== undefined && spec.only !== first.target)) continue;
      const perRun: Array<number | null> = [];
      for (let run = 1; run <= runs; run += 1) {
        const mine = byRun.get(`${run}|${key(scenario, caseId, first.target)}`);
        const base = byRun.get(`${run}|${key(scenario, caseId, spec.base)}`);
        perRun.push(ratio(mine?.metrics[spec.metric], base?.metrics[spec.baseMetric]));
      }
      ratios[ratioKey(spec.metric, spec.base)] = median(perRun);
    }
    const loadgens: LoadgenCheck[] = measured.map((r) => r.result.loadgen);
    rows.push({
      scenario,
      caseId,
      label,
      level,
      target: first.target,
      metrics,
      spread,
      ratios,
      measuredRuns: measured.length,
      sustainedRuns: measured.filter((r) => r.result.sustained).length,
      saturatedRuns: loadgens.filter((l) => l.saturated).length,
      loadgenBusy: median(loadgens.map((l) => l.coreBusy)),
      saturationReasons: [...new Set(loadgens.flatMap((l) => l.reasons))],
      noisyRuns: loadgens.filter((l) => l.noisy).length,
      otherBusy: median(loadgens.map((l) => l.otherBusy + l.stealBusy)),
      ...(measured.length === 0 ? { skipped: group[0]?.result.skipped ?? 'not measured' } : {}),
      errors: [...new Set(group.flatMap((r) => r.result.errors))],
    });
  }
  return rows;
}

export interface Reference {
  /** The level the goals of a stepped scenario are read at. */
  readonly level: number | null;
  /** Highest level the load generator sustained against the fastest target (uws when present). */
  readonly highestSustained: number | null;
  readonly basis: string;
}

/**
 * "Half of the highest rate the load generator sustains": the highest step sustained (in most runs)
 * against raw uWS (or, without it, against any target), halved, rounded down to a step.
 */
export function referenceLevel(rows: readonly SummaryRow[], scenario: ScenarioId): Reference {
  const ofScenario = rows.filter((r) => r.scenario === scenario && r.skipped === undefined);
  const levels = [...new Set(ofScenario.map((r) => r.level))].sort((a, b) => a - b);
  if (levels.length === 0) return { level: null, highestSustained: null, basis: 'no steps measured' };
  const hasUws = ofScenario.some((r) => r.target === 'uws');
  const basisRows = hasUws ? ofScenario.filter((r) => r.target === 'uws') : ofScenario;
  const sustained = basisRows.filter((r) => r.sustainedRuns * 2 > r.measuredRuns).map((r) => r.level);
  const highest = sustained.length > 0 ? Math.max(...sustained) : null;
  const basis = hasUws ? 'raw uWS' : 'any target';
  if (highest === null) return { level: levels[0] ?? null, highestSustained: null, basis };
  const half = levels.filter((level) => level <= highest / 2);
  return {
    level: half.length > 0 ? (half[half.length - 1] ?? null) : (levels[0] ?? null),
    highestSustained: highest,
    basis,
  };
}

/** Fan-out with two gateway processes against one (issue 14), from the medians of one bench. */
export interface ScaleOut {
  /** Highest step each sustained (in most runs), and the deliveries/s there. */
  readonly one: { readonly level: number | null; readonly deliveredPerSec: number | null };
  readonly two: { readonly level: number | null; readonly deliveredPerSec: number | null };
  /** two.deliveredPerSec / one.deliveredPerSec. */
  readonly throughputRatio: number | null;
  /** The highest step both sustained, and CPU per delivery (µs) there. */
  readonly commonLevel: number | null;
  readonly cpuOne: number | null;
  readonly cpuTwo: number | null;
  readonly cpuRatio: number | null;
  /** Whether the highest step of the scenario was sustained by both (then the ratio is a floor). */
  readonly topStepReached: boolean;
}

export function scaleOut(rows: readonly SummaryRow[]): ScaleOut | undefined {
  const fan = rows.filter((r) => r.scenario === 'fanout' && r.skipped === undefined);
  const of = (target: TargetName) => fan.filter((r) => r.target === target);
  if (of('gigwire').length === 0 || of('gigwire2').length === 0) return undefined;
  const sustained = (target: TargetName) =>
    of(target)
      .filter((r) => r.sustainedRuns * 2 > r.measuredRuns)
      .sort((a, b) => b.level - a.level);
  const best = (target: TargetName) => {
    const top = sustained(target)[0];
    return { level: top?.level ?? null, deliveredPerSec: top?.metrics.deliveredPerSec ?? null };
  };
  const one = best('gigwire');
  const two = best('gigwire2');
  const twoLevels = new Set(sustained('gigwire2').map((r) => r.level));
  const common = sustained('gigwire').find((r) => twoLevels.has(r.level));
  const commonTwo = common === undefined ? undefined : of('gigwire2').find((r) => r.level === common.level);
  const cpuOne = common?.metrics.serverCpuUsPerDelivery ?? null;
  const cpuTwo = commonTwo?.metrics.serverCpuUsPerDelivery ?? null;
  const topLevel = Math.max(...fan.map((r) => r.level));
  return {
    one,
    two,
    throughputRatio: ratio(two.deliveredPerSec, one.deliveredPerSec),
    commonLevel: common?.level ?? null,
    cpuOne,
    cpuTwo,
    cpuRatio: ratio(cpuTwo, cpuOne),
    topStepReached: one.level === topLevel && two.level === topLevel,
  };
}

export interface GoalResult {
  readonly goal: string;
  readonly bound: string;
  readonly value: number | null;
  readonly unit: string;
  readonly where: string;
  /** null when it could not be evaluated (e.g. gigwire or the baseline was not run). */
  readonly met: boolean | null;
}

function findRow(
  rows: readonly SummaryRow[],
  scenario: ScenarioId,
  level: number | null,
  target: TargetName,
) {
  return rows.find(
    (r) => r.scenario === scenario && r.level === level && r.target === target && r.skipped === undefined,
  );
}

/** Met when the value is at most `limit`, or at least `limit` with `atLeast` (throughput goals). */
function goal(
  goalText: string,
  bound: string,
  value: number | null | undefined,
  limit: number,
  unit: string,
  where: string,
  atLeast = false,
): GoalResult {
  const v = typeof value === 'number' && Number.isFinite(value) ? value : null;
  const met = v === null ? null : atLeast ? v >= limit : v <= limit;
  return { goal: goalText, bound, value: v, unit, where, met };
}

export function evaluateGoals(rows: readonly SummaryRow[]): GoalResult[] {
  const fan = referenceLevel(rows, 'fanout');
  const rr = referenceLevel(rows, 'reqrep');
  const fanRow = findRow(rows, 'fanout', fan.level, 'gigwire');
  const rrRow = findRow(rows, 'reqrep', rr.level, 'gigwire');
  const idleLevels = rows.filter(
    (r) => r.scenario === 'idle' && r.target === 'gigwire' && r.skipped === undefined,
  );
  const idleRow = idleLevels.sort((a, b) => b.level - a.level)[0];
  const fanWhere = `fan-out at ${fan.level ?? '?'} msg/s (highest sustained vs ${fan.basis}: ${fan.highestSustained ?? 'none'})`;
  const rrWhere = `request/reply at ${rr.level ?? '?'} req/s (highest sustained vs ${rr.basis}: ${rr.highestSustained ?? 'none'})`;
  const idleWhere = idleRow === undefined ? 'idle' : `idle, ${idleRow.label}`;
  const jitterRow = rows.find(
    (r) => r.scenario === 'jitter' && r.target === 'gigwire' && r.skipped === undefined,
  );
  const jitterWhere = jitterRow === undefined ? 'reconnect jitter' : `reconnect jitter, ${jitterRow.label}`;
  const meRow = rows.find(
    (r) =>
      r.scenario === 'rest' && r.caseId === 'rest@me' && r.target === 'gigwire' && r.skipped === undefined,
  );
  const meWhere = 'REST, autocannon 32 connections, same run as GET /health/live';
  return [
    goal(
      'fan-out server CPU per delivery vs raw uWS',
      '≤ 1.5×',
      fanRow?.ratios[ratioKey('serverCpuUsPerDelivery', 'uws')],
      1.5,
      '×',
      fanWhere,
    ),
    goal(
      'fan-out server CPU per delivery vs Socket.IO',
      '≤ 0.4×',
      fanRow?.ratios[ratioKey('serverCpuUsPerDelivery', 'socketio')],
      0.4,
      '×',
      fanWhere,
    ),
    goal(
      'fan-out CPU per delivery incl. Postgres + Redis vs raw uWS',
      '≤ 2×',
      fanRow?.ratios[ratioKey('totalCpuUsPerDelivery', 'uws')],
      2,
      '×',
      fanWhere,
    ),
    goal(
      'fan-out p99 publish→receive at half the highest sustained rate',
      '≤ 25 ms',
      fanRow?.metrics.p99Ms,
      25,
      'ms',
      fanWhere,
    ),
    goal('idle connection RSS after GC', '≤ 4 KB', idleRow?.metrics.serverRssKbPerConn, 4, 'KB', idleWhere),
    goal(
      'connect + JWT + presence, server CPU per connection',
      '≤ 150 µs',
      idleRow?.metrics.serverCpuUsPerConnect,
      150,
      'µs',
      idleWhere,
    ),
    goal(
      'request/reply server CPU per request vs raw uWS echo',
      '≤ 2×',
      rrRow?.ratios[ratioKey('serverCpuUsPerRequest', 'uws')],
      2,
      '×',
      rrWhere,
    ),
    goal(
      'reconnect jitter: gap filled after a reconnect, p99 from its start',
      '≤ 8 ms',
      jitterRow?.metrics.gapFillP99Ms,
      8,
      'ms',
      jitterWhere,
    ),
    goal('reconnect jitter: messages lost', '0', jitterRow?.metrics.lost, 0, 'msgs', jitterWhere),
    goal('reconnect jitter: duplicates', '0', jitterRow?.metrics.duplicates, 0, 'msgs', jitterWhere),
    goal(
      'authenticated GET /v1/me server CPU per request vs GET /health/live',
      '≤ 2×',
      meRow?.metrics.cpuVsHealthLive,
      2,
      '×',
      meWhere,
    ),
    goal(
      'authenticated GET /v1/me requests/s',
      '≥ 4 300',
      meRow?.metrics.okPerSec,
      4300,
      'req/s',
      meWhere,
      true,
    ),
  ];
}

/** Cases that should have numbers and have none, as `scenario case target` strings. */
export function missingNumbers(
  rows: readonly SummaryRow[],
  expected: ReadonlyArray<{ readonly scenario: ScenarioId; readonly target: TargetName }>,
): string[] {
  const missing: string[] = [];
  for (const { scenario, target } of expected) {
    const mine = rows.filter((r) => r.scenario === scenario && r.target === target);
    if (mine.length === 0) {
      missing.push(`${scenario} × ${target}: no cases`);
      continue;
    }
    for (const row of mine) {
      if (row.skipped !== undefined) continue;
      const absent = PRIMARY_METRICS[scenario].filter(
        (m) => row.metrics[m] === null || row.metrics[m] === undefined,
      );
      if (absent.length > 0) {
        missing.push(
          `${row.caseId} × ${target}: no ${absent.join(', ')}${row.errors.length > 0 ? ` (${row.errors[0]})` : ''}`,
        );
      }
    }
    if (mine.every((r) => r.skipped !== undefined) && !mine.some((r) => r.skipped?.startsWith('n/a'))) {
      missing.push(`${scenario} × ${target}: every case skipped`);
    }
  }
  return missing;
}
