/**
 * The benchmark orchestrator (`npm run bench -- [--quick] [--runs N] [--only t1,t2] [--scenarios s1,s2]`).
 *
 * Starts the targets (gigwire, gigwire with GATEWAY_PROCESSES=2, the raw uWS peer, the Socket.IO
 * peer; servers pinned to core 0) and a
 * pool of load-generator workers (core 1; this process pins itself there too), then for each run,
 * each scenario, each target in turn measures the scenario, so targets are compared within the same
 * run. Writes bench/results/<timestamp>.json and the markdown report (bench/RESULTS.md for full
 * runs, bench/results/<timestamp>-quick.md for --quick), prints the report and ends with
 * `bench: N scenarios × M targets produced numbers`, or exits 1 naming the cases without numbers.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { relative } from 'node:path';
import { parseArgs } from 'node:util';
import { machineInfo } from './lib/machine.js';
import { renderMarkdown } from './lib/markdown.js';
import {
  type CaseResult,
  errorText,
  failedCase,
  SCENARIO_IDS,
  type Scenario,
  type ScenarioId,
} from './lib/scenario.js';
import { fanoutScenario, fanoutShape } from './lib/scenario-fanout.js';
import { idleScenario, idleSizes } from './lib/scenario-idle.js';
import { jitterCredentials, jitterKillScenario, jitterScenario, jitterShape } from './lib/scenario-jitter.js';
import { reqrepScenario, reqrepShape } from './lib/scenario-reqrep.js';
import { restScenario, restSeconds } from './lib/scenario-rest.js';
import { TRANSFER_PAIRS, transferScenario, transferSeconds } from './lib/scenario-transfer.js';
import { LOAD_CORE, pinProcess, REPO_ROOT, SERVER_CORE } from './lib/spawn.js';
import { type CaseRecord, evaluateGoals, missingNumbers, summarize } from './lib/summary.js';
import type { ClientCredential, TargetName, TargetServer } from './lib/target.js';
import { WorkerPool } from './load/pool.js';
import { startSocketIoPeer, startUwsPeer } from './targets/peers.js';

const ALL_TARGETS: readonly TargetName[] = ['gigwire', 'gigwire2', 'uws', 'socketio'];
const SCENARIOS: Readonly<Record<ScenarioId, Scenario>> = {
  idle: idleScenario,
  fanout: fanoutScenario,
  reqrep: reqrepScenario,
  rest: restScenario,
  transfer: transferScenario,
  jitter: jitterScenario,
  jitterkill: jitterKillScenario,
};

interface Options {
  readonly quick: boolean;
  readonly runs: number;
  readonly targets: readonly TargetName[];
  readonly scenarios: readonly ScenarioId[];
  /** Where the gigwire server (and, with BENCH_PROFILE_WORKERS=1, the load workers) write V8 CPU profiles when they stop. */
  readonly profileDir: string | undefined;
}

/**
 * Left out of a --quick run unless named (--only gigwire2, --scenarios jitterkill): a second gigwire
 * with its own PostgreSQL and Redis takes 15–30 s to start here, and with its fan-out and the three
 * jitter runs with a kill they would add ~50 s to CI's smoke run. The full bench runs them.
 */
const FULL_ONLY_TARGETS: readonly TargetName[] = ['gigwire2'];
const FULL_ONLY_SCENARIOS: readonly ScenarioId[] = ['jitterkill'];

function parseList<T extends string>(
  raw: string | undefined,
  allowed: readonly T[],
  what: string,
  leftOutByDefault: readonly T[] = [],
): T[] {
  if (raw === undefined) return allowed.filter((item) => !leftOutByDefault.includes(item));
  const items = raw
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item.length > 0);
  for (const item of items) {
    if (!(allowed as readonly string[]).includes(item))
      throw new Error(`unknown ${what} "${item}" (one of ${allowed.join(', ')})`);
  }
  return allowed.filter((item) => items.includes(item));
}

function parseOptions(): Options {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      runs: { type: 'string' },
      only: { type: 'string' },
      scenarios: { type: 'string' },
      'profile-dir': { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(
      'usage: npm run bench -- [--quick] [--runs N] [--only gigwire,gigwire2,uws,socketio] [--scenarios idle,fanout,reqrep,rest,transfer,jitter,jitterkill] [--profile-dir DIR (CPU profile of the gigwire server; of the load workers too with BENCH_PROFILE_WORKERS=1)]\n',
    );
    process.exit(0);
  }
  const quick = values.quick === true;
  const runs = values.runs === undefined ? (quick ? 1 : 3) : Number.parseInt(values.runs, 10);
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`bad --runs ${values.runs}`);
  return {
    quick,
    runs,
    targets: parseList(values.only, ALL_TARGETS, 'target', quick ? FULL_ONLY_TARGETS : []),
    scenarios: parseList(values.scenarios, SCENARIO_IDS, 'scenario', quick ? FULL_ONLY_SCENARIOS : []),
    profileDir: values['profile-dir'],
  };
}

/**
 * Whether a scenario runs for a target: REST and transfers are gigwire's alone; gigwire2 (two
 * gateway processes) runs only fan-out (for the 1-vs-2-process ratio) and the jitter run with a
 * kill (where it replaces one-process gigwire, which has no second process to survive on).
 */
function expectedFor(scenario: ScenarioId, target: TargetName): boolean {
  if (target === 'gigwire2') return scenario === 'fanout' || scenario === 'jitterkill';
  if (scenario === 'jitterkill') return target !== 'gigwire';
  return (scenario !== 'rest' && scenario !== 'transfer') || target === 'gigwire';
}

/** The gigwire server's build (bench/targets/gigwire.ts), made once per bench run when first needed. */
let gigwireBuild: Promise<string> | undefined;

async function startTarget(name: TargetName, options: Options): Promise<TargetServer> {
  switch (name) {
    case 'gigwire': {
      const { buildGigwire, startGigwire } = await import('./targets/gigwire.js');
      gigwireBuild ??= buildGigwire(options.quick);
      return startGigwire({
        quick: options.quick,
        entry: await gigwireBuild,
        profileDir: options.profileDir,
      });
    }
    case 'gigwire2': {
      const { buildGigwire, startGigwire } = await import('./targets/gigwire.js');
      gigwireBuild ??= buildGigwire(options.quick);
      return startGigwire({ quick: options.quick, entry: await gigwireBuild, processes: 2 });
    }
    case 'uws':
      return startUwsPeer();
    case 'socketio':
      return startSocketIoPeer();
  }
}

interface Prepared {
  readonly target: TargetServer;
  readonly credentials: readonly ClientCredential[];
  readonly rooms: readonly string[];
}

function shapesText(options: Options, workers: number): Record<ScenarioId, string> {
  const fan = fanoutShape(options.quick);
  const rr = reqrepShape(options.quick);
  const jit = jitterShape(options.quick);
  return {
    idle: `${idleSizes(options.quick).join(' and ')} connections, ${workers} load workers; gigwire with real credentials (a fresh one per connection: the access JWT at ${idleSizes(options.quick)[0]}, the connect token above) and presence on.`,
    fanout:
      `${fan.rooms} rooms × ${fan.members} members (${fan.publishersPerRoom} publishers per room), ` +
      `${fan.stepMs / 1000} s per step, ${fan.bodyBytes}-char bodies; rate = messages published per second in total ` +
      `(deliveries = rate × ${fan.members}); gigwire with durable room.send.`,
    reqrep: `${rr.connections} connections, ${rr.stepMs / 1000} s per step, \`ping\` with id → \`ok\` (Socket.IO: ping with ack).`,
    rest: `autocannon for ${restSeconds(options.quick)} s per endpoint (32 connections; login 4), authorization: Bearer <token>.`,
    transfer:
      `autocannon POST /v1/wallet/transfers of 1 unit for ${transferSeconds(options.quick)} s per case, a new Idempotency-Key per request ` +
      `(each 201 = one committed ledger transaction + its wallet push); "pairs": ${TRANSFER_PAIRS} disjoint sender → recipient pairs round robin, ` +
      '"hot": every transfer out of one wallet (serialized on its row lock). Senders funded through the ledger before each run.',
    jitter:
      `${jit.rooms} rooms × ${jit.receiversPerRoom} receivers + 1 stable publisher per room at ${jit.ratePerRoom} msg/s for ${jit.durationMs / 1000} s; ` +
      `every receiver drops its TCP connection every ${jit.dropEveryMs.map((ms) => ms / 1000).join('–')} s for ${jit.outageMs.map((ms) => ms / 1000).join('–')} s ` +
      'and reconnects: gigwire through its SDK (rejoin with sinceSeq), Socket.IO with connection state recovery, raw uWS by joining again (no recovery). ' +
      'Gap fill = from the new socket created to the arrival of the last message missed in the outage.',
    jitterkill:
      'The reconnect-jitter run above, with one server process SIGKILLed at half time: gigwire ×2 (GATEWAY_PROCESSES=2) loses one of its ' +
      'two copies (the supervisor restarts it; its clients reconnect to the survivor through the shared port, its rooms move there); ' +
      'raw uWS and Socket.IO lose their only process, restarted on the same port at once (their recovery state was in memory). ' +
      'Connections the kill closed count as drops ("server drops"); "replaced" = from the kill until the new process serves.',
  };
}

async function main(): Promise<void> {
  const options = parseOptions();
  const startedAt = new Date();
  const t0 = performance.now();
  const log = (line: string) =>
    process.stderr.write(`[bench ${((performance.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${line}\n`);
  const pinnedSelf = pinProcess(process.pid, LOAD_CORE);
  const pinning = pinnedSelf
    ? `servers on core ${SERVER_CORE} (taskset), load workers and orchestrator on core ${LOAD_CORE}`
    : 'none (taskset or a second core unavailable)';
  const machine = machineInfo(pinning);
  const workers = options.quick ? 2 : 4;
  const fan = fanoutShape(options.quick);
  const needed = Math.max(
    options.scenarios.includes('idle') ? Math.max(...idleSizes(options.quick)) : 0,
    options.scenarios.includes('fanout') ? fan.rooms * fan.members : 0,
    options.scenarios.includes('reqrep') ? reqrepShape(options.quick).connections : 0,
    options.scenarios.includes('transfer') ? 2 * TRANSFER_PAIRS : 0,
    options.scenarios.includes('jitter') || options.scenarios.includes('jitterkill')
      ? jitterCredentials(options.quick)
      : 0,
    2,
  );

  const pool = await WorkerPool.start(workers, options.profileDir);
  /** The target being measured: the only one running (see below). */
  let running: Prepared | undefined;
  const stopAll = async () => {
    await running?.target.stop().catch(() => undefined);
    running = undefined;
    await pool.stop().catch(() => undefined);
  };
  process.once('SIGINT', () => {
    log('interrupted, stopping servers');
    void stopAll().then(() => process.exit(130));
  });

  /** Starts a target with its credentials and rooms (fresh in every run). */
  const prepare = async (name: TargetName): Promise<Prepared> => {
    log(`starting ${name}`);
    const target = await startTarget(name, options);
    try {
      const credentials = await target.credentials(needed);
      const rooms = options.scenarios.includes('fanout')
        ? await target.prepareRooms(credentials.slice(0, fan.rooms * fan.members), fan.rooms, fan.members)
        : [];
      log(`${name} ready (pid ${target.pid}, ${credentials.length} credentials, ${rooms.length} rooms)`);
      return { target, credentials, rooms };
    } catch (error) {
      await target.stop().catch(() => undefined);
      throw error;
    }
  };

  // Each run measures the targets one after the other, each alone on the server core: it is
  // started, runs every scenario, and is stopped before the next one starts. (Until 2026-12-05
  // all targets ran for the whole bench, the idle ones on the same core: an idle gigwire ×2 — three
  // Node processes, PostgreSQL, Redis — takes ~8 % of that core with its timers and polls.)
  const records: CaseRecord[] = [];
  let step = 0;
  try {
    for (let run = 1; run <= options.runs; run += 1) {
      for (const name of options.targets) {
        const scenarios = options.scenarios.filter((scenario) => expectedFor(scenario, name));
        // e.g. gigwire2 when neither fan-out nor jitterkill is selected.
        if (scenarios.length === 0) continue;
        try {
          running = await prepare(name);
        } catch (error) {
          const why = `target did not start: ${errorText(error)}`;
          log(`${name} failed to start: ${errorText(error)}`);
          for (const scenarioId of scenarios) {
            records.push({
              run,
              target: name,
              result: failedCase(scenarioId, `${scenarioId}@start`, 'start', 0, why),
            });
          }
          continue;
        }
        const entry = running;
        for (const scenarioId of scenarios) {
          const scenario = SCENARIOS[scenarioId];
          if (!scenario.appliesTo(entry.target)) continue;
          log(`run ${run}/${options.runs}: ${scenarioId} × ${name}`);
          let cases: CaseResult[];
          try {
            cases = await scenario.run({
              target: entry.target,
              pool,
              quick: options.quick,
              credentials: entry.credentials,
              rooms: entry.rooms,
              nextStep: () => {
                step += 1;
                return step;
              },
              log: (line) => log(`  ${name} ${line}`),
            });
          } catch (error) {
            cases = [failedCase(scenarioId, `${scenarioId}@error`, 'error', 0, error)];
          }
          for (const result of cases) records.push({ run, target: name, result });
        }
        log(`stopping ${name}`);
        await entry.target
          .stop()
          .catch((error: unknown) => log(`${name} did not stop cleanly: ${errorText(error)}`));
        running = undefined;
      }
    }
  } finally {
    log('stopping servers and workers');
    await stopAll();
  }

  const rows = summarize(records, options.runs);
  const goals = evaluateGoals(rows);
  const expected = options.scenarios.flatMap((scenario) =>
    options.targets.filter((target) => expectedFor(scenario, target)).map((target) => ({ scenario, target })),
  );
  const missing = missingNumbers(rows, expected);

  const stamp = startedAt.toISOString().replace(/[:.]/g, '-');
  const resultsDir = `${REPO_ROOT}bench/results`;
  mkdirSync(resultsDir, { recursive: true });
  const jsonFile = `${resultsDir}/${stamp}${options.quick ? '-quick' : ''}.json`;
  const durationS = (performance.now() - t0) / 1000;
  const markdown = renderMarkdown({
    startedAt: startedAt.toISOString(),
    durationS,
    quick: options.quick,
    runs: options.runs,
    targets: options.targets,
    machine,
    rows,
    goals,
    missing,
    shapes: shapesText(options, workers),
    resultsFile: relative(REPO_ROOT, jsonFile),
  });
  writeFileSync(
    jsonFile,
    `${JSON.stringify({ startedAt: startedAt.toISOString(), durationS, options, machine, goals, missing, summary: rows, records }, null, 2)}\n`,
  );
  const markdownFile = options.quick ? `${resultsDir}/${stamp}-quick.md` : `${REPO_ROOT}bench/RESULTS.md`;
  writeFileSync(markdownFile, markdown);
  process.stdout.write(`${markdown}\n`);
  log(`wrote ${relative(REPO_ROOT, jsonFile)} and ${relative(REPO_ROOT, markdownFile)}`);

  if (missing.length > 0) {
    process.stdout.write(`bench: no numbers for:\n${missing.map((line) => `  - ${line}`).join('\n')}\n`);
    process.exitCode = 1;
    return;
  }
  const gigwireOnly = options.scenarios.filter((s) => s === 'rest' || s === 'transfer');
  const notes = [
    ...(gigwireOnly.length > 0 ? [`${gigwireOnly.join(', ')}: gigwire only`] : []),
    ...(options.targets.includes('gigwire2') ? ['gigwire2: fanout and jitterkill only'] : []),
  ];
  const restNote = notes.length > 0 ? ` (${notes.join('; ')})` : '';
  process.stdout.write(
    `bench: ${options.scenarios.length} scenarios × ${options.targets.length} targets produced numbers${restNote}\n`,
  );
}

// Exits explicitly: idle handles of a target or of autocannon must not keep a finished run alive.
main().then(
  () => process.exit(process.exitCode ?? 0),
  (error: unknown) => {
    process.stderr.write(
      `bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exit(1);
  },
);
