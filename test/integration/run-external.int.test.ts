/**
 * The run command against PostgreSQL and Redis started separately (the production shape), plus the
 * start-up failures a user meets first: invalid configuration and several processes migrating at once.
 */
import pg from 'pg';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { migrations } from '../../src/db/migrations/index.js';
import {
  createEmptyDatabase,
  createMigratedDatabase,
  sharedRedisUrl,
  type TestDatabase,
  uniqueRedisPrefix,
} from '../support/context.js';
import { childPids, type GigwireProcess, pollHttp, spawnGigwire } from '../support/spawn.js';

const running: GigwireProcess[] = [];
const databases: TestDatabase[] = [];
afterEach(async () => {
  for (const proc of running.splice(0)) await proc.stop('SIGKILL').catch(() => undefined);
});
afterAll(async () => {
  for (const db of databases) await db.drop();
});

function start(env: Record<string, string>): GigwireProcess {
  const proc = spawnGigwire({ REDIS_URL: sharedRedisUrl(), REDIS_PREFIX: uniqueRedisPrefix(), ...env });
  running.push(proc);
  return proc;
}

describe('run command with DATABASE_URL and REDIS_URL', () => {
  it('becomes ready on the given servers and starts no child process', async () => {
    const db = await createMigratedDatabase();
    databases.push(db);
    const proc = start({ DATABASE_URL: db.url });
    const baseUrl = await proc.waitUntilUp(60_000);
    const ready = await pollHttp(`${baseUrl}/health/ready`, (s) => s === 200, 10_000);
    expect(ready.status).toBe(200);
    const live = (await (await fetch(`${baseUrl}/health/live`)).json()) as Record<string, unknown>;
    expect(live).toMatchObject({ database: 'postgres', redis: 'external' });
    // Every page the start line points a new user to answers (no 404 for a base path).
    const upLine = proc.logLines().find((l) => typeof l.msg === 'string' && l.msg.includes(' is up at '));
    const urls = Object.values((upLine?.urls ?? {}) as Record<string, string>);
    expect(urls.length).toBeGreaterThan(5);
    for (const url of urls.filter((u) => u.startsWith('http'))) {
      expect([url, (await fetch(url)).status]).not.toEqual([url, 404]);
    }
    expect(childPids(proc.pid)).toEqual([]);
    expect((await proc.stop('SIGTERM')).code).toBe(0);
  });

  it('exits with code 2 and one line naming PORT when PORT is not a number', async () => {
    const proc = start({ PORT: 'abc' });
    const exit = await proc.exited;
    expect(exit.code).toBe(2);
    const lines = proc.stderr().trim().split('\n');
    expect(lines).toEqual([
      'gigwire: invalid configuration: PORT must be a whole number between 0 and 65535 (got "abc")',
    ]);
  });

  it('exits with code 1 and one line when the database cannot be reached', async () => {
    // STARTUP_WAIT_S 0: the failure itself, not the wait for a database still starting (firsttry-review19).
    const proc = start({ DATABASE_URL: 'postgres://app@127.0.0.1:1/none', STARTUP_WAIT_S: '0' });
    const exit = await proc.exited;
    expect(exit.code).toBe(1);
    expect(proc.stderr().trim().split('\n')).toHaveLength(1);
    expect(proc.stderr()).toMatch(/^gigwire: start failed: .*ECONNREFUSED/);
  });

  it('brings two processes up at once on one empty database, running the migrations once', async () => {
    const db = await createEmptyDatabase();
    databases.push(db);
    const first = start({ DATABASE_URL: db.url });
    const second = start({ DATABASE_URL: db.url });
    const [firstUrl, secondUrl] = await Promise.all([first.waitUntilUp(60_000), second.waitUntilUp(60_000)]);
    for (const url of [firstUrl, secondUrl]) {
      expect((await pollHttp(`${url}/health/ready`, (s) => s === 200, 10_000)).status).toBe(200);
    }
    const appliedBy = [first, second].map(
      (proc) => proc.logLines().find((l) => l.msg === 'migrations applied')?.applied as string[] | undefined,
    );
    // Exactly one process applied every migration; the other waited on the lock and found them done.
    expect(appliedBy.filter((applied) => applied !== undefined)).toEqual([Object.keys(migrations)]);

    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    const { rows } = await client.query<{ name: string }>('select name from kysely_migration order by name');
    const installations = await client.query('select id from installation');
    await client.end();
    expect(rows.map((r) => r.name)).toEqual(Object.keys(migrations));
    expect(installations.rowCount).toBe(1);
    for (const proc of [first, second]) expect((await proc.stop('SIGTERM')).code).toBe(0);
  });
});
