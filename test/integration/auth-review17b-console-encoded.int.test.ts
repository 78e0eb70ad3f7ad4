/**
 * The operators' console decides what an admin may change on the route the router matched, not on
 * the raw path (review 17b). The router decodes percent-escapes, so `PUT …/%63lean/retry` looked
 * like one task's retry to the old pattern on the path and reached bull-board's "clean every task
 * of a status" handler, and `…/%72etry/retry` its "retry every task of a status" handler: the
 * repairs-only gate was bypassed by spelling a route word with an escape. The repairs offered
 * still work, however their path is spelled.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  consoleCookie,
  consoleSignIn,
  failedEscrowTask,
  queueNamed,
  testTaskQueue,
  waitForTaskState,
} from '../support/console.js';
import { sharedRedisUrl, startTestNode, type TestNode, uniqueRedisPrefix } from '../support/context.js';

const ADMIN = { email: 'ops-review17b@example.test', password: 'Saffron-Lynx-93?' };
const redisPrefix = uniqueRedisPrefix();

let testNode: TestNode;
let base: string;
let tasks: ReturnType<typeof testTaskQueue>;

beforeAll(async () => {
  testNode = await startTestNode({
    ADMIN_EMAIL: ADMIN.email,
    ADMIN_PASSWORD: ADMIN.password,
    REDIS_PREFIX: redisPrefix,
  });
  base = testNode.node.baseUrl;
  tasks = testTaskQueue(sharedRedisUrl(), redisPrefix);
});

afterAll(async () => {
  await tasks?.quit();
  await testNode?.stop();
});

const sameSite = () => ({ origin: base, 'sec-fetch-site': 'same-origin' });

async function signInAsAdmin(): Promise<string> {
  const response = await consoleSignIn(base, { login: ADMIN.email, password: ADMIN.password }, sameSite());
  expect(response.status).toBe(303);
  const cookie = consoleCookie(response);
  if (cookie === undefined) throw new Error('no console cookie');
  return cookie;
}

describe('the console gate and percent-escapes', () => {
  it('refuses a route word spelled with escapes and keeps the offered repairs', async () => {
    const cookie = await signInAsAdmin();
    const api = '/admin/queues/api/queues/payments';
    const put = (path: string) =>
      fetch(`${base}${path}`, { method: 'PUT', headers: { cookie, ...sameSite() } });

    for (const path of [
      `${api}/%63lean/retry`,
      `${api}/%72etry/retry`,
      `${api}/clean/%64elayed`,
      `${api}/retry/%63ompleted`,
      '/admin/queues/api/queues/marketplace/%70romote',
      `${api}/%65mpty`,
    ]) {
      const response = await put(path);
      expect(response.status, path).toBe(403);
      expect(((await response.json()) as { code: string }).code, path).toBe('FORBIDDEN');
    }

    // Offered: one exhausted task's retry (its id percent-encoded, as bull-board's UI sends it),
    // and cleaning finished tasks, whichever way the status is spelled.
    const taskId = await failedEscrowTask(tasks);
    const payments = queueNamed(tasks, 'payments');
    const retried = await put(`${api}/${encodeURIComponent(taskId)}/retry`);
    expect(retried.status).toBe(204);
    await waitForTaskState(payments, taskId, 'failed', 2);
    expect((await put(`${api}/clean/%63ompleted`)).status).toBe(200);
    expect((await put(`${api}/retry/failed`)).status).toBe(200);
  });
});
