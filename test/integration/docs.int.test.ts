/** The docs a user reads first stay true: the README's config table, Quick start, and the compose file. */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { readmeWithTable } from '../../scripts/config-table.js';
import { ensureProgram } from '../../src/platform/system-packages.js';

const root = resolve(import.meta.dirname, '../..');
const readme = readFileSync(resolve(root, 'README.md'), 'utf8');

describe('README', () => {
  it('holds the configuration table generated from the config schema', () => {
    expect(readme, 'run `npm run config:table -- --write`').toBe(readmeWithTable(readme));
  });

  it('opens with a Quick start of exactly two commands: run, then test', () => {
    const quickStart = readme.split(/^## /m).find((section) => section.startsWith('Quick start')) ?? '';
    const blocks = [...quickStart.matchAll(/```(?:sh|bash)?\n([\s\S]*?)```/g)].map((m) => m[1]?.trim());
    expect(blocks).toEqual(['npm start', 'npm test']);
  });
});

describe('docker-compose.yml', () => {
  it('is valid for docker-compose (checked offline)', async () => {
    const binary = await ensureProgram(
      { command: 'docker-compose', debianPackage: 'docker-compose' },
      { install: process.getuid?.() === 0, searchPath: process.env.PATH ?? '/usr/bin' },
    );
    const { stdout } = await promisify(execFile)(
      binary,
      ['-f', resolve(root, 'docker-compose.yml'), 'config'],
      {
        cwd: root,
        env: { ...process.env, PAYMENTS_WEBHOOK_SECRETS: `whsec_${Buffer.alloc(32, 7).toString('base64')}` },
      },
    );
    for (const service of ['postgres', 'redis', 'api', 'gateway-1', 'gateway-2', 'worker', 'proxy'])
      expect(stdout).toContain(`  ${service}:`);
    expect(stdout).toContain('ROLE: gateway');
    expect(stdout).toContain('PAYMENTS_WEBHOOK_URL: http://api:3000');
  });

  it('refuses to start without a webhook secret of its own (the image runs with NODE_ENV=production)', async () => {
    const binary = await ensureProgram(
      { command: 'docker-compose', debianPackage: 'docker-compose' },
      { install: process.getuid?.() === 0, searchPath: process.env.PATH ?? '/usr/bin' },
    );
    const { PAYMENTS_WEBHOOK_SECRETS: _unset, ...env } = process.env;
    await expect(
      promisify(execFile)(binary, ['-f', resolve(root, 'docker-compose.yml'), 'config'], { cwd: root, env }),
    ).rejects.toThrow(/PAYMENTS_WEBHOOK_SECRETS/);
  });
});
