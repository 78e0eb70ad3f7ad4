/**
 * The gigwire benchmark target (contract: bench/lib/target.ts).
 *
 * Starts a real PostgreSQL 15 and a real redis-server as plain processes in a temp directory (the
 * test suite's helpers, test/support/servers.ts), then one gigwire process with ROLE=all (REST,
 * the uWebSockets.js WebSocket edge, room actors and the task workers, in one process) pinned to
 * core 0:
 *
 *   taskset -c 0 node --expose-gc --import ./bench/targets/gc-hook.mjs dist/src/bin/main.js
 *
 * That is the tsc build the Docker image runs (`npm run build`, made by `buildGigwire` before the
 * first gigwire target starts), not the source through tsx as `npm start` runs it: tsx's esbuild
 * transform wraps every function expression in a `__name` call (~1–2 % of a connect's profile).
 *
 * taskset execs node, so the spawned pid is the node process (checked through /proc at start).
 *
 * With `processes: 2` (the `gigwire2` target) the same command runs with GATEWAY_PROCESSES=2: the
 * spawned node is the supervisor (src/bin/supervisor.ts) and its two node:cluster copies share
 * WS_PORT through SO_REUSEPORT, so the load generator's connections spread over both. The copies
 * inherit the supervisor's affinity: both run on core 0, the same CPU budget as the one-process
 * target (this machine has two cores and the load generator owns the other; see bench/README.md).
 * The server's CPU is the sum over the supervisor and its copies (`serverPids`), and `crash`
 * SIGKILLs one copy, which the supervisor restarts.
 * gigwire migrates the database itself on start. Users, sessions, tokens and rooms are written by
 * the harness straight into PostgreSQL with gigwire's own modules (bench/targets/seed.ts).
 *
 * PostgreSQL runs with its durable defaults (fsync, synchronous_commit, full_page_writes on), unlike
 * the test suite: gigwire's `room.send` replies only after its INSERT commits, and the benchmark
 * charges it the real cost of that commit. Peers store nothing.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { build as esbuild } from 'esbuild';
import pg from 'pg';
import type { UserId } from '../../protocol/src/ids.js';
import { settings } from '../../src/config/index.js';
import { createDb, type DbHandle } from '../../src/db/create-db.js';
import { createPasswordHasher } from '../../src/domain/auth/passwords.js';
import { createTokenService } from '../../src/domain/auth/tokens.js';
import { auditLedger } from '../../src/domain/payments/audit.js';
import { topUp } from '../../src/domain/payments/wallet.js';
import { systemClock } from '../../src/platform/clock.js';
import { createLogger } from '../../src/platform/logger.js';
import {
  freePort,
  type PostgresServer,
  type RedisServer,
  startPostgresServer,
  startRedisServer,
} from '../../test/support/servers.js';
import { pinProcess } from '../lib/spawn.js';
import type { ClientCredential, TargetServer } from '../lib/target.js';
import { benchEmail, insertGroupRooms, insertUsersWithSessions, mintAccessTokens } from './seed.js';

const REPO_ROOT = resolve(import.meta.dirname, '..', '..');
const DATABASE = 'gigwire_bench';
/** Password of every seeded user (one argon2 hash shared by all rows). */
export const BENCH_PASSWORD = 'bench-Passw0rd-not-secret';
const JWT_ISSUER = 'gigwire';
const JWT_AUDIENCE = 'gigwire';
/**
 * Access tokens live 6 h (default 900 s): a connection is closed 4001 when its token expires, and
 * the load generator never refreshes, so tokens must outlast the longest run.
 */
const ACCESS_TOKEN_TTL_S = 6 * 60 * 60;
const REFRESH_ABSOLUTE_TTL_S = 30 * 24 * 60 * 60;
const READY_TIMEOUT_MS = 60_000;
const GC_TIMEOUT_MS = 5_000;
const STOP_TIMEOUT_MS = 15_000;
const SERVER_CPU = '0';
const BOOT_CPUS = '0,1';

/** Pins every thread of a running process to `cpus` (`taskset -a`: node's libuv and V8 threads too). */
function pinAllThreads(pid: number, cpus: string): void {
  execFileSync('taskset', ['-a', '-cp', cpus, String(pid)], { stdio: 'ignore' });
}

export interface GigwireTarget extends TargetServer {
  /** JSON for POST /v1/auth/login of a seeded user: `{"login": <email>, "password": …}`. */
  readonly loginBody?: string;
}

/**
 * Server environment. Everything gigwire reads from the environment is set here (inherited values
 * of gigwire's own variables are dropped), so the run does not depend on the caller's shell.
 */
function serverEnv(
  ports: { http: number; ws: number },
  databaseUrl: string,
  redisUrl: string,
  dir: string,
  processes: number,
) {
  // biome-ignore lint/style/noProcessEnv: the harness hands its PATH, HOME … to the server it spawns.
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of Object.keys(settings)) delete env[name];
  return {
    ...env,
    ROLE: 'all',
    HOST: '127.0.0.1',
    PORT: String(ports.http),
    WS_PORT: String(ports.ws),
    DATABASE_URL: databaseUrl,
    REDIS_URL: redisUrl,
    DATA_DIR: join(dir, 'data'),
    INSTALL_SYSTEM_PACKAGES: 'false',
    NODE_ID: 'bench-gigwire',
    // >1: a supervisor of that many copies (each named bench-gigwire-g<i>) sharing PORT and WS_PORT.
    GATEWAY_PROCESSES: String(processes),
    LOG_LEVEL: 'warn',
    LOG_PRETTY: 'false',
    JWT_ISSUER,
    JWT_AUDIENCE,
    ACCESS_TOKEN_TTL_S: String(ACCESS_TOKEN_TTL_S),
    REFRESH_ABSOLUTE_TTL_S: String(REFRESH_ABSOLUTE_TTL_S),
    // RAISED FOR BENCHMARKING (defaults 50/s and a burst of 100 per connection): load-generator
    // clients send far faster than a person, and the run measures message throughput, not the
    // limiter answering RATE_LIMITED. These are the largest values the config accepts.
    WS_MAX_MESSAGES_PER_SECOND: '100000',
    WS_MAX_BURST: '100000',
    // RAISED FOR BENCHMARKING (default 600/min per client IP): every autocannon request comes from
    // 127.0.0.1, so the default would turn the REST scenario into 429s within a second. 1 000 000 is
    // the config's maximum (16 666 req/s averaged over the minute window).
    RATE_LIMIT_PER_MINUTE: '1000000',
    // RAISED FOR BENCHMARKING (default 30 transfers per user per minute): the transfer scenario
    // sends as fast as the server takes them, from a few users. The config's maximum.
    TRANSFERS_PER_MINUTE: '100000',
    // RAISED FOR BENCHMARKING (defaults 10 per account, 100 per IP): login attempts are counted
    // *before* the password check and given back after a success, so N concurrent logins of one
    // account briefly count N; with autocannon's concurrency the defaults would answer 429. Both
    // are the config's maxima; a run with more than 1000 concurrent logins of one account would
    // still see 429s.
    LOGIN_MAX_FAILURES: '1000',
    LOGIN_IP_MAX_FAILURES: '100000',
    // RAISED FOR BENCHMARKING (defaults 20 upgrades/s with a burst of 40 per client IP, 20 sockets
    // per user per node): the load generator opens thousands of sockets from a few 127.0.0.x
    // addresses within seconds, and reconnects them together. These are the config's maxima.
    WS_UPGRADES_PER_IP_PER_SECOND: '1000000',
    WS_UPGRADE_BURST_PER_IP: '1000000',
    // Autocannon's connections all come from 127.0.0.1 (default cap 256 per IP).
    HTTP_MAX_CONNECTIONS_PER_IP: '1000000',
    WS_MAX_CONNECTIONS_PER_IP: '1000000',
    WS_MAX_SOCKETS_PER_USER: '100000',
  };
}

/** pids of every process whose parent is `parent` (one /proc scan). */
function childrenOf(parent: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // Fields after the command name (which may hold spaces and parentheses): state, ppid, …
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) === parent) out.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

function postmasterPid(dataDir: string): number | undefined {
  try {
    const pid = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    return Number.isInteger(pid) && pid > 0 && existsSync(`/proc/${pid}`) ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** NODE_ID from a process's environment (a supervisor's copy gets `<NODE_ID>-g<i>` from cluster.fork). */
function nodeIdOf(pid: number): string | undefined {
  try {
    const env = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
    return env.find((entry) => entry.startsWith('NODE_ID='))?.slice('NODE_ID='.length);
  } catch {
    return undefined;
  }
}

/**
 * GET /health/live on a new connection each time (agent: false): node:cluster hands connections,
 * not requests, round-robin to the copies, so a kept-alive connection would always ask the same one.
 */
function liveOnFreshConnection(httpUrl: string): Promise<{ nodeId?: string } | undefined> {
  return new Promise((resolveLive) => {
    const request = httpGet(`${httpUrl}/health/live`, { agent: false, timeout: 2_000 }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        text += chunk;
      });
      response.on('end', () => {
        try {
          resolveLive(JSON.parse(text) as { nodeId?: string });
        } catch {
          resolveLive(undefined);
        }
      });
    });
    request.on('error', () => resolveLive(undefined));
    request.on('timeout', () => request.destroy());
  });
}

/** Resolves once every node id in `nodeIds` has answered /health/live, or false after `timeoutMs`. */
async function waitForCopies(
  httpUrl: string,
  nodeIds: readonly string[],
  timeoutMs: number,
): Promise<boolean> {
  const seen = new Set<string>();
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const live = await liveOnFreshConnection(httpUrl);
    if (live?.nodeId !== undefined) seen.add(live.nodeId);
    if (nodeIds.every((id) => seen.has(id))) return true;
    await sleep(50);
  }
  return false;
}

async function waitForExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return true;
  return Promise.race([
    new Promise<boolean>((done) => child.once('exit', () => done(true))),
    sleep(timeoutMs).then(() => false),
  ]);
}

/** prom-client's event-loop delay sampling interval (`eventLoopMonitoringPrecision`, default), ms. */
const PROM_LOOP_RESOLUTION_MS = 10;

/** The production entry point, built from this checkout. */
const BUILT_ENTRY = join('dist', 'src', 'bin', 'main.js');

/**
 * Builds the server as the Docker image does (`npm run build`: tsc into dist/) and returns its entry
 * point, relative to the repository root. Call once per bench run; the build is ~5–11 s here.
 * `quick` (CI's smoke run, which checks only that every scenario yields numbers) compiles the same
 * files with esbuild into the same layout instead, in ~1 s.
 */
export async function buildGigwire(quick = false): Promise<string> {
  const started = Date.now();
  rmSync(join(REPO_ROOT, 'dist'), { recursive: true, force: true });
  if (quick) {
    await buildQuickly();
    process.stderr.write(
      `[gigwire] built the server (esbuild, quick) in ${((Date.now() - started) / 1000).toFixed(1)} s\n`,
    );
    return BUILT_ENTRY;
  }
  await new Promise<void>((resolveBuild, reject) => {
    // --noCheck: tsc's output without its type check (`npm run typecheck` does that; here it was
    // ~20 of the build's ~26 s in CI). The same JavaScript as the Docker image's `npm run build`.
    const build = spawn('npm', ['run', '-s', 'build', '--', '--noCheck'], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    build.on('error', reject);
    build.on('exit', (code) =>
      code === 0 ? resolveBuild() : reject(new Error(`npm run build exited with ${code}`)),
    );
  });
  if (!existsSync(join(REPO_ROOT, BUILT_ENTRY))) throw new Error(`npm run build made no ${BUILT_ENTRY}`);
  process.stderr.write(
    `[gigwire] built the server (npm run build -- --noCheck) in ${((Date.now() - started) / 1000).toFixed(1)} s\n`,
  );
  return BUILT_ENTRY;
}

async function buildQuickly(): Promise<void> {
  const sources = ['src', 'protocol/src'].flatMap((dir) =>
    readdirSync(join(REPO_ROOT, dir), { recursive: true, encoding: 'utf8' })
      .filter((file) => file.endsWith('.ts') && !file.endsWith('.test.ts') && !file.endsWith('.d.ts'))
      .map((file) => join(REPO_ROOT, dir, file)),
  );
  await esbuild({
    entryPoints: sources,
    outdir: join(REPO_ROOT, 'dist'),
    outbase: REPO_ROOT,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    logLevel: 'error',
  });
  if (!existsSync(join(REPO_ROOT, BUILT_ENTRY))) throw new Error(`esbuild made no ${BUILT_ENTRY}`);
}

export async function startGigwire(options: {
  readonly quick: boolean;
  /** The built entry point (`buildGigwire`); built here when absent. */
  readonly entry?: string;
  /** Writes a V8 CPU profile of the server there when it stops. */
  readonly profileDir?: string | undefined;
  /** GATEWAY_PROCESSES: 1 (default) or more copies under a supervisor. */
  readonly processes?: number;
}): Promise<GigwireTarget> {
  const processes = options.processes ?? 1;
  const entry = options.entry ?? (await buildGigwire());
  // `quick` changes nothing here: the server is the same; the orchestrator makes the load smaller.
  void options.quick;
  const startedAt = Date.now();
  const dir = mkdtempSync(join(tmpdir(), 'gigwire-bench-'));
  // The postgres user must be able to traverse every parent directory of its cluster.
  chmodSync(dir, 0o755);
  const benchLog = createLogger({ level: 'warn', pretty: false });

  let redis: RedisServer | undefined;
  let postgres: PostgresServer | undefined;
  let server: ChildProcess | undefined;
  let stopped = false;
  const pgDataDir = join(dir, 'pg', 'data');

  // Last resort if the orchestrator dies without calling stop(): leave no server behind.
  const onExit = () => {
    if (stopped) return;
    for (const pid of [server?.pid, redis?.process().pid, postmasterPid(pgDataDir)]) {
      if (pid === undefined) continue;
      try {
        // SIGQUIT is PostgreSQL's immediate shutdown; SIGKILL for the others.
        process.kill(pid, pid === postmasterPid(pgDataDir) ? 'SIGQUIT' : 'SIGKILL');
      } catch {
        // already gone
      }
    }
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', onExit);

  const teardown = async () => {
    if (stopped) return;
    stopped = true;
    process.removeListener('exit', onExit);
    if (server !== undefined && server.exitCode === null && server.signalCode === null) {
      server.kill('SIGTERM');
      if (!(await waitForExit(server, STOP_TIMEOUT_MS))) {
        server.kill('SIGKILL');
        await waitForExit(server, 2_000);
      }
    }
    await Promise.allSettled([redis?.stop(), postgres?.stop()]);
    rmSync(dir, { recursive: true, force: true });
  };

  // Server output: kept for error messages; errors and gc-done lines acted on.
  const tail: string[] = [];
  /** gc-done lines seen (from the one process, or from any copy). */
  let gcDone = 0;
  const gcListeners = new Set<() => void>();
  const onLine = (stream: 'out' | 'err', line: string) => {
    if (line.trim() === '') return;
    if (/^gc-done \d+/.test(line.trim())) {
      gcDone += 1;
      for (const listener of gcListeners) listener();
      return;
    }
    tail.push(line);
    if (tail.length > 200) tail.shift();
    // pino levels: 50 error, 60 fatal. Everything on stderr is unexpected too.
    if (stream === 'err' || /"level":(5|6)0/.test(line)) process.stderr.write(`[gigwire] ${line}\n`);
  };
  const tailText = () => tail.slice(-30).join('\n');

  try {
    const passwordHash = createPasswordHasher().hash(BENCH_PASSWORD);
    [redis, postgres] = await Promise.all([
      startRedisServer(join(dir, 'redis')),
      startPostgresServer(join(dir, 'pg'), { durable: true }),
    ]);
    const admin = new pg.Client({ connectionString: `${postgres.baseUrl}/postgres` });
    await admin.connect();
    await admin.query(`create database ${DATABASE}`);
    await admin.end();
    const databaseUrl = `${postgres.baseUrl}/${DATABASE}`;
    const storageReadyMs = Date.now() - startedAt;

    const ports = { http: await freePort(), ws: await freePort() };
    const child = spawn(
      'taskset',
      [
        '-c',
        // Several copies boot on both cores (the load core is idle before any scenario), then move
        // to the server core with all their threads before anything is measured (below).
        processes > 1 ? BOOT_CPUS : SERVER_CPU,
        process.execPath,
        '--expose-gc',
        ...(options.profileDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${options.profileDir}`]),
        '--import',
        './bench/targets/gc-hook.mjs',
        entry,
      ],
      {
        cwd: REPO_ROOT,
        env: serverEnv(ports, databaseUrl, redis.url, dir, processes),
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    server = child;
    createInterface({ input: child.stdout }).on('line', (line) => onLine('out', line));
    createInterface({ input: child.stderr }).on('line', (line) => onLine('err', line));
    child.on('exit', (code, signal) => {
      if (!stopped)
        process.stderr.write(`[gigwire] server exited unexpectedly (code ${code}, signal ${signal})\n`);
    });
    const pid = child.pid;
    if (pid === undefined) throw new Error('could not spawn taskset/node');

    const httpUrl = `http://127.0.0.1:${ports.http}`;
    /** The group commit histogram's bucket counts at the previous `eventLoopLag` call. */
    const commitBuckets = new Map<string, number>();
    const sendBuckets = new Map<string, number>();
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`gigwire exited during start (code ${child.exitCode}):\n${tailText()}`);
      }
      const ready = await fetch(`${httpUrl}/health/ready`).then(
        (res) => res.status === 200,
        () => false,
      );
      if (ready) break;
      if (Date.now() > deadline)
        throw new Error(`gigwire not ready within ${READY_TIMEOUT_MS} ms:\n${tailText()}`);
      await sleep(100);
    }

    const copies = () => childrenOf(pid).sort((a, b) => a - b);
    if (processes > 1) {
      const nodeIds = Array.from({ length: processes }, (_, i) => `bench-gigwire-g${i + 1}`);
      if (!(await waitForCopies(httpUrl, nodeIds, READY_TIMEOUT_MS)))
        throw new Error(`not every copy of ${nodeIds.join(', ')} answered:\n${tailText()}`);
      // The supervisor first: a copy it restarts later (crash) inherits the server core.
      pinAllThreads(pid, SERVER_CPU);
      for (const copy of copies()) pinAllThreads(copy, SERVER_CPU);
    }
    // The measured pid must be node itself (taskset execs), pinned, and serving /ws with native uWS.
    const comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
    const cpus = /Cpus_allowed_list:\s*(\S+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    if (comm !== 'node' || cpus !== SERVER_CPU) {
      throw new Error(`pid ${pid} is ${comm} on CPUs ${cpus}, expected node on ${SERVER_CPU}`);
    }
    if (processes > 1) {
      for (const copy of copies()) {
        const copyCpus = /Cpus_allowed_list:\s*(\S+)/.exec(readFileSync(`/proc/${copy}/status`, 'utf8'))?.[1];
        if (copyCpus !== SERVER_CPU)
          throw new Error(`copy ${copy} runs on CPUs ${copyCpus}, expected ${SERVER_CPU}`);
      }
    }
    const live = (await (await fetch(`${httpUrl}/health/live`)).json()) as {
      role?: string;
      websocket?: { engine?: string; detail?: string; wsPort?: number };
    };
    if (live.role !== 'all' || live.websocket?.engine !== 'uws' || live.websocket.wsPort !== ports.ws) {
      throw new Error(`gigwire is not serving native uWebSockets.js on ${ports.ws}: ${JSON.stringify(live)}`);
    }
    const auxPids = () => {
      const pids: number[] = [];
      const postmaster = postmasterPid(pgDataDir);
      if (postmaster !== undefined) pids.push(postmaster, ...childrenOf(postmaster));
      const redisPid = redis?.process().pid;
      if (redisPid !== undefined && existsSync(`/proc/${redisPid}`)) pids.push(redisPid);
      return pids;
    };
    // Postgres and Redis are the server side too: on the server's core, never on the load
    // generator's (backends forked later inherit the postmaster's affinity).
    for (const auxPid of auxPids()) pinProcess(auxPid, SERVER_CPU);
    const wsUrl = `ws://127.0.0.1:${ports.ws}/ws`;
    const hash = await passwordHash;

    const withDb = async <T>(use: (handle: DbHandle) => Promise<T>): Promise<T> => {
      // A short-lived pool per call: no idle bench connections stay among the sampled postgres pids.
      const handle = await createDb({ kind: 'postgres', url: databaseUrl, poolMax: 2 }, benchLog);
      try {
        return await use(handle);
      } finally {
        await handle.close();
      }
    };

    let nextIndex = 0;
    const makeCredentials = (count: number) =>
      withDb(async ({ db }) => {
        const firstIndex = nextIndex;
        nextIndex += count;
        const sessions = await insertUsersWithSessions(db, {
          firstIndex,
          count,
          passwordHash: hash,
          sessionAbsoluteTtlS: REFRESH_ABSOLUTE_TTL_S,
        });
        // gigwire's token service on the same database: the server's signing key (created at its
        // first start), the server's issuer, audience and TTL.
        const tokens = createTokenService(
          db,
          {
            issuer: JWT_ISSUER,
            audience: JWT_AUDIENCE,
            accessTtlS: ACCESS_TOKEN_TTL_S,
            privateKey: undefined,
          },
          systemClock,
        );
        return mintAccessTokens(tokens, sessions);
      });

    // The user of loginBody (bench_0); its token is also the self-check of the minting path.
    const [loginUser] = await makeCredentials(1);
    if (loginUser === undefined) throw new Error('could not seed the login user');
    const me = await fetch(`${httpUrl}/v1/me`, { headers: { authorization: `Bearer ${loginUser.token}` } });
    if (me.status !== 200) {
      throw new Error(`a minted token was refused by GET /v1/me: ${me.status} ${await me.text()}`);
    }
    const loginBody = JSON.stringify({ login: benchEmail(0), password: BENCH_PASSWORD });
    benchLog.debug({ storageReadyMs, readyMs: Date.now() - startedAt }, 'gigwire target up');

    let gcChain: Promise<void> = Promise.resolve();
    const gcOnce = async () => {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error('gigwire is not running');
      const signalled = processes > 1 ? copies() : [pid];
      const target = gcDone + signalled.length;
      let listener: (() => void) | undefined;
      let timer: NodeJS.Timeout | undefined;
      try {
        await new Promise<void>((done, fail) => {
          listener = () => {
            if (gcDone >= target) done();
          };
          gcListeners.add(listener);
          timer = setTimeout(() => fail(new Error(`no gc-done within ${GC_TIMEOUT_MS} ms`)), GC_TIMEOUT_MS);
          for (const one of signalled) process.kill(one, 'SIGUSR2');
        });
      } finally {
        if (listener !== undefined) gcListeners.delete(listener);
        clearTimeout(timer);
      }
    };

    const crash = async () => {
      const victim = copies()[0];
      if (processes < 2 || victim === undefined) throw new Error('crash needs a supervised copy to kill');
      const nodeId = nodeIdOf(victim);
      const killedAt = performance.now();
      process.kill(victim, 'SIGKILL');
      // Replaced = the restarted copy (same NODE_ID, new pid) answers /health/live.
      for (;;) {
        await sleep(100);
        const fresh = copies().filter((one) => one !== victim);
        if (
          fresh.length >= processes &&
          (await waitForCopies(httpUrl, nodeId === undefined ? [] : [nodeId], 500))
        )
          return { killedPid: victim, replacedMs: performance.now() - killedAt };
        if (performance.now() - killedAt > READY_TIMEOUT_MS) return { killedPid: victim, replacedMs: null };
      }
    };

    return {
      name: processes > 1 ? 'gigwire2' : 'gigwire',
      wsUrl,
      httpUrl,
      eventLoopLag: () => readEventLoopLag(httpUrl, { commit: commitBuckets, send: sendBuckets }),
      pid,
      serverPids: () => [pid, ...copies()],
      ...(processes > 1 ? { crash } : {}),
      loginBody,
      auxPids,
      credentials: (count: number): Promise<ClientCredential[]> => {
        if (!Number.isInteger(count) || count < 0) throw new Error(`credentials: bad count ${count}`);
        return count === 0 ? Promise.resolve([]) : makeCredentials(count);
      },
      prepareRooms: (credentials, rooms, membersPerRoom) =>
        withDb(({ db }) => insertGroupRooms(db, credentials, rooms, membersPerRoom)),
      fundWallets: (credentials, amount) =>
        withDb(async ({ db }) => {
          // The ledger's own top-up (provider clearing → wallet), as a settled card payment posts it;
          // the server runs with the default CURRENCY and PLATFORM_FEE_BPS (serverEnv sets neither).
          const deps = {
            db,
            clock: systemClock,
            settings: {
              currency: settings.CURRENCY.default ?? 'USD',
              platformFeeBps: Number(settings.PLATFORM_FEE_BPS.default),
            },
          };
          for (const credential of credentials) {
            await topUp(deps, {
              opKey: `bench-fund:${randomUUID()}`,
              userId: credential.userId as UserId,
              amount: BigInt(amount),
            });
          }
        }),
      checkLedger: () =>
        withDb(async ({ db }) => {
          // gigwire's own auditor (every invariant of issue 11, one REPEATABLE READ snapshot).
          const report = await auditLedger(db);
          const row = await db
            .selectFrom('ledger_transactions')
            .select((eb) => eb.fn.countAll<string>().as('n'))
            .where('kind', '=', 'transfer')
            .executeTakeFirstOrThrow();
          return {
            findings: report.findings.map(
              (finding) => `${finding.invariant} ${finding.message} ${JSON.stringify(finding.details)}`,
            ),
            transfers: Number(row.n),
          };
        }),
      gc: () => {
        // One signal at a time: two SIGUSR2 pending at once would be delivered as one.
        const next = gcChain.then(gcOnce);
        gcChain = next.catch(() => undefined);
        return next;
      },
      stop: teardown,
    };
  } catch (error) {
    await teardown();
    throw error;
  }
}

/**
 * The p99 of a histogram's observations since the previous call, in ms, as the upper bound of the
 * bucket that holds it (`since`: the cumulative bucket counts then, updated here); null when none.
 */
function p99SinceMs(text: string, name: string, since: Map<string, number>): number | null {
  // Under GATEWAY_PROCESSES every copy's series is there (one per `node`): summed per bucket.
  const counts = new Map<string, number>();
  for (const match of text.matchAll(
    new RegExp(`^${name}_bucket\\{le="([^"]+)"[^}]*\\} ([0-9.e+]+)$`, 'gm'),
  )) {
    const le = match[1] ?? '';
    counts.set(le, (counts.get(le) ?? 0) + Number(match[2]));
  }
  const buckets = [...counts].map(([le, count]) => ({ le, count }));
  const added = buckets.map(({ le, count }) => ({ le, count: count - (since.get(le) ?? 0) }));
  for (const { le, count } of buckets) since.set(le, count);
  const total = added.at(-1)?.count ?? 0;
  const bound = added.find(({ count }) => count >= 0.99 * total)?.le;
  return total === 0 || bound === undefined ? null : Number(bound) * 1000;
}

/**
 * The server's event-loop delay (prom-client restarts its histogram at every scrape), and since the
 * previous call the p99 of the group commit's statements and of the room sends' arrival → ack.
 */
async function readEventLoopLag(
  httpUrl: string,
  since: { readonly commit: Map<string, number>; readonly send: Map<string, number> },
): Promise<{ p99Ms: number; maxMs: number; commitP99Ms: number | null; sendP99Ms: number | null } | null> {
  try {
    const text = await (await fetch(`${httpUrl}/metrics`)).text();
    // The worst copy's under GATEWAY_PROCESSES (every copy's series is there, one per `node`).
    const seconds = (name: string) => {
      const values = [...text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, 'gm'))].map(
        (match) => Number(match[1]),
      );
      return values.length === 0 ? Number.NaN : Math.max(...values);
    };
    const p99 = seconds('nodejs_eventloop_lag_p99_seconds');
    const max = seconds('nodejs_eventloop_lag_max_seconds');
    const commitP99Ms = p99SinceMs(text, 'gigwire_room_group_commit_seconds', since.commit);
    const sendP99Ms = p99SinceMs(text, 'gigwire_room_send_seconds', since.send);
    // prom-client's histogram records whole timer intervals of its 10 ms sampling (an idle loop
    // reads ~10.2 ms): the lag is what exceeds the interval.
    const lagMs = (valueSeconds: number) => Math.max(0, valueSeconds * 1000 - PROM_LOOP_RESOLUTION_MS);
    return Number.isFinite(p99) && Number.isFinite(max)
      ? { p99Ms: lagMs(p99), maxMs: lagMs(max), commitP99Ms, sendP99Ms }
      : null;
  } catch {
    return null;
  }
}
