import { defineConfig } from 'vitest/config';
import { LongestFirstSequencer } from './test/support/sequencer.js';

/**
 * Integration files that measure their own process (v8.queryObjects walks the whole heap, which a
 * worker shared with a hundred files before makes ~10× slower), each in a fresh fork.
 */
const NEEDS_OWN_PROCESS = ['test/integration/ws-close-races.int.test.ts'];

/**
 * On CI an integration test that fails runs once more: the suite spawns servers, PostgreSQL,
 * Redis and Chromium on a shared 2-core machine, where a stalled neighbour can push one wait past
 * its limit. Nothing is hidden: a test that passed on its second try keeps its first failure in the
 * JSON report, and `.ci/run` lists it as FLAKY with that error above its last line. Locally (no
 * CI variable) every failure counts at once. Unit tests never retry.
 */
const INTEGRATION_RETRY = process.env.CI ? 1 : 0;

export default defineConfig({
  test: {
    pool: 'forks',
    // Vitest's default is one worker per core minus one: a single fork on the 2-core CI box. Most
    // integration time is waiting (servers starting, timers, polls): with two forks the cores were
    // still idle a third of the run (vmstat, 2026-12-06), so three forks overlap more of it.
    maxWorkers: 3,
    // Spawned servers, PGlite start-up and real Redis/PostgreSQL make some tests take seconds.
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // `expect.poll` waits for a state that must come (a page updated by a push, a metric counted);
    // its default of 1 s was a timing assertion on a shared 2-core box (a loaded CI run missed it
    // by a push's re-read). A poll that passes still returns at once.
    expect: { poll: { timeout: 15_000 } },
    teardownTimeout: 30_000,
    sequence: { sequencer: LongestFirstSequencer },
    // Files share worker processes (below): a spy one test left behind must not reach the next file.
    restoreMocks: true,
    unstubGlobals: true,
    unstubEnvs: true,
    // .ci/run reads this report to print its "N passed, N failed" line; it runs Vitest more than
    // once (the Node 22 run beside it writes its own file).
    reporters: ['default', ['json', { outputFile: process.env.VITEST_JSON_REPORT ?? '.vitest-report.json' }]],
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['src/**/*.test.ts', 'protocol/**/*.test.ts', 'bench/**/*.test.ts'],
          isolate: false,
        },
      },
      {
        // Integration files share their worker process with the files before them: the whole app is
        // imported once per worker instead of once per file (~3.7 s of CPU each, 836 s of a 1 099 s
        // run on 2 cores, 2026-12-07). Every file closes what it opens, so nothing leaks into the next.
        extends: true,
        test: {
          name: 'integration',
          include: ['test/**/*.test.ts'],
          retry: INTEGRATION_RETRY,
          exclude: NEEDS_OWN_PROCESS,
          globalSetup: ['test/support/global-setup.ts'],
          setupFiles: ['test/support/child-build-setup.ts'],
          isolate: false,
        },
      },
      {
        extends: true,
        test: {
          name: 'integration-own-process',
          include: NEEDS_OWN_PROCESS,
          retry: INTEGRATION_RETRY,
          globalSetup: ['test/support/global-setup.ts'],
          setupFiles: ['test/support/child-build-setup.ts'],
        },
      },
    ],
  },
});
