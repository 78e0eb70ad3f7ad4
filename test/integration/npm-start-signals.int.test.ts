/**
 * `npm start` as a user runs it, through npm and the shell npm runs scripts in, stopped the two ways
 * a user stops it. Regressions guarded:
 * - SIGTERM to npm (systemd, a container runtime, `kill`) left gigwire and its redis-server running:
 *   npm passed the signal to `sh -c "node …"`, and dash does not exec its last command, so node
 *   never got it. The start script now `exec`s node.
 * - Ctrl-C (SIGINT to the terminal's whole foreground process group) reached the managed
 *   redis-server too: it died first, and gigwire restarted it in the middle of its shutdown. The
 *   redis-server now runs in its own process group and is stopped by gigwire alone, in order.
 * - A signal during a start-up that hangs (a database that never answers) waited for the start-up
 *   without bound: SHUTDOWN_TIMEOUT_MS now counts from the signal.
 * Both npm cases end with exit 0, as a clean shutdown does (not 130: the shutdown did all it should).
 */
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createMigratedDatabase, type TestDatabase, tempDir } from '../support/context.js';
import {
  childPids,
  type GigwireProcess,
  isProcessAlive,
  spawnGigwire,
  spawnNpmStart,
} from '../support/spawn.js';

const running: GigwireProcess[] = [];
const databases: TestDatabase[] = [];
afterAll(async () => {
  for (const db of databases.splice(0)) await db.drop();
});
const pidsToKill = new Set<number>();
afterEach(async () => {
  // A failed assertion must not leave processes behind for the next test.
  for (const proc of running.splice(0)) {
    for (const pid of descendants(proc.pid)) pidsToKill.add(pid);
    await proc.stop('SIGKILL').catch(() => undefined);
  }
  for (const pid of pidsToKill) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  pidsToKill.clear();
});

/** Every process below `pid` (children, grandchildren…), from /proc. */
function descendants(pid: number): number[] {
  const found: number[] = [];
  for (let pending = childPids(pid); pending.length > 0; ) {
    const next = pending.shift() as number;
    found.push(next);
    pending.push(...childPids(next));
  }
  return found;
}

async function waitUntilGone(pids: readonly number[], timeoutMs: number): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  let alive = pids.filter(isProcessAlive);
  while (alive.length > 0 && Date.now() < deadline) {
    await sleep(50);
    alive = pids.filter(isProcessAlive);
  }
  return alive;
}

async function startedNpm(
  detached: boolean,
): Promise<{ proc: GigwireProcess; tree: number[]; redisPid: number }> {
  // The managed redis-server is what these tests stop; the database is the suite's PostgreSQL, not
  // an embedded PGlite (its boot and migrations cost ~6 s of CPU each time; run-embedded.int.test.ts
  // stops that one by signal).
  const db = await createMigratedDatabase();
  databases.push(db);
  const proc = spawnNpmStart(
    { DATA_DIR: join(tempDir('npm-start'), 'data'), DATABASE_URL: db.url, LOG_LEVEL: 'debug' },
    { detached },
  );
  running.push(proc);
  await proc.waitUntilUp(180_000);
  const redisPid = Number((await proc.waitForLog((l) => l.msg === 'managed redis-server started')).pid);
  const tree = descendants(proc.pid);
  for (const pid of tree) pidsToKill.add(pid);
  // npm's child is gigwire itself (exec), and the redis-server is gigwire's child.
  expect(tree).toContain(redisPid);
  return { proc, tree, redisPid };
}

describe('npm start, stopped by a signal', () => {
  it('SIGTERM to npm stops gigwire and its redis-server, exit 0, nothing left running', async () => {
    const { proc, tree, redisPid } = await startedNpm(false);
    const exit = await proc.stop('SIGTERM', 20_000);
    expect(exit).toMatchObject({ code: 0, signal: null });
    expect(await waitUntilGone(tree, 2_000)).toEqual([]);
    expect(isProcessAlive(redisPid)).toBe(false);
    expect(proc.logLines().some((l) => l.msg === 'shutdown complete')).toBe(true);
  });

  it('Ctrl-C (SIGINT to the process group) stops redis-server once, in order, without restarting it; exit 0', async () => {
    const { proc, tree, redisPid } = await startedNpm(true);
    const sentAt = Date.now();
    process.kill(-proc.pid, 'SIGINT');
    const exit = await Promise.race([proc.exited, sleep(20_000).then(() => undefined)]);
    expect(exit, `no exit ${Date.now() - sentAt} ms after SIGINT`).toMatchObject({ code: 0, signal: null });
    expect(await waitUntilGone(tree, 2_000)).toEqual([]);
    expect(isProcessAlive(redisPid)).toBe(false);
    const messages = proc.logLines().map((l) => String(l.msg));
    expect(messages).not.toContain('managed redis-server exited; restarting it');
    expect(messages.filter((m) => m === 'managed redis-server started')).toHaveLength(1);
    // The terminal's SIGINT did not reach redis-server: gigwire stopped it (SIGTERM), after the
    // database closed, in the order of the README's "Operating it".
    const lines = proc.logLines();
    const redisSaid = (text: string) =>
      lines.findIndex((l) => l.msg === 'redis-server' && String(l.redis).includes(text));
    expect(redisSaid('Received SIGINT')).toBe(-1);
    const databaseClosed = lines.findIndex(
      (l) => l.msg === 'shutdown step done' && l.step === 'close database',
    );
    expect(databaseClosed).toBeGreaterThan(-1);
    expect(redisSaid('Received SIGTERM')).toBeGreaterThan(databaseClosed);
    expect(messages).toContain('managed redis-server stopped');
    expect(messages).toContain('shutdown complete');
  });
});

describe('a signal during a start-up that hangs', () => {
  let silent: Server | undefined;
  const sockets: Socket[] = [];
  afterEach(async () => {
    for (const socket of sockets.splice(0)) socket.destroy();
    await new Promise<void>((done) => (silent === undefined ? done() : silent.close(() => done())));
    silent = undefined;
  });

  it('is bounded by SHUTDOWN_TIMEOUT_MS from the signal: exit 1, the redis-server stopped', async () => {
    // A "PostgreSQL" that accepts connections and never answers.
    let connected: () => void = () => undefined;
    const firstConnection = new Promise<void>((done) => {
      connected = done;
    });
    silent = createServer((socket) => {
      sockets.push(socket);
      connected();
    });
    await new Promise<void>((done) => silent?.listen(0, '127.0.0.1', () => done()));
    const address = silent.address();
    const port = typeof address === 'object' && address !== null ? address.port : 0;

    const proc = spawnGigwire({
      DATA_DIR: join(tempDir('hung-start'), 'data'),
      DATABASE_URL: `postgres://gigwire@127.0.0.1:${port}/gigwire`,
      SHUTDOWN_TIMEOUT_MS: '1000',
      LOG_LEVEL: 'debug',
    });
    running.push(proc);
    const redisPid = Number((await proc.waitForLog((l) => l.msg === 'managed redis-server started')).pid);
    pidsToKill.add(redisPid);
    await firstConnection;

    const exit = await proc.stop('SIGTERM', 20_000);
    expect(exit.code).toBe(1);
    // The deadline (1 s) from the signal, not the database driver's 5 s connection timeout: the
    // deadline's log line says which ended it (the bound on the time is loose: a loaded box).
    expect(proc.logLines().some((l) => l.msg === 'shutdown did not finish in time')).toBe(true);
    expect(exit.ms).toBeLessThan(4_500);
    expect(await waitUntilGone([redisPid], 3_000)).toEqual([]);
  });
});
