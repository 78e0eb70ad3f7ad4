/**
 * One process at a time may use DATA_DIR: PGlite and the managed redis-server are single-process
 * stores, and a second process opening them would corrupt the data. Several processes need
 * DATABASE_URL and REDIS_URL (see the README's "Scaling").
 */
import { randomBytes } from 'node:crypto';
import { linkSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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

/** What a server start is told to do about a DATA_DIR in use. */
export const SERVER_BUSY_ADVICE =
  'stop it, or give this process its own DATA_DIR, or set DATABASE_URL and REDIS_URL';

function busy(dataDir: string, holder: number, advice: string): DataDirBusyError {
  return new DataDirBusyError(`${dataDir} is in use by gigwire process ${holder}: ${advice}`);
}

function readLockFile(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/** The holder named by lock-file text that still runs, or undefined (stale, unreadable, ours). */
function liveHolder(text: string, pid: number): number | undefined {
  const [holderText = '', startedAt] = text.split('\n');
  const holder = Number.parseInt(holderText.trim(), 10);
  return Number.isInteger(holder) && holder !== pid && holderRuns(holder, startedAt?.trim())
    ? holder
    : undefined;
}

/**
 * Creates `file` holding `content`, or returns false when it exists. The content is written to a
 * file of this process first and hard-linked into place, so nobody ever reads a lock half-written
 * (with `wx` the file exists empty for a moment, and an empty lock counts as stale). A file system
 * without hard links gets the `wx` write.
 */
function createWith(file: string, content: string, pid: number): boolean {
  const temp = `${file}.${pid}.${randomBytes(4).toString('hex')}`;
  try {
    writeFileSync(temp, content, { flag: 'wx' });
    linkSync(temp, file);
    return true;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') {
      throw error;
    }
    try {
      writeFileSync(file, content, { flag: 'wx' });
      return true;
    } catch (fallback) {
      if ((fallback as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw fallback;
    }
  } finally {
    rmSync(temp, { force: true });
  }
}

/**
 * Takes the lock or throws DataDirBusyError (one line ending in `advice`: what to do about the
 * holder). Returns the release function.
 *
 * A stale lock (its holder gone: crash, SIGKILL, a reboot) is taken over by exactly one of several
 * processes starting at once (review 32): overwriting it let two starts both "take" it and open
 * PGlite and the managed Redis together. A taker first creates `gigwire.lock.takeover` (O_EXCL,
 * naming itself); only then, and only if the lock still holds what it judged stale, does it remove
 * the lock and create its own. A start that finds a live taker is refused as it is by a live holder.
 * A takeover marker left by a taker that died in the middle is stale in turn and removed.
 */
export function lockDataDir(
  dataDir: string,
  pid: number,
  advice = SERVER_BUSY_ADVICE,
  /** Reads a lock file (undefined when there is none); tests wrap it to start another taker between. */
  readOrUndefined: (file: string) => string | undefined = readLockFile,
): () => void {
  makeDirectories(dataDir);
  const lockFile = join(dataDir, 'gigwire.lock');
  const takeover = `${lockFile}.takeover`;
  const content = `${pid}\n${processStartTime(pid) ?? ''}\n`;
  const release = () => {
    if (readOrUndefined(lockFile) === content) rmSync(lockFile, { force: true });
  };
  // Each round either takes the lock, is refused, or saw the files change under it (another
  // start's move): a handful of rounds is plenty; after that, whoever moves them is alive.
  for (let round = 0; round < 8; round += 1) {
    if (createWith(lockFile, content, pid)) return release;
    const stale = readOrUndefined(lockFile);
    if (stale === undefined) continue; // released meanwhile: try again
    const holder = liveHolder(stale, pid);
    if (holder !== undefined) throw busy(dataDir, holder, advice);
    if (!createWith(takeover, content, pid)) {
      const marker = readOrUndefined(takeover);
      if (marker === undefined) continue;
      const taker = liveHolder(marker, pid);
      if (taker !== undefined) throw busy(dataDir, taker, advice);
      // Its taker died mid-takeover: remove the marker, unless it changed meanwhile.
      if (readOrUndefined(takeover) === marker) rmSync(takeover, { force: true });
      continue;
    }
    try {
      // Another start may have taken the lock over between our read and our marker.
      if (readOrUndefined(lockFile) === stale) {
        rmSync(lockFile, { force: true });
        if (createWith(lockFile, content, pid)) return release;
      }
    } finally {
      rmSync(takeover, { force: true });
    }
  }
  const holder = Number.parseInt(readOrUndefined(lockFile)?.split('\n')[0] ?? '', 10);
  if (Number.isInteger(holder)) throw busy(dataDir, holder, advice);
  throw new DataDirBusyError(`${dataDir} is being taken by another gigwire start: ${advice}`);
}
