/**
 * Review 32 (operator): a one-shot command (`admin:create`, `migrate`, …) on the embedded database
 * while `npm start` holds DATA_DIR was told to "give this process its own DATA_DIR, or set
 * DATABASE_URL and REDIS_URL": either runs it on another, empty database (admin:create then made an
 * admin the running system never saw, and said so). It is told to stop the server first.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it, vi } from 'vitest';
import { processStartTime } from '../platform/data-dir-lock.js';
import { runOneShot } from './one-shot.js';

let dir: string | undefined;
afterEach(() => {
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
  process.exitCode = undefined;
});

// The test runner's parent stands for the running `npm start`.
const holder = process.ppid;
const holderStart = processStartTime(holder);

it.runIf(holderStart !== undefined)(
  'tells a command on a DATA_DIR in use to stop the server first, not to use another one',
  async () => {
    dir = mkdtempSync(join(tmpdir(), 'gigwire-oneshot-'));
    writeFileSync(join(dir, 'gigwire.lock'), `${holder}\n${holderStart}\n`);
    vi.stubEnv('DATA_DIR', dir);
    vi.stubEnv('DATABASE_URL', '');
    vi.stubEnv('LOG_LEVEL', 'silent');
    const lines: string[] = [];
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      lines.push(String(chunk));
      return true;
    });
    const work = vi.fn(async () => undefined);
    await runOneShot('admin:create', work);
    expect(work).not.toHaveBeenCalled();
    expect(process.exitCode).toBe(1);
    expect(lines.join('')).toContain(
      `admin:create failed: ${dir} is in use by gigwire process ${holder}: stop it, then run this command again`,
    );
    expect(lines.join('')).not.toContain('its own DATA_DIR,');
  },
);
