/**
 * Redis that cannot take writes now — a failover that left the node on a replica (READONLY), as
 * PostgreSQL's read-only standby is for the database: a login (whose limiter counts attempts in a
 * Redis MULTI, refused EXECABORT because of the READONLY inside) answered 500 INTERNAL ("our bug")
 * instead of 503 UNAVAILABLE ("retry later"). Once Redis takes writes again, so does the login.
 * One node on a redis-server of its own, made a replica of a master that does not answer.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestNode, type TestNode, tempDir } from '../support/context.js';
import { httpClient, registerUser } from '../support/http.js';
import { untilDefined } from '../support/poll.js';
import { freePort, type RedisServer, startRedisServer } from '../support/servers.js';

const run = promisify(execFile);

describe('REST while Redis is a read-only replica', () => {
  let redis: RedisServer;
  let testNode: TestNode;
  const redisCli = (...args: string[]) => run('redis-cli', ['-p', String(redis.port), ...args]);

  beforeAll(async () => {
    redis = await startRedisServer(tempDir('review17b-redis'));
    testNode = await startTestNode({ REDIS_URL: redis.url });
  });
  afterAll(async () => {
    await redisCli('replicaof', 'no', 'one').catch(() => undefined);
    await testNode?.stop();
    await redis?.stop();
  });

  it('answers a login 503 UNAVAILABLE problem+json, not 500, and logs in once Redis takes writes again', async () => {
    const api = httpClient(testNode.node.baseUrl);
    const user = await registerUser(api);
    const login = () => api.post('/v1/auth/login', { login: user.username, password: user.password });

    // A replica of a master nobody answers on: it keeps serving reads, refuses writes (READONLY).
    await redisCli('replicaof', '127.0.0.1', String(await freePort()));
    try {
      const refused = await login();
      expect(refused.status).toBe(503);
      expect(refused.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(refused.body).toMatchObject({ code: 'UNAVAILABLE', status: 503 });
    } finally {
      await redisCli('replicaof', 'no', 'one');
    }
    const accepted = await untilDefined(async () => {
      const response = await login();
      return response.status === 200 ? response : undefined;
    }, 'a login once Redis takes writes');
    expect(accepted.body).toMatchObject({ accessToken: expect.any(String) });
  }, 60_000);
});
