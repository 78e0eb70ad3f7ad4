/**
 * A client in another language, written from protocol/PROTOCOL.md alone
 * (test/clients/python/gigwire_client.py, Debian's python3-websockets and python3-msgpack), runs
 * against both WebSocket listeners of a node started in-process: the uWebSockets.js edge on
 * WS_PORT and /ws on the Fastify port. It subscribes to a contact's presence; the test then brings
 * the contact online over a JSON socket (the `ws` package, browser-style `bearer.` subprotocol) and
 * expects the Python client to see the `presence` push and exit 0.
 *
 * Uses /usr/bin/python3 (Debian's, where the apt packages live), not a pyenv python3 on PATH. The
 * packages are installed with apt-get when missing and running as root.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { type RunningNode, startNode } from '../../src/bin/start-node.js';
import { runShutdown } from '../../src/platform/shutdown.js';
import {
  captureLogs,
  createMigratedDatabase,
  sharedRedisUrl,
  type TestDatabase,
  testConfig,
  uniqueRedisPrefix,
} from '../support/context.js';
import { httpClient, type Registered, registerUser } from '../support/http.js';

const run = promisify(execFile);
const PYTHON = '/usr/bin/python3';
const CLIENT = resolve(import.meta.dirname, '../clients/python/gigwire_client.py');
const PYTHON_PACKAGES = ['python3-websockets', 'python3-msgpack'];

async function pythonHasPackages(): Promise<boolean> {
  try {
    await run(PYTHON, ['-c', 'import websockets, msgpack']);
    return true;
  } catch {
    return false;
  }
}

/** Makes `import websockets, msgpack` work for /usr/bin/python3, installing the Debian packages as root. */
async function ensurePythonPackages(): Promise<void> {
  if (await pythonHasPackages()) return;
  if (process.getuid?.() !== 0) {
    throw new Error(`${PYTHON} lacks websockets/msgpack: run apt-get install ${PYTHON_PACKAGES.join(' ')}`);
  }
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = () =>
    run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...PYTHON_PACKAGES], {
      env,
      timeout: 300_000,
    });
  try {
    await install();
  } catch {
    // Package lists may be missing or stale on a fresh machine.
    await run('apt-get', ['update', '-qq'], { env, timeout: 300_000 });
    await install();
  }
  if (!(await pythonHasPackages()))
    throw new Error(`installed ${PYTHON_PACKAGES.join(' ')}, still not importable`);
}

interface Step {
  readonly step: string;
  readonly [key: string]: unknown;
}

interface PythonRun {
  readonly child: ChildProcess;
  readonly steps: () => Step[];
  readonly output: () => string;
  readonly waitForStep: (name: string, timeoutMs: number) => Promise<Step>;
  readonly exited: Promise<number | null>;
}

function runPythonClient(url: string, token: string, contactId: string): PythonRun {
  const child = spawn(PYTHON, [CLIENT, url, token, contactId], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: '/usr/bin:/bin', PYTHONUNBUFFERED: '1', GIGWIRE_PRESENCE_TIMEOUT_S: '20' },
  });
  let out = '';
  let err = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    out += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    err += chunk.toString();
  });
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
  let hasExited = false;
  void exited.then(() => {
    hasExited = true;
  });
  const steps = () =>
    out
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Step);
  const output = () => `stdout:\n${out}\nstderr:\n${err}`;
  return {
    child,
    steps,
    output,
    exited,
    waitForStep: async (name, timeoutMs) => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = steps().find((s) => s.step === name);
        if (found !== undefined) return found;
        if (hasExited) throw new Error(`python client exited before step "${name}"\n${output()}`);
        if (Date.now() > deadline) throw new Error(`python client did not reach step "${name}"\n${output()}`);
        await sleep(20);
      }
    },
  };
}

/** Opens a JSON socket the way a browser does: encoding and `bearer.<token>` as subprotocols. */
async function openBrowserStyleSocket(url: string, token: string) {
  const ws = new WebSocket(url, ['gigwire.v1.json', `bearer.${token}`]);
  const frames: Record<string, unknown>[] = [];
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    frames.push({ binary: isBinary, ...(JSON.parse(data.toString('utf8')) as Record<string, unknown>) });
  });
  await new Promise<void>((resolveOpen, reject) => {
    ws.once('open', () => resolveOpen());
    ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    ws.once('error', reject);
  });
  const closed = new Promise<void>((done) => ws.once('close', () => done()));
  return {
    ws,
    frames,
    close: async () => {
      ws.close(1000);
      await closed;
    },
  };
}

describe('a Python client written from PROTOCOL.md', () => {
  let db: TestDatabase;
  let node: RunningNode;
  let api: ReturnType<typeof httpClient>;
  const logs = captureLogs();

  beforeAll(async () => {
    await ensurePythonPackages();
    db = await createMigratedDatabase();
    node = await startNode(
      testConfig({ DATABASE_URL: db.url, REDIS_URL: sharedRedisUrl(), REDIS_PREFIX: uniqueRedisPrefix() }),
      logs.log,
      { pid: process.pid },
    );
    api = httpClient(node.baseUrl);
  }, 600_000);
  afterAll(async () => {
    if (node !== undefined) await runShutdown(node.shutdownSteps, { log: logs.log, timeoutMs: 10_000 });
    await db?.drop();
  });

  const listeners: [string, () => string][] = [
    [
      'the uWebSockets.js edge (WS_PORT)',
      () => {
        if (node.uwsUrl === undefined) throw new Error('no uWebSockets.js listener: no native build loaded');
        return node.uwsUrl;
      },
    ],
    ['/ws on the Fastify port', () => `${node.baseUrl.replace('http', 'ws')}/ws`],
  ];

  it.each(listeners)(
    'sees a contact come online through %s',
    async (_name, urlOf) => {
      const url = urlOf();
      const a: Registered = await registerUser(api);
      const b: Registered = await registerUser(api);
      const added = await api.post(`/v1/me/contacts/${b.id}`, undefined, a.accessToken);
      expect(added.status).toBe(204);
      // Presence is for mutual contacts: b adds a back.
      expect((await api.post(`/v1/me/contacts/${a.id}`, undefined, b.accessToken)).status).toBe(204);

      const python = runPythonClient(url, a.accessToken, b.id);
      try {
        const connect = await python.waitForStep('connect', 15_000);
        expect(connect.subprotocol).toBe('gigwire.v1.msgpack');
        const hello = await python.waitForStep('hello', 15_000);
        expect(hello).toMatchObject({ userId: a.id, protocolVersion: 1, encoding: 'msgpack' });
        expect(hello.limits).toMatchObject({ maxFrameBytes: 65536 });
        const subscribed = await python.waitForStep('subscribe', 15_000);
        expect(subscribed.contact).toEqual({ userId: b.id, status: 'offline', lastSeenAt: null });
        // A documented "reconnect" close (1006) makes the client start over; the last attempt ran every step.
        const names = python.steps().map((s) => s.step);
        expect(names.slice(names.lastIndexOf('connect'))).toEqual([
          'connect',
          'hello',
          'ping',
          'pong',
          'subscribe',
        ]);

        // B comes online only now, so the Python client must learn it from a push.
        const socketB = await openBrowserStyleSocket(url, b.accessToken);
        try {
          expect(socketB.ws.protocol).toBe('gigwire.v1.json');
          const code = await Promise.race([python.exited, sleep(25_000).then(() => 'timeout' as const)]);
          expect(code, python.output()).toBe(0);
          const online = python.steps().find((s) => s.step === 'online');
          const reconnects = python.steps().filter((s) => s.step === 'reconnect');
          if (reconnects.length > 0) console.log(`python client reconnected: ${JSON.stringify(reconnects)}`);
          expect(online, python.output()).toMatchObject({
            userId: b.id,
            // After a reconnect past the subscribe, the fresh subscribe may already show B online.
            source: reconnects.length === 0 ? 'push' : expect.stringMatching(/^(push|subscribe)$/),
            state: { userId: b.id, status: 'online', lastSeenAt: null },
          });
          expect(python.steps().at(-1)).toEqual({ step: 'done', ok: true });
          // B's own socket got its hello as a JSON text frame.
          expect(socketB.frames[0]).toMatchObject({
            binary: false,
            t: 'hello',
            d: { userId: b.id, encoding: 'json' },
          });
        } finally {
          await socketB.close();
        }
      } finally {
        if (python.child.exitCode === null) python.child.kill('SIGKILL');
      }
    },
    60_000,
  );

  it('exits non-zero with an UNAUTHORIZED handshake for a bad token', async () => {
    const python = runPythonClient(
      `${node.baseUrl.replace('http', 'ws')}/ws`,
      'not-a-token',
      crypto.randomUUID(),
    );
    const code = await python.exited;
    expect(code).toBe(1);
    expect(python.steps().at(-1), python.output()).toMatchObject({
      step: 'error',
      error: 'handshake',
      status: 401,
    });
  }, 30_000);
});
