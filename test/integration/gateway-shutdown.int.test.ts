/**
 * SIGTERM with clients connected: every socket is closed with 1012 (reconnect elsewhere), the user
 * goes offline for watchers, and the process still exits 0 within 10 s.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createMigratedDatabase,
  sharedRedisUrl,
  type TestDatabase,
  uniqueRedisPrefix,
} from '../support/context.js';
import { httpClient, registerUser } from '../support/http.js';
import { type GigwireProcess, spawnGigwire } from '../support/spawn.js';
import { openSocket } from '../support/ws-client.js';

describe('gateway shutdown', () => {
  let db: TestDatabase;
  let server: GigwireProcess | undefined;

  beforeAll(async () => {
    db = await createMigratedDatabase();
  });
  afterAll(async () => {
    await server?.stop('SIGKILL').catch(() => undefined);
    await db.drop();
  });

  it('closes sockets with 1012 and exits 0 within 10 s', async () => {
    server = spawnGigwire({
      DATABASE_URL: db.url,
      REDIS_URL: sharedRedisUrl(),
      REDIS_PREFIX: uniqueRedisPrefix(),
    });
    const baseUrl = await server.waitUntilUp(60_000);
    const uws = await server.waitForLog((l) => l.msg === 'uWebSockets.js listening on /ws');
    const user = await registerUser(httpClient(baseUrl));
    const viaUws = await openSocket(`ws://127.0.0.1:${uws.port}/ws`, user.accessToken, 'msgpack');
    const viaFastify = await openSocket(`${baseUrl.replace(/^http/, 'ws')}/ws`, user.accessToken, 'json');
    await Promise.all([viaUws.next((f) => f.t === 'hello'), viaFastify.next((f) => f.t === 'hello')]);

    const exit = await server.stop('SIGTERM');
    expect(exit).toMatchObject({ code: 0, signal: null });
    expect(exit.ms).toBeLessThan(10_000);
    expect((await viaUws.closed).code).toBe(1012);
    expect((await viaFastify.closed).code).toBe(1012);
  });
});
