/**
 * Review 32 (operator, start-up): two starts on a DATA_DIR whose lock was stale (its holder
 * crashed) could both take it: each read the lock, judged it stale, and overwrote it, so both
 * opened PGlite and the managed Redis. The second start here runs exactly between the first
 * one's read of the stale lock and its takeover; exactly one of the two may win.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { DataDirBusyError, lockDataDir, processStartTime, SERVER_BUSY_ADVICE } from './data-dir-lock.js';

// Unit files share their worker (vitest.config.ts: isolate false), so no module mock: the lock's
// file reads are passed in, and this one starts the second taker at the first read of the lock.
const between = { run: undefined as (() => void) | undefined, file: '' };
const readHooked = (file: string): string | undefined => {
  if (!existsSync(file)) return undefined;
  const text = readFileSync(file, 'utf8');
  const run = between.run;
  if (run !== undefined && file === between.file) {
    between.run = undefined;
    run();
  }
  return text;
};

let dir: string | undefined;
afterEach(() => {
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

const ownStart = processStartTime(process.pid);

it.runIf(ownStart !== undefined)('lets exactly one of two simultaneous starts take over a stale lock', () => {
  dir = mkdtempSync(join(tmpdir(), 'gigwire-lock-'));
  const lockFile = join(dir, 'gigwire.lock');
  // A crashed holder: this pid, but another start time.
  writeFileSync(lockFile, `${process.pid}\n${Number(ownStart) + 1}\n`);
  const data = dir;
  const outcomes: string[] = [];
  const attempt = (pid: number) => {
    try {
      lockDataDir(data, pid, SERVER_BUSY_ADVICE, readHooked);
      outcomes.push(`won ${pid}`);
    } catch (error) {
      if (!(error instanceof DataDirBusyError)) throw error;
      expect(error.message).toContain(`${data} is in use by gigwire process`);
      outcomes.push('refused');
    }
  };
  between.file = lockFile;
  between.run = () => attempt(process.pid); // the second start, run inside the first one's check
  attempt(process.ppid);
  expect(outcomes.filter((outcome) => outcome.startsWith('won'))).toHaveLength(1);
  expect(outcomes).toContain('refused');
  const winner = Number(outcomes.find((outcome) => outcome.startsWith('won'))?.slice(4));
  expect(readFileSync(lockFile, 'utf8').split('\n')[0]).toBe(String(winner));
});

it.runIf(ownStart !== undefined)('takes over past the marker of a taker that died mid-takeover', () => {
  dir = mkdtempSync(join(tmpdir(), 'gigwire-lock-'));
  const dead = `${process.pid}\n${Number(ownStart) + 1}\n`;
  writeFileSync(join(dir, 'gigwire.lock'), dead);
  writeFileSync(join(dir, 'gigwire.lock.takeover'), dead);
  const release = lockDataDir(dir, process.ppid);
  expect(readFileSync(join(dir, 'gigwire.lock'), 'utf8').split('\n')[0]).toBe(String(process.ppid));
  release();
  expect(readdirSync(dir)).toEqual([]);
});
