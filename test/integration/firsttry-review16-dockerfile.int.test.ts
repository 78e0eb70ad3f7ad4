/**
 * The Docker image runs the operator commands the README gives (`npm run migrate`, `admin:create`,
 * `keys:rotate`, …) as written. No Docker engine here: the runtime stage's files are laid out as its
 * COPY lines say (the build stage's /app is this checkout, with node_modules standing in for
 * `npm ci --omit=dev`), and the commands are run there.
 */
import { execFile } from 'node:child_process';
import { cpSync, existsSync, readFileSync, symlinkSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { createMigratedDatabase, type TestDatabase, tempDir } from '../support/context.js';

const root = resolve(import.meta.dirname, '../..');
const dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  scripts: Record<string, string>;
  dependencies: Record<string, string>;
};

/** The last stage's COPY lines as [source paths relative to the checkout, destination]. */
function runtimeCopies(): [string[], string][] {
  const stages = dockerfile.split(/^FROM /m);
  const runtime = stages[stages.length - 1] ?? '';
  return [...runtime.matchAll(/^COPY\s+(.+)$/gm)].map((match) => {
    const words = (match[1] ?? '').trim().split(/\s+/);
    const fromBuild = words[0]?.startsWith('--from=') === true;
    const paths = fromBuild ? words.slice(1) : words;
    const destination = paths.pop() ?? '';
    // The build stage works in /app on a copy of this checkout.
    return [paths.map((path) => path.replace(/^\/app\//, '')), destination];
  });
}

/** The runtime stage's /app, minus what only its own build would produce (dist, web/dist). */
function layOutRuntimeStage(): string {
  const app = tempDir('firsttry-image');
  for (const [sources, destination] of runtimeCopies()) {
    for (const source of sources) {
      // Built by the build stage itself; the commands under test do not use them.
      if (source === 'dist' || source === 'web/dist') continue;
      const from = join(root, source);
      const to = destination.endsWith('/')
        ? join(app, destination, source.split('/').pop() ?? '')
        : join(app, destination);
      cpSync(from, to, { recursive: true });
    }
  }
  symlinkSync(join(root, 'node_modules'), join(app, 'node_modules'));
  return app;
}

const databases: TestDatabase[] = [];
afterAll(async () => {
  for (const db of databases) await db.drop();
});

async function npmRun(cwd: string, args: string[], env: Record<string, string>) {
  return promisify(execFile)('npm', ['run', '-s', ...args], {
    cwd,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: cwd, NODE_ENV: 'production', ...env },
    timeout: 120_000,
  }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (error: { code: number; stdout: string; stderr: string }) => ({
      code: error.code,
      stdout: error.stdout,
      stderr: error.stderr,
    }),
  );
}

describe('Dockerfile runtime stage', () => {
  it('runs the operator commands of the README (npm run migrate, admin:create, keys:rotate, ledger:audit)', async () => {
    expect(Object.keys(pkg.dependencies)).toContain('tsx');
    const app = layOutRuntimeStage();
    expect(existsSync(join(app, 'package.json'))).toBe(true);
    const db = await createMigratedDatabase();
    databases.push(db);
    const env = { DATABASE_URL: db.url, LOG_LEVEL: 'warn' };
    const migrate = await npmRun(app, ['migrate'], env);
    expect(migrate, migrate.stderr).toMatchObject({ code: 0 });
    const admin = await npmRun(
      app,
      ['admin:create', '--', '--email', 'ops@example.com', '--password', 'a-long-password-1'],
      env,
    );
    expect(admin, admin.stderr).toMatchObject({ code: 0, stdout: expect.stringContaining('created') });
    const rotate = await npmRun(app, ['keys:rotate'], env);
    expect(rotate, rotate.stderr).toMatchObject({
      code: 0,
      stdout: expect.stringContaining('new signing key'),
    });
    const audit = await npmRun(app, ['ledger:audit'], env);
    expect(audit, audit.stderr).toMatchObject({ code: 0 });
    // The package scripts name files under the copied directories only.
    for (const name of ['migrate', 'admin:create', 'admin:unlock', 'keys:rotate', 'ledger:audit']) {
      const file = /\s(src\/\S+\.ts)/.exec(pkg.scripts[name] ?? '')?.[1] ?? '';
      expect(existsSync(join(app, file)), `${name}: ${file}`).toBe(true);
      expect(existsSync(join(app, dirname(file)))).toBe(true);
    }
    // Four commands each compiled by tsx at its start, as typed: past 60 s on a loaded box.
  }, 180_000);
});
