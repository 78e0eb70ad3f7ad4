/**
 * One process at a time may use DATA_DIR: PGlite and the managed redis-server are single-process
 * stores, and a second process opening them would corrupt the data. Several processes need
 * DATABASE_URL and REDIS_URL (see the README's "Scaling").
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeDirectories } from './directories.js';

export class DataDirBusyError extends Error {
  override readonly name = 'DataDirBusyError';
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * When the process `pid` started (clock ticks since boot, field 22 of /proc/<pid>/stat), or
 * undefined where there is no /proc. With the pid it names one process for good: a pid is reused,
 * a pid and its start time are not (until a reboot, after which the lock's start is another
 * process's too, and the comparison with the live one fails as it should).
 */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces: count after the last `)`.
    const start = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
    return start !== undefined && /^\d+$/.test(start) ? start : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Whether the lock's holder still runs. A live process under the holder's pid is the holder only
 * when it started when the lock says: after a crash or a power cut the pid in the lock may belong
 * to anything else by now (after a reboot pids start over), and that refused every start on this
 * DATA_DIR, "in use by gigwire process N", until someone deleted the lock by hand (review 31).
 * A lock without a start time (written by an earlier version) is judged by the pid alone.
 */
function holderRuns(pid: number, startedAt: string | undefined): boolean {
  if (!isRunning(pid)) return false;
  if (startedAt === undefined || startedAt === '') return true;
  const now = processStartTime(pid);
  return now === undefined || now === startedAt;
}

/** Takes the lock or throws DataDirBusyError (one line). Returns the release function. */
export function lockDataDir(dataDir: string, pid: number): () => void {
  makeDirectories(dataDir);
  const lockFile = join(dataDir, 'gigwire.lock');
  const content = `${pid}\n${processStartTime(pid) ?? ''}\n`;
  try {
    writeFileSync(lockFile, content, { flag: 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    const [holderText = '', startedAt] = readFileSync(lockFile, 'utf8').split('\n');
    const holder = Number.parseInt(holderText.trim(), 10);
    if (Number.isInteger(holder) && holder !== pid && holderRuns(holder, startedAt?.trim())) {
      throw new DataDirBusyError(
        `${dataDir} is in use by gigwire process ${holder}: stop it, or give this process its own DATA_DIR, or set DATABASE_URL and REDIS_URL`,
      );
    }
    // The holder is gone (crash, SIGKILL, a reboot): the lock is stale.
    writeFileSync(lockFile, content);
  }
  return () => rmSync(lockFile, { force: true });
}
