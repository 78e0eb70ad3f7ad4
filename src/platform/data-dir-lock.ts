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

/** Takes the lock or throws DataDirBusyError (one line). Returns the release function. */
export function lockDataDir(dataDir: string, pid: number): () => void {
  makeDirectories(dataDir);
  const lockFile = join(dataDir, 'gigwire.lock');
  try {
    writeFileSync(lockFile, `${pid}\n`, { flag: 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    const holder = Number.parseInt(readFileSync(lockFile, 'utf8').trim(), 10);
    if (Number.isInteger(holder) && holder !== pid && isRunning(holder)) {
      throw new DataDirBusyError(
        `${dataDir} is in use by gigwire process ${holder}: stop it, or give this process its own DATA_DIR, or set DATABASE_URL and REDIS_URL`,
      );
    }
    // The holder is gone (crash, SIGKILL): the lock is stale.
    writeFileSync(lockFile, `${pid}\n`);
  }
  return () => rmSync(lockFile, { force: true });
}
