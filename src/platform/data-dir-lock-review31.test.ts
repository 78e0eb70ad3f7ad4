/**
 * Review 31 (operator, start-up): the DATA_DIR lock named only a pid. After a crash or a power cut
 * that pid may belong to another program (after a reboot pids start over), and every `npm start`
 * on that DATA_DIR was refused "in use by gigwire process N" until someone deleted the lock by
 * hand. The lock names the holder's start time too; a live process with another start time is not
 * the holder.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DataDirBusyError, lockDataDir, processStartTime } from './data-dir-lock.js';

let dir: string | undefined;
afterEach(() => {
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});
const dataDir = () => {
  dir = mkdtempSync(join(tmpdir(), 'gigwire-lock-'));
  return dir;
};

// The test runner's parent: a live process that is not this one.
const other = process.ppid;
const otherStart = processStartTime(other);

describe.runIf(otherStart !== undefined)('the DATA_DIR lock (review 31)', () => {
  it('takes over a lock whose pid now belongs to a process started at another time', () => {
    const data = dataDir();
    writeFileSync(join(data, 'gigwire.lock'), `${other}\n${Number(otherStart) + 1}\n`);
    const release = lockDataDir(data, process.pid);
    expect(readFileSync(join(data, 'gigwire.lock'), 'utf8').split('\n')[0]).toBe(String(process.pid));
    release();
  });

  it('still refuses a lock of a live holder, and one written without a start time', () => {
    const data = dataDir();
    writeFileSync(join(data, 'gigwire.lock'), `${other}\n${otherStart}\n`);
    expect(() => lockDataDir(data, process.pid)).toThrow(DataDirBusyError);
    writeFileSync(join(data, 'gigwire.lock'), `${other}\n`);
    expect(() => lockDataDir(data, process.pid)).toThrow(DataDirBusyError);
  });

  it('writes its own start time, so a later start can tell', () => {
    const data = dataDir();
    lockDataDir(data, process.pid);
    expect(readFileSync(join(data, 'gigwire.lock'), 'utf8')).toBe(
      `${process.pid}\n${processStartTime(process.pid)}\n`,
    );
  });
});
