/**
 * Presence across nodes sharing Redis and Postgres: a watcher on one node sees a contact who is
 * connected to another node, and sees them go offline within 15 s when that node dies (SIGKILL:
 * no socket is closed cleanly, only its presence lease runs out).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
import { httpClient, registerUser } from '../support/http.js';
import { type GigwireProcess, spawnGigwire } from '../support/spawn.js';
import { openSocket } from '../support/ws-client.js';

describe('presence across nodes', () => {
  let db: TestDatabase;
  let nodeA: RunningNode;
  let nodeB: GigwireProcess | undefined;
  const prefix = uniqueRedisPrefix();
  const logs = captureLogs();

  beforeAll(async () => {
    db = await createMigratedDatabase();
    nodeA = await startNode(
      testConfig({
        DATABASE_URL: db.url,
        REDIS_URL: sharedRedisUrl(),
        REDIS_PREFIX: prefix,
        NODE_ID: 'node-a',
      }),
      logs.log,
      { pid: process.pid },
    );
  });
  afterAll(async () => {
    await nodeB?.stop('SIGKILL').catch(() => undefined);
    await runShutdown(nodeA.shutdownSteps, { log: logs.log, timeoutMs: 10_000 });
    await db.drop();
  });

  it('follows a contact on another node, and marks them offline within 15 s of that node dying', async () => {
    const api = httpClient(nodeA.baseUrl);
    const [a, b] = [await registerUser(api), await registerUser(api)];
    await api.post(`/v1/me/contacts/${b.id}`, undefined, a.accessToken);
    await api.post(`/v1/me/contacts/${a.id}`, undefined, b.accessToken); // presence needs mutual contacts
    const watcher = await openSocket(nodeA.uwsUrl ?? '', a.accessToken, 'msgpack');
    expect(await watcher.request('presence.subscribe', { userIds: [b.id] })).toMatchObject({ t: 'ok' });

    nodeB = spawnGigwire({
      ROLE: 'gateway',
      NODE_ID: 'node-b',
      DATABASE_URL: db.url,
      REDIS_URL: sharedRedisUrl(),
      REDIS_PREFIX: prefix,
    });
    const baseB = await nodeB.waitUntilUp(60_000);
    const onB = await openSocket(`${baseB.replace(/^http/, 'ws')}/ws`, b.accessToken, 'json');
    await onB.next((f) => f.t === 'hello');
    await watcher.next((f) => f.t === 'presence' && (f.d as { status: string }).status === 'online', 10_000);

    const killedAt = Date.now();
    await nodeB.stop('SIGKILL');
    const offline = await watcher.next(
      (f) => f.t === 'presence' && (f.d as { status: string }).status === 'offline',
      16_000,
    );
    expect(Date.now() - killedAt).toBeLessThan(15_000);
    expect((offline.d as { userId: string }).userId).toBe(b.id);
    watcher.close();
  }, 40_000);
});
