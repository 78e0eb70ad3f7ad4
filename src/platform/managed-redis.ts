/**
 * The embedded Redis default: when REDIS_URL is unset, gigwire runs `redis-server` as its own child,
 * listening only on a unix socket (mode 700) with append-only persistence under DATA_DIR/redis.
 * The child is restarted with backoff if it dies, and stopped (SIGTERM, then SIGKILL) when we stop.
 *
 * It runs in its own process group (detached), so Ctrl-C, which the terminal sends to its whole
 * foreground group, reaches gigwire only: gigwire stops redis in its place in the shutdown order
 * (after the clients have quit and the database has closed), and never restarts it once shutdown has
 * begun. The price of detaching: a child whose parent is SIGKILLed keeps running (as it did before,
 * since SIGKILL is not passed on either); it is found through its pidfile and stopped at the next
 * start on the same DATA_DIR.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { makeDirectories } from './directories.js';
import type { Logger } from './logger.js';

/** Longest unix socket path we use; the kernel limit (sun_path) is 107 bytes. */
const MAX_SOCKET_PATH = 100;
const START_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5_000;
const MAX_RESTART_DELAY_MS = 5_000;

export interface ManagedRedisOptions {
  readonly redisServerPath: string;
  /** Directory that holds the AOF files, the pidfile and (when short enough) the socket. */
  readonly dir: string;
  readonly log: Logger;
  /** Aborted when the process begins to shut down: a child that exits after it is not restarted. */
  readonly shutdown?: AbortSignal;
}

export interface ManagedRedis {
  /** Absolute unix socket path; ioredis accepts it in place of a URL. */
  readonly endpoint: string;
  /** Pid of the current child, undefined while it is being restarted. */
  readonly pid: () => number | undefined;
  readonly stop: () => Promise<void>;
}

/** Sends PING over the socket and resolves true on +PONG. */
function pingSocket(path: string, timeoutMs: number): Promise<boolean> {
  return new Promise((resolvePromise) => {
    const socket = connect(path);
    const done = (ok: boolean) => {
      socket.destroy();
      resolvePromise(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.on('error', () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (data) => done(data.toString().startsWith('+PONG')));
  });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Stops a redis-server left behind by a previous run that was killed without cleanup. */
async function stopOrphan(pidFile: string, log: Logger): Promise<void> {
  if (!existsSync(pidFile)) return;
  const pid = Number.parseInt(readFileSync(pidFile, 'utf8').trim(), 10);
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return;
  let cmdline = '';
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return;
  }
  if (!cmdline.includes('redis-server')) return;
  log.warn({ pid }, 'stopping a redis-server left running by an earlier gigwire process');
  process.kill(pid, 'SIGTERM');
  for (let waited = 0; waited < STOP_TIMEOUT_MS && isAlive(pid); waited += 50) await sleep(50);
  if (isAlive(pid)) process.kill(pid, 'SIGKILL');
}

function socketPathFor(dir: string): string {
  const inDir = join(dir, 'redis.sock');
  if (inDir.length <= MAX_SOCKET_PATH) return inDir;
  const digest = createHash('sha256').update(dir).digest('hex').slice(0, 16);
  return join(tmpdir(), `gigwire-redis-${digest}.sock`);
}

export async function startManagedRedis(options: ManagedRedisOptions): Promise<ManagedRedis> {
  const { dir, log } = options;
  makeDirectories(dir, 0o700);
  const socketPath = socketPathFor(dir);
  const pidFile = join(dir, 'redis-server.pid');
  await stopOrphan(pidFile, log);
  rmSync(socketPath, { force: true });

  const args = [
    '--port',
    '0',
    '--unixsocket',
    socketPath,
    '--unixsocketperm',
    '700',
    '--dir',
    dir,
    '--pidfile',
    pidFile,
    '--appendonly',
    'yes',
    '--appendfsync',
    'everysec',
    '--save',
    '',
    // BullMQ loses jobs under eviction: refuse writes instead when memory is full.
    '--maxmemory-policy',
    'noeviction',
    '--daemonize',
    'no',
    '--logfile',
    '',
  ];

  let child: ChildProcess | undefined;
  let stopping = false;
  /** Set by stop(): the exit that follows is ours. */
  let stoppedByUs = false;
  let restartDelayMs = 250;
  let restartTimer: NodeJS.Timeout | undefined;

  const waitUntilServing = async (current: ChildProcess) => {
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (current.exitCode !== null || current.signalCode !== null) {
        throw new Error(`redis-server exited during start (code ${current.exitCode ?? current.signalCode})`);
      }
      if (await pingSocket(socketPath, 500)) return;
      await sleep(50);
    }
    throw new Error(`redis-server did not answer on ${socketPath} within ${START_TIMEOUT_MS} ms`);
  };

  const launch = (): ChildProcess => {
    const started = Date.now();
    // detached: its own process group (see the top of this file). Not unref'd: we supervise it.
    const current = spawn(options.redisServerPath, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    const forward = (chunk: Buffer) => {
      for (const line of chunk.toString().split('\n'))
        if (line.trim() !== '') log.debug({ redis: line }, 'redis-server');
    };
    current.stdout?.on('data', forward);
    current.stderr?.on('data', forward);
    current.on('error', (error) => log.error({ err: error }, 'redis-server could not be started'));
    current.on('exit', (code, signal) => {
      if (child === current) child = undefined;
      if (stopping) {
        if (options.shutdown?.aborted === true && !stoppedByUs)
          log.warn({ code, signal }, 'managed redis-server exited during shutdown; not restarting it');
        return;
      }
      // A child that ran a while had a healthy spell: start the backoff over.
      if (Date.now() - started > 30_000) restartDelayMs = 250;
      log.warn({ code, signal, restartInMs: restartDelayMs }, 'managed redis-server exited; restarting it');
      restartTimer = setTimeout(() => {
        restartTimer = undefined;
        if (stopping) return;
        const next = launch();
        child = next;
        waitUntilServing(next).then(
          () => log.info({ socket: socketPath, pid: next.pid }, 'managed redis-server started'),
          (error: unknown) => log.warn({ err: error }, 'restarted redis-server is not serving'),
        );
      }, restartDelayMs);
      restartDelayMs = Math.min(restartDelayMs * 2, MAX_RESTART_DELAY_MS);
    });
    return current;
  };

  const holdRestarts = () => {
    stopping = true;
    if (restartTimer !== undefined) clearTimeout(restartTimer);
    restartTimer = undefined;
  };
  if (options.shutdown?.aborted === true) holdRestarts();
  options.shutdown?.addEventListener('abort', holdRestarts, { once: true });

  child = launch();
  // Last resort when the process exits without a clean stop (shutdown deadline, fatal error): the
  // signal is sent synchronously, and redis flushes its append-only file and exits on its own.
  const stopOnExit = () => {
    if (child !== undefined && child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  };
  process.once('exit', stopOnExit);
  try {
    await waitUntilServing(child);
  } catch (error) {
    stopping = true;
    child?.kill('SIGKILL');
    throw error;
  }
  log.info({ socket: socketPath, dir, pid: child.pid }, 'managed redis-server started');

  return {
    endpoint: socketPath,
    pid: () => child?.pid,
    stop: async () => {
      holdRestarts();
      stoppedByUs = true;
      options.shutdown?.removeEventListener('abort', holdRestarts);
      process.removeListener('exit', stopOnExit);
      const current = child;
      if (current === undefined || current.exitCode !== null || current.signalCode !== null) return;
      const exited = new Promise<void>((resolvePromise) => current.once('exit', () => resolvePromise()));
      // SIGTERM makes redis flush the append-only file before it exits.
      current.kill('SIGTERM');
      const timeout = sleep(STOP_TIMEOUT_MS).then(() => 'timeout' as const);
      if ((await Promise.race([exited, timeout])) === 'timeout') {
        log.warn('redis-server did not stop in time; killing it');
        current.kill('SIGKILL');
        await exited;
      }
      log.info('managed redis-server stopped');
    },
  };
}
