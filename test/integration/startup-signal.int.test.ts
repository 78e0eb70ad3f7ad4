/**
 * A SIGTERM while gigwire's modules load (1–2 s under tsx) met Node's default action: exit 143,
 * although nothing had started. main.ts now takes SIGTERM/SIGINT on its first line and loads the
 * rest afterwards; a signal held in that window ends the process with exit 0 before anything starts.
 * The load is held at a known point by a module hook (test/support/load-hold), so the signal lands
 * inside the window every time.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { tempDir } from '../support/context.js';
import { untilDefined } from '../support/poll.js';
import { type GigwireProcess, spawnGigwire } from '../support/spawn.js';

const hook = resolve(fileURLToPath(new URL('../support/load-hold/register.mjs', import.meta.url)));
const running: GigwireProcess[] = [];
afterEach(async () => {
  for (const proc of running.splice(0)) await proc.stop('SIGKILL').catch(() => undefined);
});

describe('a signal while the modules load', () => {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`${signal}: exit 0, nothing started`, async () => {
      const dir = tempDir('load-signal');
      const marker = join(dir, 'loading');
      const proc = spawnGigwire({
        DATA_DIR: join(dir, 'data'),
        NODE_OPTIONS: `--import=${hook}`,
        GIGWIRE_TEST_LOAD_MARKER: marker,
        LOG_LEVEL: 'debug',
      });
      running.push(proc);
      await untilDefined(async () => (existsSync(marker) ? true : undefined), 'the load hold', 60_000);
      process.kill(proc.pid, signal);
      expect(await proc.exited).toEqual({ code: 0, signal: null });
      const messages = proc.logLines().map((line) => String(line.msg));
      expect(messages).toContain('signal before start: nothing was started, exiting');
      expect(messages).not.toContain('managed redis-server started');
    });
  }
});
