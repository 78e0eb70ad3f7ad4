/**
 * Vitest global setup: once per run, a real PostgreSQL and a real Redis on free loopback ports in a
 * temp directory, a migrated template database that every test file clones, a migrated PGlite data
 * directory that tests of the embedded database copy (context.ts `migratedDataDir`), and the server
 * built for child processes (child-build.ts). Teardown stops both servers and removes the directory
 * and the build, also when tests fail.
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { createDb } from '../../src/db/create-db.js';
import { migrateToLatest } from '../../src/db/migrate.js';
import { createLogger } from '../../src/platform/logger.js';
import { buildForChildren } from './child-build.js';
import {
  ensureRedisServer,
  type PostgresServer,
  type RedisServer,
  startPostgresServer,
  startRedisServer,
} from './servers.js';

export const TEMPLATE_DATABASE = 'gigwire_template';

declare module 'vitest' {
  export interface ProvidedContext {
    /** postgres://app@127.0.0.1:<port>, without a database name. */
    postgresBaseUrl: string;
    redisUrl: string;
    templateDatabase: string;
    tmpRoot: string;
    /** The server compiled for child processes (test/support/child-build.ts). */
    childBuildDir: string;
    /** A migrated PGlite data directory, closed: copied, never opened (context.ts `migratedDataDir`). */
    pgliteTemplateDir: string;
  }
}

interface RunServers {
  readonly postgresBaseUrl: string;
  readonly redisUrl: string;
  readonly tmpRoot: string;
  readonly childBuildDir: string;
  readonly pgliteTemplateDir: string;
  readonly teardown: () => Promise<void>;
}

async function startRunServers(): Promise<RunServers> {
  const tmpRoot = mkdtempSync(join(tmpdir(), 'gigwire-test-'));
  // The postgres user must be able to traverse every parent directory of its cluster.
  chmodSync(tmpRoot, 0o755);
  const stops: (() => Promise<void>)[] = [];
  const teardown = async () => {
    await Promise.allSettled(stops.map((stop) => stop()));
    rmSync(tmpRoot, { recursive: true, force: true });
  };
  let postgres: PostgresServer;
  let redis: RedisServer;
  let childBuildDir: string;
  // PGlite's initdb is ~7 s of CPU in WASM: made once here, beside the other servers' start (which
  // wait on processes), instead of in every test file that opens an embedded database.
  const pgliteTemplateDir = join(tmpRoot, 'pglite-template');
  const pgliteTemplate = migratedPgliteTemplate(pgliteTemplateDir);
  // Awaited on every path: a failure is reported with the others, never left unhandled.
  pgliteTemplate.catch(() => undefined);
  try {
    const childBuild = await buildForChildren();
    stops.push(async () => childBuild.remove());
    childBuildDir = childBuild.dir;
    await ensureRedisServer();
    redis = await startRedisServer(join(tmpRoot, 'redis'));
    stops.push(redis.stop);
    postgres = await startPostgresServer(join(tmpRoot, 'pg'));
    stops.push(postgres.stop);
  } catch (error) {
    await teardown();
    throw error;
  }
  try {
    const admin = new pg.Client({ connectionString: `${postgres.baseUrl}/postgres` });
    await admin.connect();
    await admin.query(`create database ${TEMPLATE_DATABASE}`);
    await admin.end();
    const log = createLogger({ level: 'warn', pretty: false });
    const handle = await createDb(
      { kind: 'postgres', url: `${postgres.baseUrl}/${TEMPLATE_DATABASE}`, poolMax: 1 },
      log,
    );
    await migrateToLatest(handle.db, log);
    // No connection may stay open on a template, or cloning it fails.
    await handle.close();
    await pgliteTemplate;
  } catch (error) {
    await pgliteTemplate.catch(() => undefined);
    await teardown();
    throw error;
  }
  return {
    postgresBaseUrl: postgres.baseUrl,
    redisUrl: redis.url,
    tmpRoot,
    childBuildDir,
    pgliteTemplateDir,
    teardown,
  };
}

/** A PGlite data directory at `dir`, migrated to the latest schema and closed. */
async function migratedPgliteTemplate(dir: string): Promise<void> {
  const log = createLogger({ level: 'warn', pretty: false });
  const handle = await createDb({ kind: 'pglite', dir }, log);
  try {
    await migrateToLatest(handle.db, log);
  } finally {
    await handle.close();
  }
}

/**
 * The servers of this run and how many projects use them. Two projects (integration files sharing
 * a worker, and the few that need a process of their own) share one PostgreSQL and one Redis: the
 * state lives on globalThis because each project may load this module on its own.
 */
interface SharedServers {
  servers: Promise<RunServers>;
  users: number;
}
const SHARED = Symbol.for('gigwire.test.runServers');
const registry = globalThis as { [SHARED]?: SharedServers };

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const shared = registry[SHARED] ?? { servers: startRunServers(), users: 0 };
  registry[SHARED] = shared;
  shared.users += 1;
  let servers: RunServers;
  try {
    servers = await shared.servers;
  } catch (error) {
    shared.users -= 1;
    if (shared.users === 0) delete registry[SHARED];
    throw error;
  }
  project.provide('postgresBaseUrl', servers.postgresBaseUrl);
  project.provide('redisUrl', servers.redisUrl);
  project.provide('templateDatabase', TEMPLATE_DATABASE);
  project.provide('tmpRoot', servers.tmpRoot);
  project.provide('childBuildDir', servers.childBuildDir);
  project.provide('pgliteTemplateDir', servers.pgliteTemplateDir);
  return async () => {
    shared.users -= 1;
    if (shared.users > 0) return;
    delete registry[SHARED];
    await servers.teardown();
  };
}
