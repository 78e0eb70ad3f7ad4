/**
 * Vitest global setup: once per run, a real PostgreSQL and a real Redis on free loopback ports in a
 * temp directory, and a migrated template database that every test file clones. Teardown stops both
 * and removes the directory, also when tests fail.
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { createDb } from '../../src/db/create-db.js';
import { migrateToLatest } from '../../src/db/migrate.js';
import { createLogger } from '../../src/platform/logger.js';
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
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
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
  try {
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
  } catch (error) {
    await teardown();
    throw error;
  }
  project.provide('postgresBaseUrl', postgres.baseUrl);
  project.provide('redisUrl', redis.url);
  project.provide('templateDatabase', TEMPLATE_DATABASE);
  project.provide('tmpRoot', tmpRoot);
  return teardown;
}
