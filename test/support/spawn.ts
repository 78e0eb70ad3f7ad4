/**
 * Runs gigwire as a child process as `npm start` does (the same node flags and entry file, read from
 * package.json, run from the run's compiled build: test/support/child-build.ts), or `npm start`
 * itself, with only the environment a test gives it. Collects its output, finds its
 * URL in the "is up" log line, and stops it with a signal, reporting exit code and time taken.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const projectRoot = resolve(import.meta.dirname, '../..');

/**
 * `npm start` without npm: the arguments after `node` in package.json's start script (which is
 * `exec node …`, so the shell npm runs it in is replaced by node and node gets npm's signals).
 */
function startArguments(): string[] {
  const pkg = JSON.parse(readFileSync(resolve(projectRoot, 'package.json'), 'utf8')) as {
    scripts: Record<string, string>;
  };
  const words = (pkg.scripts.start ?? '').split(/\s+/);
  const [command, ...args] = words[0] === 'exec' ? words.slice(1) : words;
  if (command !== 'node') throw new Error(`unexpected start script: ${pkg.scripts.start}`);
  return args;
}

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface GigwireProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly stdout: () => string;
  readonly stderr: () => string;
  /** Parsed JSON log lines written so far. */
  readonly logLines: () => Record<string, unknown>[];
  /** Resolves with the first log line matching, or rejects after timeoutMs / on exit. */
  readonly waitForLog: (
    match: (line: Record<string, unknown>) => boolean,
    timeoutMs?: number,
  ) => Promise<Record<string, unknown>>;
  /** Base URL from the "is up" line. */
  readonly waitUntilUp: (timeoutMs?: number) => Promise<string>;
  readonly exited: Promise<Exit>;
  /** Sends the signal and waits for the exit; `ms` is the time from signal to exit. */
  readonly stop: (signal?: NodeJS.Signals, timeoutMs?: number) => Promise<Exit & { readonly ms: number }>;
}

function baseEnv(env: Record<string, string>): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? '/tmp',
    LOG_PRETTY: 'false',
    PORT: '0',
    WS_PORT: '0',
    // Every test connects from 127.0.0.1: the per-IP upgrade rate is lifted unless a test sets it.
    WS_UPGRADES_PER_IP_PER_SECOND: '1000000',
    WS_UPGRADE_BURST_PER_IP: '1000000',
    // Many sockets of many users come from 127.0.0.1: the per-IP cap of REST connections is lifted too.
    HTTP_MAX_CONNECTIONS_PER_IP: '1000000',
    WS_MAX_CONNECTIONS_PER_IP: '1000000',
    // Tests register and sign in many users at once from 127.0.0.1.
    PASSWORD_HASHES_PER_IP: '1000000',
    ...env,
  };
}

/** The start script's entry file and its node flags other than tsx's loader (the build needs none). */
function startCommand(): { readonly flags: string[]; readonly entry: string } {
  const args = startArguments();
  const isTsxLoader = (arg: string, i: number) =>
    (arg === '--import' && args[i + 1] === 'tsx') || (arg === 'tsx' && args[i - 1] === '--import');
  return { flags: args.slice(0, -1).filter((arg, i) => !isTsxLoader(arg, i)), entry: args.at(-1) ?? '' };
}

export function spawnGigwire(env: Record<string, string>, cwd: string = projectRoot): GigwireProcess {
  const { flags, entry } = startCommand();
  const child = spawn(process.execPath, [...flags, ...commandArguments(entry)], {
    cwd,
    env: baseEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return track(child);
}

/**
 * `npm start` itself, through npm and the shell it runs scripts in, as a user types it. `detached`
 * gives it its own process group (pid = npm's pid), like a terminal's foreground job, so a test can
 * send a signal to the whole group as Ctrl-C does. `pid` is npm's; gigwire is its child.
 */
export function spawnNpmStart(
  env: Record<string, string>,
  options: { readonly detached?: boolean } = {},
): GigwireProcess {
  const child = spawn('npm', ['start'], {
    cwd: projectRoot,
    env: baseEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: options.detached ?? false,
  });
  return track(child);
}

function track(child: ChildProcess): GigwireProcess {
  let out = '';
  let err = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    out += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    err += chunk.toString();
  });
  const exited = new Promise<Exit>((resolveExit) =>
    child.once('exit', (code, signal) => resolveExit({ code, signal })),
  );
  let hasExited = false;
  void exited.then(() => {
    hasExited = true;
  });
  const logLines = () =>
    out
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);

  const waitForLog = async (match: (line: Record<string, unknown>) => boolean, timeoutMs = 120_000) => {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const found = logLines().find(match);
      if (found !== undefined) return found;
      if (hasExited)
        throw new Error(`gigwire exited before the expected log line.\nstdout:\n${out}\nstderr:\n${err}`);
      await sleep(50);
    }
    throw new Error(`timed out waiting for a log line.\nstdout:\n${out}\nstderr:\n${err}`);
  };

  return {
    child,
    pid: child.pid ?? -1,
    stdout: () => out,
    stderr: () => err,
    logLines,
    waitForLog,
    waitUntilUp: async (timeoutMs) => {
      const line = await waitForLog(
        (l) => typeof l.msg === 'string' && l.msg.includes(' is up at '),
        timeoutMs,
      );
      return String(line.msg).split(' is up at ')[1] ?? '';
    },
    exited,
    stop: async (signal = 'SIGTERM', timeoutMs = 15_000) => {
      const sentAt = Date.now();
      if (!hasExited) child.kill(signal);
      const result = await Promise.race([exited, sleep(timeoutMs).then(() => undefined)]);
      if (result === undefined) {
        child.kill('SIGKILL');
        throw new Error(`gigwire did not exit within ${timeoutMs} ms of ${signal}`);
      }
      return { ...result, ms: Date.now() - sentAt };
    },
  };
}

/** True while a process with this pid exists. */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Pids of the direct children of a process (from /proc). */
export function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter((s) => s !== '')
      .map(Number);
  } catch {
    return [];
  }
}

/** Polls GET url until `accept(status)` or the timeout; returns the last status and body. */
export async function pollHttp(
  url: string,
  accept: (status: number) => boolean,
  timeoutMs: number,
): Promise<{ status: number; body: unknown; elapsedMs: number }> {
  const started = Date.now();
  let last = { status: 0, body: undefined as unknown, elapsedMs: 0 };
  while (Date.now() - started < timeoutMs) {
    try {
      const response = await fetch(url);
      const text = await response.text();
      last = {
        status: response.status,
        body: text.startsWith('{') ? JSON.parse(text) : text,
        elapsedMs: Date.now() - started,
      };
      if (accept(response.status)) return last;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  return last;
}

/**
 * The run's build of the server for child processes (test/support/child-build.ts), set for each test
 * file by test/support/child-build-setup.ts. Unset (`npm run cluster`, which starts gigwire from
 * these helpers outside Vitest), children run the sources through tsx as `npm start` does.
 */
let childBuildDir: string | undefined;
export function useChildBuild(dir: string | undefined): void {
  childBuildDir = dir === '' ? undefined : dir;
}

/**
 * The node arguments that run `script` (a path like `src/bin/main.ts`, `src/bin/keys-rotate.ts`) as
 * its npm script does: from the build, or through tsx. A test of a command as a user types it
 * (`npm start`, `npm run …`) runs that instead.
 */
export function commandArguments(script: string): string[] {
  if (childBuildDir === undefined) return ['--import', 'tsx', resolve(projectRoot, script)];
  return [join(childBuildDir, script.replace(/\.ts$/, '.js'))];
}
