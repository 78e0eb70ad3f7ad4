#!/usr/bin/env node
// Runs before `npm start` and `npm test`: installs the locked dependencies when node_modules is
// missing or older than package-lock.json, so a fresh clone needs no separate install step.
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';

const marker = 'node_modules/.package-lock.json';
// npm writes both files in one install; the tolerance keeps their write order from mattering.
const fresh = existsSync(marker) && statSync(marker).mtimeMs + 5_000 >= statSync('package-lock.json').mtimeMs;
if (!fresh) {
  console.log('gigwire: installing dependencies (npm ci)…');
  const result = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], { stdio: 'inherit' });
  if (result.status !== 0) {
    console.error('gigwire: npm ci failed; see the output above');
    process.exit(result.status ?? 1);
  }
}
