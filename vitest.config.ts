import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'protocol/**/*.test.ts', 'test/**/*.test.ts', 'bench/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    pool: 'forks',
    // Vitest's default is one worker per core minus one: a single fork on the 2-core CI box. Most
    // integration time is waiting (servers starting, timers, polls): with two forks the cores were
    // still idle a third of the run (vmstat, 2026-12-06), so three forks overlap more of it.
    maxWorkers: 3,
    // Spawned servers, PGlite start-up and real Redis/PostgreSQL make some tests take seconds.
    testTimeout: 60_000,
    hookTimeout: 120_000,
    teardownTimeout: 30_000,
    // .ci/run reads this report to print its "N passed, N failed" line.
    reporters: ['default', ['json', { outputFile: '.vitest-report.json' }]],
  },
});
