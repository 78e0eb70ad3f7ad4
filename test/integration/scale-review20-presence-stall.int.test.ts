/**
 * Scale review 20: presence changes sent to a Redis that stalls (SIGSTOP, then SIGCONT). The batch
 * times out on this side, yet Redis still runs it once it wakes (the script was already in its
 * socket): the counts end right, and the resync a second later finds nothing left to change. The
 * transitions of that batch were announced by nobody, so watchers on every node kept showing the
 * user who left as online (and one who came as offline) until their next change. The node now
 * announces the current state of every user of a batch in doubt once its resync has run.
 * Real Redis of this file's own (paused for real) and real PostgreSQL (last-seen times).
 */
import type { Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PresenceState } from '../../protocol/src/frames.js';
import type { UserId } from '../../protocol/src/ids.js';
import { createDb, type DbHandle } from '../../src/db/create-db.js';
import type { Database } from '../../src/db/database.js';
import { insertUser } from '../../src/db/repositories/users.repo.js';
import { createPresenceService } from '../../src/domain/presence/service.js';
import { createSocketPresence } from '../../src/gateway/node-presence.js';
import { createMemoryBus } from '../../src/platform/bus/bus.js';
import { PRESENCE_BATCH_TOPIC } from '../../src/platform/bus/topics.js';
import { systemClock } from '../../src/platform/clock.js';
import { createLogger } from '../../src/platform/logger.js';
import { createRedisPresenceStore } from '../../src/platform/presence-store.js';
import { closeRedisClient, createRedisClient, type Redis } from '../../src/platform/redis.js';
import { until } from '../support/cluster.js';
import {
  captureLogs,
  createMigratedDatabase,
  type TestDatabase,
  tempDir,
  uniqueRedisPrefix,
} from '../support/context.js';
import { type RedisServer, startRedisServer } from '../support/servers.js';

const silent = createLogger({ level: 'silent', pretty: false });
const newUser = async (db: Kysely<Database>, name: string) =>
  (await insertUser(db, { username: name, email: `${name}@example.com`, passwordHash: 'x', roles: [] }))
    .id as UserId;

describe('presence through a stalled Redis', () => {
  let database: TestDatabase;
  let handle: DbHandle;
  let server: RedisServer;
  let redis: Redis;
  const logs = captureLogs();

  beforeAll(async () => {
    [database, server] = await Promise.all([
      createMigratedDatabase(),
      startRedisServer(tempDir('presence-stall-redis')),
    ]);
    handle = await createDb({ kind: 'postgres', url: database.url, poolMax: 2 }, silent);
    // As on a node: request-path commands give up after a bound instead of waiting for Redis.
    redis = createRedisClient({ endpoint: server.url, name: 'main', log: silent, commandTimeoutMs: 300 });
  });
  afterAll(async () => {
    server.process().kill('SIGCONT');
    await closeRedisClient(redis);
    await server.stop();
    await handle.close();
    await database.drop();
  });

  it('announces a close and an open whose batch timed out but ran once Redis woke', async () => {
    const store = createRedisPresenceStore({
      redis,
      prefix: uniqueRedisPrefix(),
      nodeId: 'node-a',
      leaseMs: 10_000,
    });
    const bus = createMemoryBus(() => undefined);
    const announced: PresenceState[] = [];
    await bus.subscribe(PRESENCE_BATCH_TOPIC, (batch) => announced.push(...batch.states));
    const presence = createPresenceService({
      db: handle.db,
      store,
      bus,
      clock: systemClock,
      batchIntervalMs: 0,
    });
    const sockets = createSocketPresence({ presence, log: logs.log });
    const statuses = (userId: UserId) => announced.filter((s) => s.userId === userId).map((s) => s.status);
    const [alice, bob] = [await newUser(handle.db, 'stall_a'), await newUser(handle.db, 'stall_b')];

    sockets.opened(alice);
    await presence.drained();
    expect(statuses(alice)).toEqual(['online']);

    server.process().kill('SIGSTOP');
    try {
      sockets.closed(alice); // her last socket: the batch reaches Redis's socket, then times out
      sockets.opened(bob);
      expect(await until(() => logs.text().includes('presence changes failed'), 5_000)).toBe(true);
    } finally {
      server.process().kill('SIGCONT');
    }
    // Redis ran the stalled batch as it woke: the counts are right without any repair.
    expect(await store.isOnline([alice, bob])).toEqual([false, true]);

    // Watchers hear what happened once the node's resync has run (a second after the failure).
    expect(await until(() => statuses(alice).length === 2 && statuses(bob).length === 1, 5_000)).toBe(true);
    await presence.drained();
    expect(statuses(alice)).toEqual(['online', 'offline']);
    expect(statuses(bob)).toEqual(['online']);
    presence.stop();
  });
});
