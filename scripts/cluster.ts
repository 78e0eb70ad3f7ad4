/**
 * `npm run cluster [-- --gateways N] [-- --port P]`: the docker-compose topology on this machine without
 * Docker. A throwaway PostgreSQL and Redis in a temp directory, then nginx with deploy/nginx.conf in
 * front of N gateway processes (default 3), one api and one worker process (test/support/cluster.ts).
 * Open http://127.0.0.1:P (default 8080): REST, docs and the web app; the WebSocket is /ws on the
 * same origin. Ctrl-C stops everything and removes the temp directory (its data too).
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { startCluster } from '../test/support/cluster.js';
import { ensureRedisServer, startPostgresServer, startRedisServer } from '../test/support/servers.js';

const USAGE = 'usage: npm run cluster -- [--gateways 1-16] [--port 1-65535] [--quiet]\n';
/** What is wrong with the command line, then the usage, and exit 2: never a stack trace. */
const refuse = (problem: string): never => {
  process.stderr.write(`cluster: ${problem}\n${USAGE}`);
  process.exit(2);
};

function commandLine() {
  try {
    return parseArgs({
      options: {
        gateways: { type: 'string', default: '3' },
        port: { type: 'string', default: '8080' },
        quiet: { type: 'boolean', default: false },
      },
    }).values;
  } catch (error) {
    // A mistyped option (`--gatways`), a missing value or a stray argument.
    return refuse(error instanceof Error ? error.message : String(error));
  }
}
const values = commandLine();
const wholeNumber = (text: string) => (/^\d+$/.test(text) ? Number(text) : Number.NaN);
const gateways = wholeNumber(values.gateways);
const port = wholeNumber(values.port);
if (!(gateways >= 1 && gateways <= 16)) refuse(`--gateways ${JSON.stringify(values.gateways)}: must be 1-16`);
// Checked here, before PostgreSQL and Redis are started for nothing (nginx listens on it; the
// processes' PUBLIC_URL is built from it).
if (!(port >= 1 && port <= 65_535)) refuse(`--port ${JSON.stringify(values.port)}: must be 1-65535`);

// nginx binds it last, after PostgreSQL, Redis and every gigwire process have started: a port
// already taken (a second `npm run cluster`, `npm start` on 8080) failed 40 s later as "the proxy
// did not answer /health/live (last status 404)", the other server's answer. Checked first instead.
const portProblem = await new Promise<string | undefined>((settle) => {
  const probe = createServer();
  probe.once('error', (error: NodeJS.ErrnoException) => settle(error.code ?? error.message));
  probe.listen(port, '127.0.0.1', () => probe.close(() => settle(undefined)));
});
if (portProblem !== undefined) {
  process.stderr.write(
    `cluster: start failed: cannot listen on 127.0.0.1:${port} (${portProblem}); stop what uses it or choose another with --port\n`,
  );
  process.exit(1);
}

const say = (line: string) => process.stdout.write(`cluster: ${line}\n`);
const root = mkdtempSync(join(tmpdir(), 'gigwire-cluster-'));
// PostgreSQL runs as the `postgres` user when we are root: it must traverse the directory.
chmodSync(root, 0o755);
const stops: (() => Promise<void>)[] = [];
let stopped: Promise<void> | undefined;
/** Stops everything started so far, newest first, and removes the directory; once. */
const stopAll = () => {
  stopped ??= (async () => {
    for (const stop of [...stops].reverse()) await stop().catch(() => undefined);
    rmSync(root, { recursive: true, force: true });
  })();
  return stopped;
};

// Listening from the very start: a Ctrl-C or SIGTERM while things start must not end this script
// with the default action, which left PostgreSQL (pg_ctl puts it in a session of its own, so even
// the terminal's Ctrl-C never reaches it), Redis, the gigwire processes and the temp directory
// behind. A signal during the start stops everything once the step in progress has ended. Later
// signals change nothing: under `npm run cluster` one Ctrl-C arrives twice (from the terminal and
// forwarded by npm).
let starting = true;
let stopRequested = false;
class StopRequested extends Error {}
const unlessStopRequested = () => {
  if (stopRequested) throw new StopRequested('stop requested while starting');
};
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stopRequested) return;
    stopRequested = true;
    if (starting) {
      say('stopping once the step in progress ends');
      return;
    }
    say('stopping');
    void stopAll().then(() => process.exit(0));
  });
}

try {
  await ensureRedisServer();
  unlessStopRequested();
  const redis = await startRedisServer(join(root, 'redis'));
  stops.push(redis.stop);
  unlessStopRequested();
  const postgres = await startPostgresServer(join(root, 'pg'), { durable: true });
  stops.push(postgres.stop);
  unlessStopRequested();
  const admin = new pg.Client({ connectionString: `${postgres.baseUrl}/postgres` });
  await admin.connect();
  await admin.query('create database gigwire');
  await admin.end();
  unlessStopRequested();
  say(
    `PostgreSQL ${postgres.baseUrl}/gigwire, Redis ${redis.url} (data in ${root}); starting ${gateways} gateways, api, worker`,
  );

  const cluster = await startCluster({
    databaseUrl: `${postgres.baseUrl}/gigwire`,
    redisUrl: redis.url,
    gateways,
    port,
    dir: join(root, 'nginx'),
    // The compose topology as shipped: not the test suite's lifted per-IP limits.
    shippedLimits: true,
    ...(values.quiet
      ? {}
      : { onOutput: (name, line) => process.stdout.write(`${name.padEnd(10)} ${line}\n`) }),
  });
  stops.push(() => cluster.stop());
  unlessStopRequested();
  say(
    `up: ${cluster.origin} (REST ${cluster.origin}/v1, docs ${cluster.origin}/docs, WebSocket ${cluster.wsUrl})`,
  );
  for (const p of [cluster.api, cluster.worker, ...cluster.gateways]) {
    say(
      `  ${p.name.padEnd(10)} ${p.role.padEnd(8)} pid ${p.process().pid} ${p.baseUrl()}${p.wsPort === undefined ? '' : ` ws :${p.wsPort}`}`,
    );
  }
  say('Ctrl-C stops everything');
} catch (error) {
  // A step may also fail because the signal reached its processes (Ctrl-C signals the whole group).
  if (!stopRequested) {
    process.stderr.write(
      `cluster: start failed: ${error instanceof Error ? error.message : String(error)}\n`,
    );
  }
  await stopAll();
  process.exit(stopRequested ? 0 : 1);
}
starting = false;
