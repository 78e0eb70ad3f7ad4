/**
 * First-try review 24: in docker-compose.yml only gigwire's services had a restart policy. After a
 * reboot or a restart of the Docker engine (or nginx exiting at start because an upstream name did
 * not resolve yet) PostgreSQL, Redis and the proxy stayed down while the api, gateways and worker
 * came back to wait for them and fail, again and again: the site stayed down until someone ran
 * `docker-compose up` by hand. Read from `docker-compose config` (the file as compose resolves it).
 */
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ensureProgram } from '../../src/platform/system-packages.js';

const root = resolve(import.meta.dirname, '../..');

describe('docker-compose.yml after a reboot', () => {
  it('restarts every service, not only the gigwire ones', async () => {
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
    const services = (parse(stdout) as { services: Record<string, { restart?: string }> }).services;
    expect(Object.keys(services)).toEqual(
      expect.arrayContaining([
        'postgres',
        'redis',
        'mailpit',
        'api',
        'gateway-1',
        'gateway-2',
        'worker',
        'proxy',
      ]),
    );
    for (const [name, service] of Object.entries(services)) {
      expect(service.restart, name).toMatch(/^(always|unless-stopped)$/);
    }
  });
});
