/**
 * Real PostgreSQL and Redis servers for the test suite, started as plain processes (no Docker here)
 * on free loopback ports in a temp directory. Missing Debian packages are installed when running as
 * root. Used by the global setup (one PostgreSQL and one Redis per run) and by tests that need a
 * Redis of their own to kill and restart.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { ensureProgram } from '../../src/platform/system-packages.js';

const run = promisify(execFile);
const isRoot = process.getuid?.() === 0;
const searchPath = process.env.PATH ?? '/usr/bin:/bin';

/**
 * A port that was free a moment ago. Picked below the kernel's ephemeral range, so the outgoing
 * connections of the run (every client socket to PostgreSQL and Redis takes a local port from that
 * range) cannot take it between the pick and the child's bind; each Vitest worker draws from its
 * own block of that space and never hands out the same port twice, so parallel files do not collide
 * either. (Picking with `listen(0)` took a port from the ephemeral range itself: a spawned node then
 * failed with EADDRINUSE when a client socket had taken it in between.)
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt += 1) {
    const port = nextCandidatePort();
    if (await canListen(port)) return port;
  }
  throw new Error("freePort: no free port in this worker's block below the ephemeral range");
}

const portsHandedOut = new Set<number>();
const PORT_BLOCK_SIZE = 1_000;
const PORT_BLOCKS = 12;

function nextCandidatePort(): number {
  const ephemeralLow = ephemeralRangeLow();
  const spaceStart = Math.max(1_024, ephemeralLow - PORT_BLOCK_SIZE * PORT_BLOCKS);
  const workerIndex = Number.parseInt(process.env.VITEST_POOL_ID ?? '', 10);
  const block = Number.isFinite(workerIndex) ? workerIndex % PORT_BLOCKS : randomInt(PORT_BLOCKS);
  const blockStart = spaceStart + block * PORT_BLOCK_SIZE;
  for (;;) {
    const port = blockStart + randomInt(PORT_BLOCK_SIZE);
    if (port < ephemeralLow && !portsHandedOut.has(port)) {
      portsHandedOut.add(port);
      return port;
    }
  }
}

function ephemeralRangeLow(): number {
  try {
    const range = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8');
    const low = Number.parseInt(range.trim().split(/\s+/)[0] ?? '', 10);
    return Number.isFinite(low) && low > 2_048 ? low : 32_768;
  } catch {
    return 32_768;
  }
}

function randomInt(bound: number): number {
  return Math.floor(Math.random() * bound);
}

/** Binds the wildcard address: that fails too when something listens on 127.0.0.1 at this port. */
function canListen(port: number): Promise<boolean> {
  return new Promise((resolveFree) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolveFree(false));
    server.listen(port, '0.0.0.0', () => server.close(() => resolveFree(true)));
  });
}

export async function ensureRedisServer(): Promise<string> {
  return ensureProgram(
    { command: 'redis-server', debianPackage: 'redis-server' },
    { install: isRoot, searchPath },
  );
}

function postgresBinDirs(): string[] {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .filter((version) => Number(version) >= 15)
    .sort((a, b) => Number(b) - Number(a))
    .map((version) => join(root, version, 'bin'));
}

export async function ensurePostgresBinaries(): Promise<string> {
  const initdb = await ensureProgram(
    {
      command: 'initdb',
      debianPackage: 'postgresql',
      extraPaths: postgresBinDirs().map((d) => join(d, 'initdb')),
    },
    { install: isRoot, searchPath: '' },
  );
  return join(initdb, '..');
}

export interface RedisServer {
  readonly url: string;
  readonly port: number;
  readonly process: () => ChildProcess;
  /** SIGKILL, as a crash would. */
  readonly kill: () => Promise<void>;
  /** Starts it again on the same port (after `kill`). */
  readonly restart: () => Promise<void>;
  readonly stop: () => Promise<void>;
}

async function waitForExit(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise<void>((resolveExit) => child.once('exit', () => resolveExit()));
}

/** A throwaway redis-server on a free loopback port, without persistence. */
export async function startRedisServer(dir: string): Promise<RedisServer> {
  const binary = await ensureRedisServer();
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const args = ['--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no'];
  const launch = async () => {
    const child = spawn(binary, [...args, '--dir', dir, '--maxmemory-policy', 'noeviction'], {
      stdio: 'ignore',
    });
    for (let i = 0; i < 100; i++) {
      try {
        const { stdout } = await run('redis-cli', ['-p', String(port), 'ping']);
        if (stdout.trim() === 'PONG') return child;
      } catch {
        // not up yet
      }
      if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}`);
      await sleep(50);
    }
    throw new Error('redis-server did not start');
  };
  let child = await launch();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    process: () => child,
    kill: async () => {
      child.kill('SIGKILL');
      await waitForExit(child);
    },
    restart: async () => {
      child = await launch();
    },
    stop: async () => {
      child.kill('SIGTERM');
      await waitForExit(child);
    },
  };
}

export interface PostgresServer {
  /** postgres://app@127.0.0.1:<port> (append /<database>). */
  readonly baseUrl: string;
  /** `immediate` (default) aborts sessions as a crash would; `fast` ends them cleanly (pg_ctl -m). */
  readonly stop: (mode?: 'fast' | 'immediate') => Promise<void>;
  /** Starts it again on the same port and data directory (after `stop`). */
  readonly start: () => Promise<void>;
}

/**
 * A throwaway PostgreSQL cluster owned by the `postgres` user when root. Tests run it with fsync
 * and synchronous commit off (test data only); `durable` keeps PostgreSQL's defaults, so a
 * benchmark pays for real commits as production does.
 */
export async function startPostgresServer(
  dir: string,
  options: { readonly durable?: boolean } = {},
): Promise<PostgresServer> {
  const bin = await ensurePostgresBinaries();
  const asOwner = (command: string, args: string[]) =>
    isRoot
      ? run('runuser', ['-u', 'postgres', '--', join(bin, command), ...args])
      : run(join(bin, command), args);
  const dataDir = join(dir, 'data');
  const socketDir = join(dir, 'sock');
  mkdirSync(socketDir, { recursive: true });
  if (isRoot) {
    // initdb refuses to run as root; the cluster belongs to the `postgres` system user.
    const { stdout } = await run('id', ['-u', 'postgres']).catch(async () => {
      await run('useradd', [
        '--system',
        '--home-dir',
        '/nonexistent',
        '--shell',
        '/usr/sbin/nologin',
        'postgres',
      ]);
      return run('id', ['-u', 'postgres']);
    });
    const { stdout: gid } = await run('id', ['-g', 'postgres']);
    const uid = Number(stdout.trim());
    chownSync(dir, uid, Number(gid.trim()));
    chownSync(socketDir, uid, Number(gid.trim()));
  }
  await asOwner('initdb', [
    '-D',
    dataDir,
    '-U',
    'app',
    '--auth=trust',
    '-E',
    'UTF8',
    '--locale=C.UTF-8',
    '--no-sync',
  ]);
  const port = await freePort();
  const serverOptions = [
    `-p ${port}`,
    `-k ${socketDir}`,
    '-c listen_addresses=127.0.0.1',
    ...(options.durable ? [] : ['-c fsync=off', '-c synchronous_commit=off', '-c full_page_writes=off']),
    '-c max_connections=300',
  ].join(' ');
  const start = async () => {
    await asOwner('pg_ctl', [
      '-D',
      dataDir,
      '-l',
      join(dir, 'server.log'),
      '-w',
      '-t',
      '30',
      'start',
      '-o',
      serverOptions,
    ]);
  };
  await start();
  return {
    baseUrl: `postgres://app@127.0.0.1:${port}`,
    stop: async (mode = 'immediate') => {
      await asOwner('pg_ctl', ['-D', dataDir, '-m', mode, '-w', 'stop']).catch(() => undefined);
    },
    start,
  };
}
