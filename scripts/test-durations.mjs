// Writes test/file-durations.json (seconds per test file, the order test/support/sequencer.ts runs
// them in) from the report of the last `npm test` (.vitest-report.json). Run it after a full run on
// a quiet machine when files were added or got much slower or faster.
import { readFileSync, writeFileSync } from 'node:fs';
import { relative, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const report = JSON.parse(readFileSync(resolve(root, '.vitest-report.json'), 'utf8'));
const durations = Object.fromEntries(
  report.testResults
    .map((file) => [relative(root, file.name), Math.round((file.endTime - file.startTime) / 100) / 10])
    .sort(([a, da], [b, db]) => db - da || (a < b ? -1 : 1)),
);
writeFileSync(resolve(root, 'test/file-durations.json'), `${JSON.stringify(durations, null, 2)}\n`);
console.log(`test/file-durations.json: ${Object.keys(durations).length} files`);
