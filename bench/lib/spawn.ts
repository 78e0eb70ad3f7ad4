/**
 * Starting benchmark processes: CPU pinning with `taskset` (server on core 0, load generator on
 * core 1, when the machine has them and taskset exists), a line reader over a child's stdout, and a
 * polite stop (SIGTERM, then SIGKILL after a grace period).
 */
import { type ChildProcess, execFileSync } from 'node:child_process';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';

/** The repository root (bench/lib/../..), the working directory of every spawned process. */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export const SERVER_CORE = '0';
export const LOAD_CORE = '1';

let tasksetAvailable: boolean | undefined;

function canPin(): boolean {
  if (tasksetAvailable === undefined) {
    try {
      execFileSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' });
      tasksetAvailable = cpus().length >= 2;
    } catch {
      tasksetAvailable = false;
    }
  }
  return tasksetAvailable;
}

/** The command and arguments running `argv` pinned to `core` (unpinned when pinning is unavailable). */
export function pinned(core: string, argv: readonly string[]): { command: string; args: string[] } {
  const [command, ...args] = argv;
  if (command === undefined) throw new Error('empty command');
  return canPin() ? { command: 'taskset', args: ['-c', core, command, ...args] } : { command, args };
}

/** Pins an already running process (e.g. the orchestrator itself) to `core`; false if not possible. */
export function pinProcess(pid: number, core: string): boolean {
  if (!canPin()) return false;
  try {
    execFileSync('taskset', ['-cp', core, String(pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Node with TypeScript support, for `pinned(core, [...nodeTs, 'file.ts'])`. */
export const NODE_TS: readonly string[] = [process.execPath, '--import', 'tsx'];

/** Calls `onLine` for every line the child writes to stdout (the child must be spawned with a stdout pipe). */
export function onLines(child: ChildProcess, onLine: (line: string) => void): void {
  let buffered = '';
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', (chunk: string) => {
    buffered += chunk;
    let newline = buffered.indexOf('\n');
    while (newline >= 0) {
      onLine(buffered.slice(0, newline));
      buffered = buffered.slice(newline + 1);
      newline = buffered.indexOf('\n');
    }
  });
}

/** Resolves with the first stdout line matching `pattern`, rejects on exit or timeout. */
export function waitForLine(
  child: ChildProcess,
  pattern: RegExp,
  timeoutMs: number,
): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${pattern}`));
    }, timeoutMs);
    const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
      cleanup();
      reject(new Error(`process exited (${code ?? signal}) before printing ${pattern}`));
    };
    const listener = (line: string) => {
      const match = pattern.exec(line);
      if (match === null) return;
      cleanup();
      resolve(match);
    };
    const lineListeners = lineListenersOf(child);
    const cleanup = () => {
      clearTimeout(timer);
      child.off('exit', onExit);
      lineListeners.delete(listener);
    };
    child.once('exit', onExit);
    lineListeners.add(listener);
  });
}

const lineListenerSets = new WeakMap<ChildProcess, Set<(line: string) => void>>();

/** The set of line listeners of a child; the first call attaches the stdout reader. */
export function lineListenersOf(child: ChildProcess): Set<(line: string) => void> {
  let listeners = lineListenerSets.get(child);
  if (listeners === undefined) {
    const set = new Set<(line: string) => void>();
    listeners = set;
    lineListenerSets.set(child, set);
    onLines(child, (line) => {
      for (const listener of [...set]) listener(line);
    });
  }
  return listeners;
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves when the process has exited. */
export function stopProcess(child: ChildProcess, graceMs = 5_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
