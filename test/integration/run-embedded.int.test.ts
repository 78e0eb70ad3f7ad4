/**
 * The run command with no environment: embedded PGlite and a managed redis-server under DATA_DIR,
 * exactly as a new user starts it. Each process is a real child started like `npm start`.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { tempDir } from '../support/context.js';
import { childPids, type GigwireProcess, isProcessAlive, pollHttp, spawnGigwire } from '../support/spawn.js';

const running: GigwireProcess[] = [];
// A failed assertion must not leave a process holding DATA_DIR for the next test.
afterEach(async () => {
  for (const proc of running.splice(0)) await proc.stop('SIGKILL').catch(() => undefined);
});

function start(dataDir: string): GigwireProcess {
  const proc = spawnGigwire({ DATA_DIR: dataDir, LOG_LEVEL: 'debug' });
  running.push(proc);
  return proc;
}

async function managedRedisPid(proc: GigwireProcess): Promise<number> {
  const line = await proc.waitForLog((l) => l.msg === 'managed redis-server started');
  return Number(line.pid);
}

describe('run command with no DATABASE_URL and no REDIS_URL', () => {
  const dataDir = join(tempDir('embedded'), 'data');
  let installationId = '';

  it('becomes ready on PGlite and a managed redis-server, and stops on SIGTERM with exit 0 and no orphan', async () => {
    const proc = start(dataDir);
    const baseUrl = await proc.waitUntilUp(120_000);
    const ready = await pollHttp(`${baseUrl}/health/ready`, (s) => s === 200, 10_000);
    expect(ready.status).toBe(200);
    expect(ready.body).toMatchObject({
      status: 'ready',
      checks: { postgres: { status: 'ok' }, redis: { status: 'ok' } },
    });

    const live = (await (await fetch(`${baseUrl}/health/live`)).json()) as Record<string, unknown>;
    expect(live).toMatchObject({ status: 'ok', database: 'pglite', redis: 'managed', boots: 1 });
    installationId = String(live.installationId);

    expect(existsSync(join(dataDir, 'pglite', 'PG_VERSION'))).toBe(true);
    expect(readdirSync(join(dataDir, 'redis'))).toContain('appendonlydir');

    const redisPid = await managedRedisPid(proc);
    expect(childPids(proc.pid)).toContain(redisPid);

    const exit = await proc.stop('SIGTERM');
    expect(exit).toMatchObject({ code: 0, signal: null });
    expect(exit.ms).toBeLessThan(10_000);
    expect(isProcessAlive(redisPid)).toBe(false);
    expect(existsSync(join(dataDir, 'gigwire.lock'))).toBe(false);
  });

  // Each start boots PGlite (seconds of CPU): the second run goes on from finding the data to the
  // managed redis-server's failures and ends SIGKILLed, leaving the orphan the third start stops.
  let orphanPid = 0;

  it('finds the data of the first run, refuses a second process, and survives a stuck and a dead redis-server', async () => {
    const proc = start(dataDir);
    const baseUrl = await proc.waitUntilUp(120_000);
    const live = (await (await fetch(`${baseUrl}/health/live`)).json()) as Record<string, unknown>;
    // The installation row lives in PGlite, the boot counter in Redis' append-only file.
    expect(live).toMatchObject({ installationId, boots: 2 });
    expect(proc.logLines().some((l) => l.msg === 'database schema is up to date')).toBe(true);

    // A second process on the same DATA_DIR would corrupt PGlite: it is refused with one line.
    const intruder = spawnGigwire({ DATA_DIR: dataDir });
    running.push(intruder);
    const intruderExit = await intruder.exited;
    expect(intruderExit.code).toBe(1);
    expect(intruder.stderr().trim().split('\n')).toHaveLength(1);
    expect(intruder.stderr()).toContain(`${dataDir} is in use by gigwire process ${proc.pid}`);
    const stillReady = await pollHttp(`${baseUrl}/health/ready`, (s) => s === 200, 5_000);
    expect(stillReady.status).toBe(200);

    const firstPid = await managedRedisPid(proc);
    // Frozen (not dead): the supervisor has nothing to restart, readiness must say redis.
    process.kill(firstPid, 'SIGSTOP');
    const down = await pollHttp(`${baseUrl}/health/ready`, (s) => s === 503, 5_000);
    process.kill(firstPid, 'SIGCONT');
    expect(down.status).toBe(503);
    expect(down.body).toMatchObject({ code: 'UNAVAILABLE', failed: ['redis'] });
    expect((await pollHttp(`${baseUrl}/health/ready`, (s) => s === 200, 10_000)).status).toBe(200);

    // Dead: the supervisor starts a new one on the same socket and clients reconnect by themselves.
    process.kill(firstPid, 'SIGKILL');
    await proc.waitForLog((l) => l.msg === 'managed redis-server exited; restarting it', 5_000);
    await proc.waitForLog((l) => l.msg === 'managed redis-server started' && l.pid !== firstPid, 15_000);
    const up = await pollHttp(`${baseUrl}/health/ready`, (s) => s === 200, 15_000);
    expect(up.status).toBe(200);
    const restarted = proc.logLines().filter((l) => l.msg === 'managed redis-server started');
    expect(restarted.length).toBe(2);
    const secondPid = Number(restarted[1]?.pid);
    expect(secondPid).not.toBe(firstPid);
    expect(childPids(proc.pid)).toContain(secondPid);

    // SIGKILLed, the run cannot stop its redis-server: the next start must.
    await proc.stop('SIGKILL');
    expect(isProcessAlive(secondPid)).toBe(true);
    orphanPid = secondPid;
  });

  it('stops a redis-server orphaned by a SIGKILLed run at the next start, and stops on SIGINT with exit 0', async () => {
    expect(orphanPid).toBeGreaterThan(0);
    const next = start(dataDir);
    await next.waitUntilUp(120_000);
    await next.waitForLog(
      (l) => l.msg === 'stopping a redis-server left running by an earlier gigwire process',
    );
    expect(isProcessAlive(orphanPid)).toBe(false);
    const newPid = await managedRedisPid(next);
    expect((await next.stop('SIGINT')).code).toBe(0);
    expect(isProcessAlive(newPid)).toBe(false);
  });
});
