/**
 * Renders a bench result as markdown (printed and written to bench/RESULTS.md): the machine, the
 * goals with met/missed, then one table per scenario with the medians, same-run ratios and whether
 * the load generator was saturated.
 */
import type { MachineInfo } from './machine.js';
import type { ScenarioId } from './scenario.js';
import { type GoalResult, ratioKey, type SummaryRow, scaleOut } from './summary.js';
import type { TargetName } from './target.js';

export interface ReportInput {
  readonly startedAt: string;
  readonly durationS: number;
  readonly quick: boolean;
  readonly runs: number;
  readonly targets: readonly TargetName[];
  readonly machine: MachineInfo;
  readonly rows: readonly SummaryRow[];
  readonly goals: readonly GoalResult[];
  readonly missing: readonly string[];
  readonly shapes: Readonly<Record<ScenarioId, string>>;
  readonly resultsFile: string;
}

const TARGET_LABEL: Readonly<Record<TargetName, string>> = {
  gigwire: 'gigwire',
  gigwire2: 'gigwire ×2 processes',
  uws: 'raw uWS',
  socketio: 'Socket.IO',
};

export function num(value: number | null | undefined, digits?: number): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '–';
  const d = digits ?? (Math.abs(value) >= 100 ? 0 : Math.abs(value) >= 10 ? 1 : 2);
  return value.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
}

function pct(value: number | null | undefined): string {
  return value === null || value === undefined || !Number.isFinite(value)
    ? '–'
    : `${(value * 100).toFixed(0)}%`;
}

/** A ratio as a percentage with two decimals (100% only when nothing is missing). */
function pct2(value: number | null | undefined): string {
  return value === null || value === undefined || !Number.isFinite(value)
    ? '–'
    : `${(Math.floor(value * 10_000) / 100).toFixed(2)}%`;
}

function times(value: number | null | undefined): string {
  return value === null || value === undefined ? '–' : `${num(value, 2)}×`;
}

function loadgen(row: SummaryRow): string {
  if (row.skipped !== undefined) return '';
  const busy = pct(row.loadgenBusy);
  const verdict =
    row.saturatedRuns === 0
      ? `ok (${busy})`
      : `**saturated** ${row.saturatedRuns}/${row.measuredRuns}: ${row.saturationReasons.join('; ')}`;
  const noise =
    row.noisyRuns === 0
      ? ''
      : `; **noisy** ${row.noisyRuns}/${row.measuredRuns}: other processes ${pct(row.otherBusy)} of a core`;
  return verdict + noise;
}

interface Column {
  readonly header: string;
  readonly cell: (row: SummaryRow) => string;
}

const m = (name: string, digits?: number) => (row: SummaryRow) => num(row.metrics[name], digits);
const r = (metric: string, base: TargetName) => (row: SummaryRow) =>
  times(row.ratios[ratioKey(metric, base)]);

const JITTER_COLUMNS: readonly Column[] = [
  { header: 'delivered', cell: (row) => pct2(row.metrics.deliveryRatio) },
  { header: 'lost', cell: m('lost', 0) },
  { header: 'duplicates', cell: m('duplicates', 0) },
  { header: 'drops', cell: m('drops', 0) },
  { header: 'gaps filled', cell: (row) => pct2(row.metrics.gapsFilledRatio) },
  { header: 'gap-fill p50 ms', cell: m('gapFillP50Ms') },
  { header: 'gap-fill p99 ms', cell: m('gapFillP99Ms') },
  { header: 'gap-fill max ms', cell: m('gapFillMaxMs') },
  {
    header: 'reconnected p50 / p99 ms',
    cell: (row) => `${num(row.metrics.reconnectP50Ms)} / ${num(row.metrics.reconnectP99Ms)}`,
  },
  { header: 'S.IO not recovered', cell: m('notRecovered', 0) },
  { header: 'load worker lag p99 ms', cell: m('workerLoopLagP99Ms', 0) },
  { header: 'load worker waited for core', cell: (row) => pct(row.metrics.workerWaitShare) },
  { header: 'send failed', cell: m('sendFailed', 0) },
  { header: 'server core', cell: (row) => pct(row.metrics.serverBusy) },
];

const COLUMNS: Readonly<Record<ScenarioId, readonly Column[]>> = {
  idle: [
    { header: 'connect/s', cell: m('connectPerSec', 0) },
    { header: 'server CPU µs/conn', cell: m('serverCpuUsPerConnect', 1) },
    { header: '×uWS', cell: r('serverCpuUsPerConnect', 'uws') },
    { header: '×S.IO', cell: r('serverCpuUsPerConnect', 'socketio') },
    { header: 'RSS KB/conn (after GC)', cell: m('serverRssKbPerConn', 2) },
    { header: '×uWS', cell: r('serverRssKbPerConn', 'uws') },
    { header: 'PG+Redis CPU µs/conn', cell: m('auxCpuUsPerConnect', 1) },
    { header: 'PG+Redis KB/conn', cell: m('auxRssKbPerConn', 2) },
    { header: 'failed', cell: m('failed', 0) },
  ],
  fanout: [
    { header: 'delivered/s', cell: m('deliveredPerSec', 0) },
    { header: 'delivered', cell: (row) => pct(row.metrics.deliveryRatio) },
    { header: 'p50 ms', cell: m('p50Ms') },
    { header: 'p99 ms', cell: m('p99Ms') },
    { header: 'max ms', cell: m('maxMs') },
    { header: 'CPU µs/delivery', cell: m('serverCpuUsPerDelivery', 2) },
    { header: '×uWS', cell: r('serverCpuUsPerDelivery', 'uws') },
    { header: '×S.IO', cell: r('serverCpuUsPerDelivery', 'socketio') },
    { header: '+PG+Redis µs', cell: m('auxCpuUsPerDelivery', 2) },
    { header: 'total ×uWS', cell: r('totalCpuUsPerDelivery', 'uws') },
    { header: 'send ack p99 ms', cell: m('ackP99Ms') },
    {
      header: 'server loop lag p99 / max ms',
      cell: (row) => `${m('loopLagP99Ms')(row)} / ${m('loopLagMaxMs')(row)}`,
    },
    { header: 'group commit p99 ms (≤)', cell: m('commitP99Ms') },
    { header: 'room send→ack p99 ms (≤)', cell: m('serverSendP99Ms') },
    {
      header: 'main thread waited for core / other threads',
      cell: (row) => `${pct(row.metrics.mainWaitShare)} / ${pct(row.metrics.helperBusy)}`,
    },
    { header: '×1 proc', cell: r('serverCpuUsPerDelivery', 'gigwire') },
    { header: 'p99 ×1 proc', cell: r('p99Ms', 'gigwire') },
    { header: 'server core', cell: (row) => pct(row.metrics.serverBusy) },
  ],
  reqrep: [
    { header: 'replies/s', cell: m('repliesPerSec', 0) },
    { header: 'p50 ms', cell: m('p50Ms') },
    { header: 'p99 ms', cell: m('p99Ms') },
    { header: 'max ms', cell: m('maxMs') },
    { header: 'CPU µs/req', cell: m('serverCpuUsPerRequest', 1) },
    { header: '×uWS', cell: r('serverCpuUsPerRequest', 'uws') },
    { header: '×S.IO', cell: r('serverCpuUsPerRequest', 'socketio') },
    { header: 'server core', cell: (row) => pct(row.metrics.serverBusy) },
  ],
  rest: [
    { header: '2xx/s', cell: m('okPerSec', 0) },
    { header: 'p50 ms', cell: m('p50Ms') },
    { header: 'p99 ms', cell: m('p99Ms') },
    { header: 'non-2xx', cell: m('non2xx', 0) },
    { header: 'server CPU µs/req', cell: m('serverCpuUsPerRequest', 0) },
    { header: '×health/live', cell: m('cpuVsHealthLive', 2) },
    { header: 'server core', cell: (row) => pct(row.metrics.serverBusy) },
  ],
  transfer: [
    { header: 'transfers/s', cell: m('transfersPerSec', 0) },
    { header: 'p50 ms', cell: m('p50Ms') },
    { header: 'p99 ms', cell: m('p99Ms') },
    { header: 'non-2xx', cell: m('non2xx', 0) },
    { header: 'server CPU µs/transfer', cell: m('serverCpuUsPerTransfer', 0) },
    { header: 'PG+Redis CPU µs/transfer', cell: m('auxCpuUsPerTransfer', 0) },
    { header: 'server core', cell: (row) => pct(row.metrics.serverBusy) },
  ],
  jitter: JITTER_COLUMNS,
  jitterkill: [
    ...JITTER_COLUMNS.slice(0, 4),
    { header: 'server drops', cell: m('serverDrops', 0) },
    ...JITTER_COLUMNS.slice(4),
    { header: 'replaced after ms', cell: m('killReplacedMs', 0) },
  ],
};

const TITLES: Readonly<Record<ScenarioId, string>> = {
  idle: 'Idle connections',
  fanout: 'Fan-out',
  reqrep: 'Request/reply',
  rest: 'REST (autocannon)',
  transfer: 'Wallet transfers (REST, autocannon)',
  jitter: 'Reconnect jitter',
  jitterkill: 'Reconnect jitter with a server process killed mid-run',
};

const TARGET_ORDER: readonly TargetName[] = ['gigwire', 'gigwire2', 'uws', 'socketio'];

/** Fan-out, one vs two gateway processes (only when both ran). */
function scaleOutText(rows: readonly SummaryRow[]): string | undefined {
  const scale = scaleOut(rows);
  if (scale === undefined) return undefined;
  const at = (side: { level: number | null; deliveredPerSec: number | null }) =>
    side.level === null
      ? 'no step sustained'
      : `${num(side.deliveredPerSec, 0)} deliveries/s at ${side.level} msg/s`;
  return [
    `**1 vs 2 gateway processes** (both on the server core): highest step sustained — 1 process ${at(scale.one)}, ` +
      `2 processes ${at(scale.two)}; throughput ratio 2/1 = ${times(scale.throughputRatio)}` +
      (scale.topStepReached
        ? ' (both sustained the top step: the load, not the server, was the limit)'
        : '') +
      `. Server CPU per delivery at ${scale.commonLevel ?? '–'} msg/s (the highest step both sustained): ` +
      `${num(scale.cpuOne, 2)} µs vs ${num(scale.cpuTwo, 2)} µs = ${times(scale.cpuRatio)}.`,
  ].join('');
}

function table(headers: readonly string[], lines: ReadonlyArray<readonly string[]>): string {
  const out = [`| ${headers.join(' | ')} |`, `|${headers.map(() => ' --- ').join('|')}|`];
  for (const line of lines) out.push(`| ${line.map((cell) => cell.replaceAll('|', '\\|')).join(' | ')} |`);
  return out.join('\n');
}

function scenarioTable(id: ScenarioId, rows: readonly SummaryRow[]): string {
  const mine = rows
    .filter((row) => row.scenario === id)
    .sort((a, b) => a.level - b.level || TARGET_ORDER.indexOf(a.target) - TARGET_ORDER.indexOf(b.target));
  const columns = COLUMNS[id];
  const lines = mine.map((row) => {
    if (row.skipped !== undefined) {
      return [
        row.label,
        TARGET_LABEL[row.target],
        `skipped: ${row.skipped}`,
        ...columns.slice(1).map(() => ''),
        '',
      ];
    }
    return [row.label, TARGET_LABEL[row.target], ...columns.map((c) => c.cell(row)), loadgen(row)];
  });
  return table(['case', 'target', ...columns.map((c) => c.header), 'load generator'], lines);
}

export function renderMarkdown(input: ReportInput): string {
  const { machine } = input;
  const parts: string[] = [];
  parts.push(`# gigwire benchmark results${input.quick ? ' (quick)' : ''}`);
  parts.push(
    `Run ${input.startedAt}, ${num(input.durationS, 0)} s, ${input.runs} run(s) per figure (median), targets: ` +
      `${input.targets.map((t) => TARGET_LABEL[t]).join(', ')}. Raw data: \`${input.resultsFile}\`.`,
  );
  const sysctls = Object.entries(machine.sysctls)
    .map(([name, value]) => `${name}=${value}`)
    .join(', ');
  parts.push(
    [
      `- CPU: ${machine.cpuModel}, ${machine.cores} cores; RAM ${machine.ramGiB} GiB; kernel ${machine.kernel}; Node ${machine.node}`,
      `- sysctls: ${sysctls}; ulimit -n ${machine.ulimitNofile}`,
      `- pinning: ${machine.pinning}`,
    ].join('\n'),
  );

  parts.push('## Goals (same-run ratios)');
  parts.push(
    table(
      ['goal', 'bound', 'value', 'where', 'result'],
      input.goals.map((g) => [
        g.goal,
        g.bound,
        g.value === null ? '–' : g.unit === '×' ? times(g.value) : `${num(g.value)} ${g.unit}`,
        g.where,
        g.met === null ? 'n/a' : g.met ? 'met' : '**missed**',
      ]),
    ),
  );

  for (const id of ['idle', 'fanout', 'reqrep', 'rest', 'transfer', 'jitter', 'jitterkill'] as const) {
    if (!input.rows.some((row) => row.scenario === id)) continue;
    parts.push(`## ${TITLES[id]}`);
    parts.push(input.shapes[id]);
    parts.push(scenarioTable(id, input.rows));
    const scale = id === 'fanout' ? scaleOutText(input.rows) : undefined;
    if (scale !== undefined) parts.push(scale);
    const errors = input.rows.filter((row) => row.scenario === id && row.errors.length > 0);
    if (errors.length > 0) {
      parts.push(errors.map((row) => `- ${row.caseId} × ${row.target}: ${row.errors.join('; ')}`).join('\n'));
    }
  }

  parts.push('## Method');
  parts.push(
    [
      '- Figures are medians over runs; ratios (×uWS, ×S.IO) are taken per run between targets measured in that run, then the median.',
      '- CPU: utime+stime from /proc/<pid>/stat over the measurement window; "PG+Redis" is the same for the target\'s Postgres and Redis processes.',
      "- Load worker waited for core (reconnect jitter): the same run-queue wait for the load workers' main threads (the one that waited most): a reconnect or gap fill a worker times waits for its core as much as for the server.",
      "- Main thread waited for core / other threads (fan-out): the share of the window the server's main thread was runnable but not running (/proc/<pid>/task/<pid>/schedstat; the process that waited most), and the CPU of the server's other threads (V8's GC helpers, libuv's pool) in cores. The server, its Postgres and Redis share one core: while any of them runs, the event loop waits, which the loop-lag probe inside the process cannot tell apart from its own work.",
      '- RSS per connection: VmRSS after a forced GC with the connections open, minus VmRSS after GC before connecting (kernel socket memory not included).',
      '- Latency: from the scheduled (open-loop) send time to receipt, in log-linear histograms merged across workers.',
      '- Load generator saturated: load core (workers + orchestrator) ≥ 90% busy, or > 5% of sends more than 10 ms behind schedule.',
      '- Noisy: processes other than the server, its Postgres/Redis and the load generator (or hypervisor steal) used > 5% of a core during the window (from /proc/stat); such figures are not clean.',
      '- Goals read at the fan-out / request-reply step at or below half the highest step sustained against raw uWS (≥ 99% delivered, p99 ≤ 1 s, no failures, load generator not saturated).',
    ].join('\n'),
  );
  if (input.missing.length > 0)
    parts.push(`## Missing numbers\n\n${input.missing.map((line) => `- ${line}`).join('\n')}`);
  return `${parts.join('\n\n')}\n`;
}
