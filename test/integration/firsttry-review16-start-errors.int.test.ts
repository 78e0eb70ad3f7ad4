/**
 * A first-time operator's mistakes at start: each ends with exit 1 and one line on stderr naming the
 * setting to fix (DATABASE_URL, REDIS_URL, HOST/PORT, WS_PORT, DATA_DIR), never only the library's
 * words (`Reached the max retries per request limit`, `connect ECONNREFUSED …`), and never a password.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  createMigratedDatabase,
  sharedRedisUrl,
  type TestDatabase,
  tempDir,
  uniqueRedisPrefix,
} from '../support/context.js';
import { type GigwireProcess, spawnGigwire } from '../support/spawn.js';

const running: GigwireProcess[] = [];
const servers: Server[] = [];
let database: TestDatabase | undefined;
afterEach(async () => {
  for (const proc of running.splice(0)) await proc.stop('SIGKILL').catch(() => undefined);
  for (const server of servers.splice(0)) await new Promise((done) => server.close(done));
});
afterAll(async () => {
  await database?.drop();
});

async function databaseUrl(): Promise<string> {
  database ??= await createMigratedDatabase();
  return database.url;
}

function start(env: Record<string, string>): GigwireProcess {
  const proc = spawnGigwire({ REDIS_URL: sharedRedisUrl(), REDIS_PREFIX: uniqueRedisPrefix(), ...env });
  running.push(proc);
  return proc;
}

/** The one stderr line of a start that failed with exit code 1. */
async function failure(proc: GigwireProcess): Promise<string> {
  const exit = await proc.exited;
  const lines = proc.stderr().trim().split('\n');
  expect({ code: exit.code, lines: lines.length }, proc.stderr()).toEqual({ code: 1, lines: 1 });
  return lines[0] ?? '';
}

/** A port held by a plain listener (no SO_REUSEPORT, so uWebSockets.js cannot share it either). */
async function takenPort(): Promise<number> {
  const server = createServer();
  servers.push(server);
  await new Promise<void>((listening) => server.listen(0, '127.0.0.1', listening));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/** A one-shot command (`npm run <name>`) with only the environment given. */
async function command(name: string, env: Record<string, string>) {
  return promisify(execFile)(process.execPath, ['--import', 'tsx', `src/bin/${name}.ts`], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
  }).then(
    () => ({ code: 0, stderr: '' }),
    (error: { code: number; stderr: string }) => ({ code: error.code, stderr: error.stderr }),
  );
}

describe('start failures name the setting', () => {
  it('names REDIS_URL, without its password, when Redis cannot be reached', async () => {
    const line = await failure(
      // STARTUP_WAIT_S 0: the failure itself, not the wait for a Redis still starting (firsttry-review19).
      start({
        DATABASE_URL: await databaseUrl(),
        REDIS_URL: 'redis://:hunter22@127.0.0.1:1',
        STARTUP_WAIT_S: '0',
      }),
    );
    expect(line).toMatch(
      /^gigwire: start failed: REDIS_URL redis:\/\/:\*\*\*@127\.0\.0\.1:1: cannot reach Redis: .*ECONNREFUSED/,
    );
    expect(line).not.toContain('hunter22');
    expect(line).not.toContain('maxRetriesPerRequest');
  });

  it('names DATABASE_URL, without its password, when its database does not exist', async () => {
    const url = new URL(await databaseUrl());
    url.password = 'hunter22';
    url.pathname = '/no_such_database';
    const line = await failure(start({ DATABASE_URL: url.toString() }));
    expect(line).toMatch(/^gigwire: start failed: DATABASE_URL postgres:\/\/.*: cannot use the database: /);
    expect(line).toContain('no_such_database');
    expect(line).not.toContain('hunter22');
  });

  it('names HOST and PORT when PORT is taken', async () => {
    const port = await takenPort();
    const line = await failure(start({ DATABASE_URL: await databaseUrl(), PORT: String(port) }));
    expect(line).toMatch(
      new RegExp(`^gigwire: start failed: cannot listen on HOST 127\\.0\\.0\\.1 PORT ${port}: .*EADDRINUSE`),
    );
  });

  it('names WS_PORT when the WebSocket port is taken', async () => {
    const port = await takenPort();
    const line = await failure(
      start({ DATABASE_URL: await databaseUrl(), ROLE: 'gateway', WS_PORT: String(port) }),
    );
    expect(line).toMatch(
      new RegExp(`^gigwire: start failed: cannot listen on HOST 127\\.0\\.0\\.1 WS_PORT ${port}: `),
    );
  });

  it('names DATA_DIR when it cannot be used', async () => {
    const file = join(tempDir('firsttry-datadir'), 'not-a-directory');
    writeFileSync(file, 'x');
    const line = await failure(start({ DATA_DIR: file, DATABASE_URL: await databaseUrl(), REDIS_URL: '' }));
    expect(line).toMatch(/^gigwire: start failed: DATA_DIR .*not-a-directory is not usable: /);
  });

  it('names DATA_DIR under /proc instead of hanging (start and npm run migrate)', async () => {
    // Node's recursive mkdir never returns there; the start must still fail with its one line.
    const dataDir = `/proc/gigwire-${randomUUID()}/data`;
    const line = await failure(
      start({ DATA_DIR: dataDir, DATABASE_URL: await databaseUrl(), REDIS_URL: '' }),
    );
    expect(line).toContain(`gigwire: start failed: DATA_DIR ${dataDir} is not usable: `);
    const migrate = await command('migrate', { DATA_DIR: dataDir });
    expect(migrate.code).toBe(1);
    expect(migrate.stderr).toContain(`gigwire: migrate failed: DATA_DIR ${dataDir} is not usable: `);
  });

  it.each(['redis', 'pglite'])(
    'names DATA_DIR when its %s directory cannot be made (a file is in the way)',
    async (part) => {
      const dataDir = tempDir('firsttry-datadir-part');
      writeFileSync(join(dataDir, part), 'x');
      const line = await failure(start({ DATA_DIR: dataDir, REDIS_URL: '' }));
      expect(line).toContain(`gigwire: start failed: DATA_DIR ${dataDir} is not usable: `);
      expect(line).toContain(join(dataDir, part));
    },
  );

  it('npm run migrate names DATA_DIR when the embedded database cannot be opened', async () => {
    const dataDir = tempDir('firsttry-datadir-migrate');
    writeFileSync(join(dataDir, 'pglite'), 'x');
    const result = await command('migrate', { DATA_DIR: dataDir });
    expect(result.code).toBe(1);
    expect(result.stderr.trim().split('\n')).toEqual([
      expect.stringContaining(`gigwire: migrate failed: DATA_DIR ${dataDir} is not usable: `),
    ]);
  });

  it('npm run migrate names DATABASE_URL when the database cannot be reached', async () => {
    const result = await command('migrate', {
      DATABASE_URL: 'postgres://app:hunter22@127.0.0.1:1/x',
      STARTUP_WAIT_S: '0',
    });
    expect(result.code).toBe(1);
    expect(result.stderr.trim().split('\n')).toEqual([
      expect.stringMatching(
        /^gigwire: migrate failed: DATABASE_URL postgres:\/\/app:\*\*\*@127\.0\.0\.1:1\/x: cannot use the database: .*ECONNREFUSED/,
      ),
    ]);
  });
});
