/**
 * `npm run cluster [-- --gateways N] [-- --port P]`: the docker-compose topology on this machine without
 * Docker. A throwaway PostgreSQL and Redis in a temp directory, then nginx with deploy/nginx.conf in
 * front of N gateway processes (default 3), one api and one worker process (test/support/cluster.ts).
 * Open http://127.0.0.1:P (default 8080): REST, docs and the web app; the WebSocket is /ws on the
 * same origin. Ctrl-C stops everything and removes the temp directory (its data too).
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { startCluster } from '../test/support/cluster.js';
import { ensureRedisServer, startPostgresServer, startRedisServer } from '../test/support/servers.js';

const { values } = parseArgs({
  options: {
    gateways: { type: 'string', default: '3' },
    port: { type: 'string', default: '8080' },
    quiet: { type: 'boolean', default: false },
  },
});
const gateways = Number(values.gateways);
const port = Number(values.port);
if (!Number.isInteger(gateways) || gateways < 1 || gateways > 16 || !Number.isInteger(port)) {
  process.stderr.write('usage: npm run cluster -- [--gateways 1-16] [--port 8080] [--quiet]\n');
  process.exit(2);
}

const say = (line: string) => process.stdout.write(`cluster: ${line}\n`);
const root = mkdtempSync(join(tmpdir(), 'gigwire-cluster-'));
// PostgreSQL runs as the `postgres` user when we are root: it must traverse the directory.
chmodSync(root, 0o755);
const stops: (() => Promise<void>)[] = [];
const stopAll = async () => {
  for (const stop of stops.reverse()) await stop().catch(() => undefined);
  rmSync(root, { recursive: true, force: true });
};

try {
  await ensureRedisServer();
  const redis = await startRedisServer(join(root, 'redis'));
  stops.push(redis.stop);
  const postgres = await startPostgresServer(join(root, 'pg'), { durable: true });
  stops.push(postgres.stop);
  const admin = new pg.Client({ connectionString: `${postgres.baseUrl}/postgres` });
  await admin.connect();
  await admin.query('create database gigwire');
  await admin.end();
  say(
    `PostgreSQL ${postgres.baseUrl}/gigwire, Redis ${redis.url}; starting ${gateways} gateways, api, worker`,
  );

  const cluster = await startCluster({
    databaseUrl: `${postgres.baseUrl}/gigwire`,
    redisUrl: redis.url,
    gateways,
    port,
    dir: join(root, 'nginx'),
    ...(values.quiet
      ? {}
      : { onOutput: (name, line) => process.stdout.write(`${name.padEnd(10)} ${line}\n`) }),
  });
  stops.push(() => cluster.stop());
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
  process.stderr.write(`cluster: start failed: ${error instanceof Error ? error.message : String(error)}\n`);
  await stopAll();
  process.exit(1);
}

let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    say('stopping');
    void stopAll().then(() => process.exit(0));
  });
}
