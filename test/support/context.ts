/**
 * Per-test-file resources: a freshly migrated database cloned from the run's template, an empty
 * database, a migrated embedded (PGlite) data directory, a Redis key prefix of its own, a temp
 * directory, and a log capture.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { cpSync, mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pg from 'pg';
import { inject } from 'vitest';
import { type RunningNode, type StartNodeOptions, startNode } from '../../src/bin/start-node.js';
import { type Config, loadConfig } from '../../src/config/index.js';
import { createDb } from '../../src/db/create-db.js';
import { createLogger, type Logger } from '../../src/platform/logger.js';
import { runShutdown } from '../../src/platform/shutdown.js';

const uniqueName = (prefix: string) => `${prefix}_${randomBytes(6).toString('hex')}`;

async function withAdmin<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: `${inject('postgresBaseUrl')}/postgres` });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

export interface TestDatabase {
  readonly name: string;
  readonly url: string;
  /** Drops it, ending any connection still open. */
  readonly drop: () => Promise<void>;
}

/** Runs one SQL statement on the database at `url` over a connection of its own: its rows. */
export async function queryRows<T extends pg.QueryResultRow>(
  url: string,
  text: string,
  values: unknown[] = [],
): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(text, values)).rows;
  } finally {
    await client.end();
  }
}

async function createDatabase(template: string | undefined): Promise<TestDatabase> {
  const name = uniqueName('t');
  await withAdmin(async (admin) => {
    // Clones from one template can collide ("source database is being accessed"); retry briefly.
    for (let attempt = 1; ; attempt++) {
      try {
        await admin.query(`create database ${name}${template ? ` template ${template}` : ''}`);
        return;
      } catch (error) {
        if (attempt >= 20) throw error;
        await new Promise((r) => setTimeout(r, 100 * attempt));
      }
    }
  });
  return {
    name,
    url: `${inject('postgresBaseUrl')}/${name}`,
    drop: () =>
      withAdmin(async (admin) => void (await admin.query(`drop database if exists ${name} with (force)`))),
  };
}

/** A database with every migration applied (cloned from the run's template). */
export const createMigratedDatabase = () => createDatabase(inject('templateDatabase'));
/** A database with no tables at all. */
export const createEmptyDatabase = () => createDatabase(undefined);

/** A Redis key prefix no other test file uses. */
export const uniqueRedisPrefix = () => uniqueName('t');

export const sharedRedisUrl = () => inject('redisUrl');

/** A temp directory under the run's root (removed with it at the end of the run). */
export const tempDir = (label: string) => mkdtempSync(join(inject('tmpRoot'), `${label}-`));

/**
 * A DATA_DIR of its own whose embedded database (`<dir>/pglite`, as the node lays it out) is a copy
 * of the run's migrated PGlite template: opening it costs ~1 s of CPU where a new one (initdb in
 * WASM) costs ~7. Tests of a first start (`run-embedded`) or of the migrations begin empty instead.
 */
export function migratedDataDir(label: string): string {
  const dataDir = tempDir(label);
  cpSync(inject('pgliteTemplateDir'), join(dataDir, 'pglite'), { recursive: true });
  return dataDir;
}

/** An embedded database (PGlite) of its own, migrated: a copy of the run's template, opened. */
export const openMigratedPglite = (log: Logger, options: Parameters<typeof createDb>[2] = {}) =>
  createDb({ kind: 'pglite', dir: join(migratedDataDir('pglite'), 'pglite') }, log, options);

export interface LogCapture {
  readonly log: Logger;
  /** Every line logged so far, parsed. */
  readonly lines: () => Record<string, unknown>[];
  /** Every line logged so far, raw. */
  readonly text: () => string;
}

/** A real pino logger (same redaction and serializers as production) writing into memory. */
export function captureLogs(level: 'debug' | 'info' = 'info'): LogCapture {
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk.toString());
      done();
    },
  });
  const log = createLogger({ level, pretty: false, destination });
  const text = () => chunks.join('');
  return {
    log,
    text,
    lines: () =>
      text()
        .split('\n')
        .filter((line) => line.trim() !== '')
        .map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}

/**
 * A Config as `loadConfig` makes it from these variables (nothing read from this process's env).
 * Every test connects from 127.0.0.1, often many sockets per user at once: the per-IP upgrade rate
 * and the per-user socket cap are lifted unless a test sets them (security-exhaustion does).
 */
export function testConfig(env: Record<string, string>): Config {
  return loadConfig(
    {
      PATH: process.env.PATH,
      PORT: '0',
      WS_PORT: '0',
      LOG_PRETTY: 'false',
      WS_UPGRADES_PER_IP_PER_SECOND: '1000000',
      WS_UPGRADE_BURST_PER_IP: '1000000',
      // Many sockets of many users come from 127.0.0.1: the per-IP cap of REST connections is lifted too.
      HTTP_MAX_CONNECTIONS_PER_IP: '1000000',
      WS_MAX_CONNECTIONS_PER_IP: '1000000',
      // Tests register and sign in many users at once from 127.0.0.1.
      PASSWORD_HASHES_PER_IP: '1000000',
      WS_MAX_SOCKETS_PER_USER: '100000',
      // Nodes of one test process would all default to <hostname>-<pid>: a gateway refuses to start
      // under a NODE_ID another live node renews, so each config names its own.
      NODE_ID: `test-${randomUUID().slice(0, 8)}`,
      ...env,
    },
    { cwd: process.cwd(), isRoot: process.getuid?.() === 0, stdoutIsTty: false, pid: process.pid },
  );
}

export interface TestNode {
  readonly node: RunningNode;
  readonly db: TestDatabase;
  readonly logs: LogCapture;
  /** Shuts the node down in order and drops its database. */
  readonly stop: () => Promise<void>;
}

/**
 * A whole gigwire node in this process (the real composition, startNode) on a freshly migrated
 * database of its own, the run's Redis under a prefix of its own, and captured logs.
 */
export async function startTestNode(
  env: Record<string, string> = {},
  options: Omit<StartNodeOptions, 'pid'> = {},
): Promise<TestNode> {
  const db = await createMigratedDatabase();
  const logs = captureLogs();
  const node = await startNode(
    testConfig({
      DATABASE_URL: db.url,
      REDIS_URL: sharedRedisUrl(),
      REDIS_PREFIX: uniqueRedisPrefix(),
      ...env,
    }),
    logs.log,
    { ...options, pid: process.pid },
  );
  return {
    node,
    db,
    logs,
    stop: async () => {
      await runShutdown(node.shutdownSteps, { log: logs.log, timeoutMs: 10_000 });
      await db.drop();
    },
  };
}
