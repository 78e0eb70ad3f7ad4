/**
 * `GATEWAY_PROCESSES=N npm start` stopped by SIGTERM while its copies are still starting (a
 * `docker stop` or a rolling restart right after start) is a clean stop: exit 0, as README
 * promises for SIGTERM, not 1 ("a shutdown step failed"). A copy still loading its modules dies of
 * the supervisor's SIGTERM before it has started anything.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  createMigratedDatabase,
  sharedRedisUrl,
  type TestDatabase,
  uniqueRedisPrefix,
} from '../support/context.js';
import { type GigwireProcess, spawnGigwire } from '../support/spawn.js';

const running: GigwireProcess[] = [];
const databases: TestDatabase[] = [];
afterEach(async () => {
  for (const proc of running.splice(0)) await proc.stop('SIGKILL').catch(() => undefined);
  for (const db of databases.splice(0)) await db.drop();
});

describe('GATEWAY_PROCESSES supervisor', () => {
  it('exits 0 on SIGTERM sent as soon as it starts its copies, leaving none behind', async () => {
    const db = await createMigratedDatabase();
    databases.push(db);
    const proc = spawnGigwire({
      GATEWAY_PROCESSES: '2',
      DATABASE_URL: db.url,
      REDIS_URL: sharedRedisUrl(),
      REDIS_PREFIX: uniqueRedisPrefix(),
      LOG_LEVEL: 'info',
    });
    running.push(proc);
    await proc.waitForLog((line) => line.msg === 'starting gateway processes', 60_000);
    const exit = await proc.stop('SIGTERM', 30_000);
    const stopped = proc.logLines().filter((line) => line.msg === 'gateway process stopped');
    expect({ code: exit.code, copies: stopped.length }, proc.stdout()).toEqual({ code: 0, copies: 2 });
  });
});
