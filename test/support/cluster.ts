/**
 * The docker-compose topology run for real without Docker: nginx from Debian with deploy/nginx.conf
 * (the file compose mounts; only its ports, upstream hosts and file paths are rewritten), N gateway
 * processes, one api and one worker process, each a real `npm start` child (spawn.ts) with its ROLE,
 * all on 127.0.0.1 and free ports, in front of a PostgreSQL and a Redis given by the caller. Clients
 * use one origin, the proxy's: REST at `origin`, WebSockets at `wsUrl`.
 * Used by test/integration/cluster-proxy.int.test.ts and by `npm run cluster` (scripts/cluster.ts).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { GigwireClient } from '../../protocol/src/client/index.js';
import { settings } from '../../src/config/index.js';
import { ensureProgram } from '../../src/platform/system-packages.js';
import { freePort } from './servers.js';
import { type GigwireProcess, pollHttp, spawnGigwire } from './spawn.js';

const projectRoot = resolve(import.meta.dirname, '../..');
export const NGINX_CONF = join(projectRoot, 'deploy', 'nginx.conf');

/** Debian's nginx (/usr/sbin is not on every PATH); installed with apt-get when missing and root. */
export async function ensureNginx(): Promise<string> {
  return ensureProgram(
    { command: 'nginx', debianPackage: 'nginx', extraPaths: ['/usr/sbin/nginx'] },
    { install: process.getuid?.() === 0, searchPath: process.env.PATH ?? '/usr/bin:/bin' },
  );
}

export interface NginxTemplate {
  /** host:port nginx listens on. */
  readonly listen: string;
  /** host:port of the api process (`api:3000` in compose). */
  readonly api: string;
  /** host:port of each gateway's uWebSockets.js listener (`gateway-N:3001` in compose). */
  readonly gateways: readonly string[];
  /** Directory for the pid file, logs and nginx's temp files. */
  readonly dir: string;
}

const replaceOnce = (text: string, pattern: RegExp, replacement: string): string => {
  if (!pattern.test(text)) throw new Error(`deploy/nginx.conf no longer has ${pattern}: update cluster.ts`);
  return text.replace(pattern, replacement);
};

/**
 * deploy/nginx.conf with compose's service names and ports swapped for local addresses, plus the
 * paths nginx needs to run from a temp directory. Everything else (locations, headers, timeouts,
 * allow lists) is the file as shipped. Throws when the file's shape changed, so a drift between
 * the harness and compose fails loudly instead of testing something else.
 */
export function renderNginxConfig(source: string, template: NginxTemplate): string {
  const serverLine = /^([ \t]*)server gateway-\d+:\d+;[^\n]*\n/gm;
  const indent = serverLine.exec(source)?.[1];
  if (indent === undefined) throw new Error('deploy/nginx.conf has no `server gateway-N:PORT;` line');
  let first = true;
  let text = source.replace(serverLine, () => {
    if (!first) return '';
    first = false;
    return template.gateways.map((address) => `${indent}server ${address};\n`).join('');
  });
  text = replaceOnce(text, /server api:\d+;/, `server ${template.api};`);
  text = replaceOnce(text, /listen \d+;/, `listen ${template.listen};`);
  const dir = template.dir;
  text = replaceOnce(
    text,
    /^events \{/m,
    [
      `pid ${join(dir, 'nginx.pid')};`,
      `error_log ${join(dir, 'error.log')} warn;`,
      'worker_processes 1;',
      'events {',
    ].join('\n'),
  );
  // The file's own access log (its format) goes to the temp directory; without one, nginx's default.
  const accessLog = /^([ \t]*access_log )\S+( [^;\n]*)?;/m;
  const ownAccessLog = accessLog.test(text);
  if (ownAccessLog) text = text.replace(accessLog, `$1${join(dir, 'access.log')}$2;`);
  return replaceOnce(
    text,
    /^http \{\n/m,
    [
      'http {',
      ...(ownAccessLog ? [] : [`  access_log ${join(dir, 'access.log')};`]),
      ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map(
        (kind) => `  ${kind}_temp_path ${join(dir, `${kind}_temp`)};`,
      ),
      '',
    ].join('\n'),
  );
}

export interface ClusterProcess {
  readonly name: string;
  readonly role: 'api' | 'worker' | 'gateway';
  readonly env: Readonly<Record<string, string>>;
  /** The running child; replaced by `restart`. */
  readonly process: () => GigwireProcess;
  /** http://127.0.0.1:<PORT> of this process (health, metrics; REST for the api). */
  readonly baseUrl: () => string;
  /** The uWebSockets.js port (gateways). */
  readonly wsPort: number | undefined;
}

export interface ClusterOptions {
  readonly databaseUrl: string;
  readonly redisUrl: string;
  readonly redisPrefix?: string;
  /** Gateway processes behind the proxy (compose ships 2). Default 3. */
  readonly gateways?: number;
  /** Directory for nginx's config, logs and temp files. */
  readonly dir: string;
  /** Port of the proxy; default a free one. */
  readonly port?: number;
  /** Added to every gigwire process's environment. */
  readonly env?: Readonly<Record<string, string>>;
  /** Every output line of every process, e.g. to print them (`npm run cluster`). */
  readonly onOutput?: (name: string, line: string) => void;
  /** How long each process may take to come up. Default 90 s. */
  readonly startTimeoutMs?: number;
  /**
   * The per-IP limits as shipped (`npm run cluster`), not lifted as spawn.ts lifts them for tests,
   * whose clients all connect from 127.0.0.1.
   */
  readonly shippedLimits?: boolean;
}

/**
 * The per-IP settings, each set empty, which gigwire reads as unset: its shipped default. spawn.ts
 * lifts them to 1 000 000 for tests; `npm run cluster` showed the compose topology with those test
 * values (no 429 for a client's 41st upgrade in a second, nor for its 257th socket).
 */
export const SHIPPED_PER_IP_LIMITS: Readonly<Record<string, string>> = Object.fromEntries(
  Object.keys(settings)
    .filter((name) => name.includes('_PER_IP'))
    .map((name) => [name, '']),
);

/** The environment every gigwire process of the cluster shares (ROLE, NODE_ID and ports are added). */
export function clusterEnvironment(
  options: Pick<ClusterOptions, 'databaseUrl' | 'redisUrl' | 'redisPrefix' | 'env' | 'shippedLimits'>,
  origin: string,
): Record<string, string> {
  return {
    DATABASE_URL: options.databaseUrl,
    REDIS_URL: options.redisUrl,
    ...(options.redisPrefix === undefined ? {} : { REDIS_PREFIX: options.redisPrefix }),
    HOST: '127.0.0.1',
    PUBLIC_URL: origin,
    // Behind one nginx on this machine: it writes X-Forwarded-For, and only it may.
    TRUST_PROXY: 'loopback',
    ...(options.shippedLimits === true ? SHIPPED_PER_IP_LIMITS : {}),
    ...options.env,
    // The harness finds each process's ports in its "is up" line, an info line.
    LOG_LEVEL: 'info',
  };
}

export interface Cluster {
  /** http://127.0.0.1:<proxy port>: REST, docs, health through the proxy. */
  readonly origin: string;
  /** ws://127.0.0.1:<proxy port>/ws. */
  readonly wsUrl: string;
  readonly api: ClusterProcess;
  readonly worker: ClusterProcess;
  readonly gateways: readonly ClusterProcess[];
  readonly nginx: () => ChildProcess;
  /** Starts a stopped or killed process again, with the same name and ports. */
  readonly restart: (target: ClusterProcess) => Promise<void>;
  /** nginx, then gateways, api and worker: SIGTERM, SIGKILL after `graceMs` (default 10 s). */
  readonly stop: (graceMs?: number) => Promise<void>;
}

const lines = (child: ChildProcess, name: string, onOutput: ClusterOptions['onOutput']) => {
  if (onOutput === undefined) return;
  for (const stream of [child.stdout, child.stderr]) {
    let rest = '';
    stream?.on('data', (chunk: Buffer) => {
      const parts = (rest + chunk.toString()).split('\n');
      rest = parts.pop() ?? '';
      for (const line of parts) if (line !== '') onOutput(name, line);
    });
  }
};

async function stopChild(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolveExit) => child.once('exit', () => resolveExit()));
  child.kill('SIGTERM');
  const inTime = await Promise.race([exited.then(() => true), sleep(graceMs).then(() => false)]);
  if (!inTime) {
    child.kill('SIGKILL');
    await exited;
  }
}

/**
 * Starts the api, the worker and the gateways together (migrations take an advisory lock, so
 * parallel starts are safe), then nginx in front of them, and resolves once a request through the
 * proxy reaches the api. A failed start stops whatever had started.
 */
/** A free loopback port in 20000–31999, outside the kernel's ephemeral range. */
async function freeStablePort(): Promise<number> {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    const free = await new Promise<boolean>((resolveFree) => {
      const probe = createServer();
      probe.once('error', () => resolveFree(false));
      probe.listen(port, '127.0.0.1', () => probe.close(() => resolveFree(true)));
    });
    if (free) return port;
  }
}

export async function startCluster(options: ClusterOptions): Promise<Cluster> {
  const nginxBinary = await ensureNginx();
  const port = options.port ?? (await freePort());
  const origin = `http://127.0.0.1:${port}`;
  const startTimeoutMs = options.startTimeoutMs ?? 90_000;
  const common = clusterEnvironment(options, origin);

  interface Slot {
    name: string;
    role: ClusterProcess['role'];
    env: Record<string, string>;
    child: GigwireProcess | undefined;
    baseUrl: string;
    wsPort: number | undefined;
  }
  const slot = (name: string, role: Slot['role'], env: Record<string, string>): Slot => ({
    name,
    role,
    env: { ...common, ROLE: role, NODE_ID: name, ...env },
    child: undefined,
    baseUrl: '',
    wsPort: undefined,
  });
  const slots: Slot[] = [
    slot('api-1', 'api', {}),
    slot('worker-1', 'worker', {}),
    ...Array.from({ length: options.gateways ?? 3 }, (_, i) => slot(`gateway-${i + 1}`, 'gateway', {})),
  ];
  // Ports below Linux's ephemeral range (32768+), so that a process started again after a SIGKILL
  // gets its port back: an outgoing connection may meanwhile have taken a port from that range.
  for (const s of slots) {
    s.env.PORT = String(await freeStablePort());
    if (s.role === 'gateway') s.env.WS_PORT = String(await freeStablePort());
  }

  const launch = async (s: Slot) => {
    const child = spawnGigwire(s.env);
    s.child = child;
    lines(child.child, s.name, options.onOutput);
    const up = await child.waitForLog(
      (l) => typeof l.msg === 'string' && l.msg.includes(' is up at '),
      startTimeoutMs,
    );
    s.baseUrl = String(up.msg).split(' is up at ')[1] ?? '';
    // Keep the ports across restarts: nginx's config names them.
    s.env.PORT = new URL(s.baseUrl).port;
    if (s.role === 'gateway') {
      const websocket = (up.urls as { websocket?: string } | undefined)?.websocket ?? '';
      s.wsPort = Number(new URL(websocket).port);
      s.env.WS_PORT = String(s.wsPort);
    }
  };

  let nginx: ChildProcess | undefined;
  const stop = async (graceMs = 10_000) => {
    if (nginx !== undefined) await stopChild(nginx, graceMs);
    const order: Slot['role'][] = ['gateway', 'api', 'worker'];
    for (const role of order) {
      await Promise.all(
        slots
          .filter((s) => s.role === role && s.child !== undefined)
          .map((s) => stopChild((s.child as GigwireProcess).child, graceMs)),
      );
    }
  };

  try {
    await Promise.all(slots.map(launch));
    const dir = options.dir;
    mkdirSync(dir, { recursive: true });
    // nginx's workers run as `nobody` when started by root: they must reach the temp directories.
    chmodSync(dir, 0o755);
    const confPath = join(dir, 'nginx.conf');
    const api = slots.find((s) => s.role === 'api') as Slot;
    writeFileSync(
      confPath,
      renderNginxConfig(readFileSync(NGINX_CONF, 'utf8'), {
        listen: `127.0.0.1:${port}`,
        api: `127.0.0.1:${api.env.PORT}`,
        gateways: slots.filter((s) => s.role === 'gateway').map((s) => `127.0.0.1:${s.wsPort}`),
        dir,
      }),
    );
    nginx = spawn(
      nginxBinary,
      ['-p', dir, '-c', confPath, '-e', join(dir, 'error.log'), '-g', 'daemon off;'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    lines(nginx, 'nginx', options.onOutput);
    const ready = await pollHttp(`${origin}/health/live`, (status) => status === 200, 15_000);
    if (ready.status !== 200) {
      const log = (() => {
        try {
          return readFileSync(join(dir, 'error.log'), 'utf8');
        } catch {
          return '';
        }
      })();
      throw new Error(`the proxy did not answer /health/live (last status ${ready.status})\n${log}`);
    }
  } catch (error) {
    await stop(2_000);
    throw error;
  }

  const view = (s: Slot): ClusterProcess => ({
    name: s.name,
    role: s.role,
    env: s.env,
    process: () => s.child as GigwireProcess,
    baseUrl: () => s.baseUrl,
    wsPort: s.wsPort,
  });
  const views = new Map(slots.map((s) => [s.name, view(s)]));
  const get = (s: Slot) => views.get(s.name) as ClusterProcess;
  return {
    origin,
    wsUrl: `ws://127.0.0.1:${port}/ws`,
    api: get(slots[0] as Slot),
    worker: get(slots[1] as Slot),
    gateways: slots.filter((s) => s.role === 'gateway').map(get),
    nginx: () => nginx as ChildProcess,
    restart: async (target) => {
      const s = slots.find((candidate) => candidate.name === target.name);
      if (s === undefined) throw new Error(`no process ${target.name} in this cluster`);
      if (s.child !== undefined) await stopChild(s.child.child, 5_000);
      await launch(s);
    },
    stop,
  };
}

/**
 * Sum of one metric's samples on a process's own /metrics (inspection of the process, not client
 * traffic): open sockets, room takeovers, fenced writes.
 */
export async function metricSum(target: ClusterProcess, name: string): Promise<number> {
  const text = await (await fetch(`${target.baseUrl()}/metrics`)).text();
  return text
    .split('\n')
    .filter((line) => line.startsWith(`${name} `) || line.startsWith(`${name}{`))
    .reduce((sum, line) => sum + Number(line.split(' ').pop()), 0);
}

/** Polls `done` every 50 ms until it holds or `timeoutMs` passed; its last answer. */
export async function until(done: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> {
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; await sleep(50)) {
    if (await done()) return true;
  }
  return done();
}

/**
 * room.send until acknowledged (through reconnects and room moves): every retry reuses the
 * clientMsgId, so the message is stored once. Gives up after `budgetMs`.
 */
export async function sendUntilAcked(
  client: GigwireClient,
  roomId: string,
  clientMsgId: string,
  budgetMs = 30_000,
): Promise<{ seq: number; at: number; issuedAt: number }> {
  const issuedAt = Date.now();
  for (;;) {
    try {
      const ack = await client.request(
        'room.send',
        { roomId, clientMsgId, body: clientMsgId },
        { timeoutMs: 4_000 },
      );
      return { seq: ack.seq, at: Date.now(), issuedAt };
    } catch (error) {
      if (Date.now() > issuedAt + budgetMs) throw error;
      await sleep(100);
    }
  }
}
