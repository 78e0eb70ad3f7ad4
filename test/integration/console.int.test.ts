/**
 * The operators' console over real HTTP on a whole node: who gets the page and its API, the
 * cookie's flags and its binding to a session, CSRF refusal, login throttling; and the queue
 * metrics in /metrics after tasks in known states.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queueNames } from '../../src/platform/queues/tasks.js';
import {
  consoleCookie,
  consoleSignIn,
  failedEscrowTask,
  queueNamed,
  testTaskQueue,
  waitForTaskState,
} from '../support/console.js';
import { sharedRedisUrl, startTestNode, type TestNode, uniqueRedisPrefix } from '../support/context.js';
import { httpClient, type Registered, registerUser } from '../support/http.js';

const ADMIN = { email: 'ops@example.test', password: 'Cobalt-Heron-77?' };
const redisPrefix = uniqueRedisPrefix();

let testNode: TestNode;
let base: string;
let client: ReturnType<typeof httpClient>;
let tasks: ReturnType<typeof testTaskQueue>;
let worker: Registered;

const get = (path: string, headers: Record<string, string> = {}) =>
  fetch(`${base}${path}`, { redirect: 'manual', headers });
const sameSite = () => ({ origin: base, 'sec-fetch-site': 'same-origin' });

async function signInAsAdmin(extra: Record<string, string> = {}): Promise<string> {
  const response = await consoleSignIn(
    base,
    { login: ADMIN.email, password: ADMIN.password },
    {
      ...sameSite(),
      ...extra,
    },
  );
  expect(response.status).toBe(303);
  const cookie = consoleCookie(response);
  if (cookie === undefined) throw new Error('no console cookie');
  return cookie;
}

async function sql<T>(query: string, values: unknown[] = []): Promise<T[]> {
  const db = new pg.Client({ connectionString: testNode.db.url });
  await db.connect();
  try {
    return (await db.query(query, values)).rows as T[];
  } finally {
    await db.end();
  }
}

beforeAll(async () => {
  testNode = await startTestNode({
    ADMIN_EMAIL: ADMIN.email,
    ADMIN_PASSWORD: ADMIN.password,
    REDIS_PREFIX: redisPrefix,
    // One proxy in front: X-Forwarded-Proto https makes the request HTTPS (the Secure-cookie case).
    TRUST_PROXY: '1',
    LOGIN_MAX_FAILURES: '3',
  });
  base = testNode.node.baseUrl;
  client = httpClient(base);
  tasks = testTaskQueue(sharedRedisUrl(), redisPrefix);
  worker = await registerUser(client);
});

afterAll(async () => {
  await tasks?.quit();
  await testNode?.stop();
});

describe('who gets the console', () => {
  it('sends an anonymous visitor of the page to the sign-in form and gives the API and files nothing', async () => {
    const page = await get('/admin/queues/queue/payments');
    expect(page.status).toBe(302);
    expect(page.headers.get('location')).toBe('/admin/sign-in?next=%2Fadmin%2Fqueues%2Fqueue%2Fpayments');
    for (const path of ['/admin/queues/api/queues', '/admin/queues/static/js/nothing.js']) {
      const response = await get(path);
      expect(response.status).toBe(401);
      expect(response.headers.get('content-type')).toContain('application/problem+json');
      expect(JSON.stringify(await response.json())).not.toContain('payments');
    }
    const form = await get('/admin/sign-in');
    expect(form.status).toBe(200);
    const html = await form.text();
    expect(html).toContain('<form method="post" action="/admin/sign-in">');
    expect(html).not.toMatch(/<script|https?:\/\//);
    // One policy, the console's own (helmet's is replaced), without an upgrade to a missing https://.
    const policy = form.headers.get('content-security-policy') ?? '';
    expect(policy.startsWith("default-src 'self'; base-uri 'self'")).toBe(true);
    expect(policy.match(/default-src/g)).toHaveLength(1);
    expect(policy).not.toContain('upgrade-insecure-requests');
    expect(form.headers.get('cache-control')).toBe('no-store');
  });

  it('refuses a non-admin: no cookie from the form, 403 with a Bearer token on page and API', async () => {
    const refused = await consoleSignIn(base, { login: worker.username, password: worker.password });
    expect(refused.status).toBe(403);
    expect(refused.headers.get('set-cookie')).toBeNull();
    expect(await refused.text()).toContain('not an admin');
    const bearer = { authorization: `Bearer ${worker.accessToken}` };
    expect((await get('/admin/queues', bearer)).status).toBe(403);
    const api = await get('/admin/queues/api/queues', bearer);
    expect(api.status).toBe(403);
    expect(JSON.stringify(await api.json())).not.toContain('payments');
    // The session the refused sign-in started is over.
    const [session] = await sql<{ revoked_reason: string }>(
      'select revoked_reason from sessions where user_id = $1 order by created_at desc limit 1',
      [worker.id],
    );
    expect(session?.revoked_reason).toBe('console_not_admin');
  });

  it('lets a signed-in admin see every queue named in the task definitions', async () => {
    const cookie = await signInAsAdmin();
    const page = await get('/admin/queues', { cookie });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('static/js/main');
    const api = await get('/admin/queues/api/queues', { cookie });
    expect(api.status).toBe(200);
    const body = (await api.json()) as { queues: { name: string }[] };
    expect(body.queues.map((q) => q.name).sort()).toEqual([...queueNames()].sort());
    expect(queueNames()).toEqual(expect.arrayContaining(['emails', 'payments']));
    // An admin's Bearer token works too (scripts).
    const login = await client.post<{ accessToken: string }>('/v1/auth/login', {
      login: ADMIN.email,
      password: ADMIN.password,
    });
    expect(
      (await get('/admin/queues/api/queues', { authorization: `Bearer ${login.body.accessToken}` })).status,
    ).toBe(200);
  });

  it('shows a wrong password as 401 and throttles sign-ins like the REST login (429, Retry-After)', async () => {
    const victim = await registerUser(client);
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) {
      statuses.push(
        (await consoleSignIn(base, { login: victim.username, password: 'wrong-password-1' })).status,
      );
    }
    expect(statuses).toEqual([401, 401, 401, 429]);
    const throttled = await consoleSignIn(base, { login: victim.username, password: victim.password });
    expect(throttled.status).toBe(429);
    expect(Number(throttled.headers.get('retry-after'))).toBeGreaterThan(0);
  });

  it('redirects only inside the console after sign-in', async () => {
    for (const [next, location] of [
      ['/admin/queues/queue/emails', '/admin/queues/queue/emails'],
      ['https://evil.example/', '/admin/queues'],
      ['//evil.example/admin/queues', '/admin/queues'],
    ] as const) {
      const response = await consoleSignIn(base, { login: ADMIN.email, password: ADMIN.password, next });
      expect(response.status).toBe(303);
      expect(response.headers.get('location')).toBe(location);
    }
  });
});

describe('the console cookie', () => {
  it('is HttpOnly, SameSite=Strict, opaque, and Secure (__Host-) only over HTTPS', async () => {
    const plain = await consoleSignIn(base, { login: ADMIN.email, password: ADMIN.password });
    const plainCookie = plain.headers.get('set-cookie') ?? '';
    expect(plainCookie).toMatch(
      /^gigwire_console=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Strict; Max-Age=\d+$/,
    );
    expect(plainCookie).not.toContain('Secure');

    const https = await consoleSignIn(
      base,
      { login: ADMIN.email, password: ADMIN.password },
      {
        'x-forwarded-proto': 'https',
        origin: 'https://ops.example.test',
        'x-forwarded-host': 'ops.example.test',
      },
    );
    expect(https.status).toBe(303);
    const secureCookie = https.headers.get('set-cookie') ?? '';
    expect(secureCookie).toMatch(
      /^__Host-gigwire_console=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Strict; Max-Age=\d+; Secure$/,
    );
    // Over HTTPS only the __Host- cookie counts; over plain HTTP only the plain one.
    const secure = consoleCookie(https) ?? '';
    expect(
      (await get('/admin/queues/api/queues', { cookie: secure, 'x-forwarded-proto': 'https' })).status,
    ).toBe(200);
    expect((await get('/admin/queues/api/queues', { cookie: secure })).status).toBe(401);
  });

  it('is stored only as a hash that no refresh token can match, and is no refresh token itself', async () => {
    const cookie = await signInAsAdmin();
    const value = cookie.split('=')[1] ?? '';
    const rows = await sql<{ token_hash: string }>(
      "select token_hash from refresh_tokens where token_hash like 'console:%'",
    );
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.some((row) => row.token_hash.includes(value))).toBe(false);
    const refresh = await client.post('/v1/auth/refresh', { refreshToken: value });
    expect(refresh.status).toBe(401);
  });

  it('ends with sign-out', async () => {
    const cookie = await signInAsAdmin();
    const out = await fetch(`${base}/admin/sign-out`, {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie, ...sameSite() },
    });
    expect(out.status).toBe(303);
    expect(out.headers.get('set-cookie')).toContain('Max-Age=0');
    expect((await get('/admin/queues/api/queues', { cookie })).status).toBe(401);
  });

  it('ends when the admin logs out everywhere, changes the password, is locked or loses the role', async () => {
    // A second admin of our own, so the configured one keeps its password and account.
    const second = await registerUser(client);
    await sql("update users set roles = '{admin}' where id = $1", [second.id]);
    const signIn = async () => {
      const response = await consoleSignIn(base, { login: second.username, password: second.password });
      expect(response.status).toBe(303);
      return consoleCookie(response) ?? '';
    };
    const bearerLogin = async (password = second.password) =>
      (await client.post<{ accessToken: string }>('/v1/auth/login', { login: second.username, password }))
        .body.accessToken;
    const works = async (cookie: string) => (await get('/admin/queues/api/queues', { cookie })).status;

    let cookie = await signIn();
    expect(await works(cookie)).toBe(200);
    expect((await client.post('/v1/auth/logout-all', undefined, await bearerLogin())).status).toBe(204);
    expect(await works(cookie)).toBe(401);

    cookie = await signIn();
    const newPassword = 'Saffron-Walrus-93!';
    const changed = await client.call('PUT', '/v1/auth/password', {
      body: { currentPassword: second.password, newPassword },
      token: await bearerLogin(),
    });
    expect(changed.status).toBe(204);
    expect(await works(cookie)).toBe(401);

    const relogin = await consoleSignIn(base, { login: second.username, password: newPassword });
    cookie = consoleCookie(relogin) ?? '';
    expect(await works(cookie)).toBe(200);
    await sql("update users set roles = '{worker}' where id = $1", [second.id]);
    expect(await works(cookie)).toBe(403);
    expect((await get('/admin/queues', { cookie })).status).toBe(403);
    await sql("update users set roles = '{admin}' where id = $1", [second.id]);
    expect(await works(cookie)).toBe(200);

    const root = await client.post<{ accessToken: string }>('/v1/auth/login', {
      login: ADMIN.email,
      password: ADMIN.password,
    });
    expect(
      (await client.post(`/v1/admin/users/${second.id}/lock`, undefined, root.body.accessToken)).status,
    ).toBe(204);
    expect(await works(cookie)).toBe(401);
  });
});

describe('queue actions', () => {
  it('refuses a cross-site POST or PUT to a queue action and to the sign-in, and lets the same site retry', async () => {
    const cookie = await signInAsAdmin();
    const taskId = await failedEscrowTask(tasks);
    const retry = `/admin/queues/api/queues/payments/${taskId}/retry`;
    for (const headers of <Record<string, string>[]>[
      { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' },
      { 'sec-fetch-site': 'same-site' },
      { origin: 'https://evil.example' },
      {},
    ]) {
      const put = await fetch(`${base}${retry}`, { method: 'PUT', headers: { cookie, ...headers } });
      expect(put.status).toBe(403);
      const post = await fetch(`${base}/admin/queues/api/queues/payments/add`, {
        method: 'POST',
        headers: { cookie, 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ name: 'payments.escrow', data: {} }),
      });
      expect(post.status).toBe(403);
    }
    const crossSiteSignIn = await consoleSignIn(
      base,
      { login: ADMIN.email, password: ADMIN.password },
      { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' },
    );
    expect(crossSiteSignIn.status).toBe(403);
    expect(crossSiteSignIn.headers.get('set-cookie')).toBeNull();
    const payments = queueNamed(tasks, 'payments');
    expect((await payments.getJob(taskId))?.attemptsMade).toBe(1);
    expect(await payments.getJobs(['waiting', 'active', 'delayed', 'completed'])).toEqual([]);

    // The same request from the console itself retries the exhausted task (it fails again).
    const ok = await fetch(`${base}${retry}`, { method: 'PUT', headers: { cookie, ...sameSite() } });
    expect(ok.status).toBe(204);
    await waitForTaskState(payments, taskId, 'failed', 2);
  });
});

describe('what the console offers', () => {
  it('lets an admin watch and repair, never add, rewrite, empty or obliterate (money and mail would move or be lost)', async () => {
    const cookie = await signInAsAdmin();
    const taskId = await failedEscrowTask(tasks);
    const api = '/admin/queues/api/queues/payments';
    const refused: [string, string, unknown?][] = [
      ['POST', `${api}/add`, { name: 'payments.escrow', data: { contractId: taskId, action: 'release' } }],
      ['PATCH', `${api}/${taskId}/update-data`, { jobData: { contractId: taskId, action: 'refund' } }],
      ['PUT', `${api}/empty`],
      ['PUT', `${api}/obliterate`],
      ['PUT', `${api}/${taskId}/clean`],
      ['PUT', `${api}/clean/waiting`],
      ['PUT', `${api}/clean/delayed`],
      // Shaped like one task's retry, routed by bull-board to "clean every task of a status".
      ['PUT', `${api}/clean/retry`],
      ['PUT', `${api}/retry/retry`],
      ['PUT', `${api}/concurrency`, { concurrency: 1000 }],
      ['PATCH', `${api}/${taskId}/delay`, { delay: 1 }],
      // Promoting runs delayed timers now: an auto-approve would pay before the review period ended.
      ['PUT', '/admin/queues/api/queues/marketplace/promote'],
      ['PUT', `/admin/queues/api/queues/marketplace/${taskId}/promote`],
    ];
    for (const [method, path, body] of refused) {
      const response = await fetch(`${base}${path}`, {
        method,
        headers: { cookie, ...sameSite(), 'content-type': 'application/json' },
        body: JSON.stringify(body ?? {}),
      });
      expect(response.status, `${method} ${path}`).toBe(403);
      const problem = (await response.json()) as { code: string; detail: string };
      expect(problem.code).toBe('FORBIDDEN');
      // It names the repairs that are offered, and not what it just refused (promote, say).
      expect(problem.detail).toContain('retry failed tasks, pause, resume, clean failed or completed tasks');
      expect(problem.detail).not.toContain('promote');
    }
    const payments = queueNamed(tasks, 'payments');
    expect((await payments.getJob(taskId))?.data).toMatchObject({ action: 'release' });
    expect(await payments.getJobs(['waiting', 'active', 'delayed'])).toEqual([]);
    // Reads and repairs stay open: the queue list, and cleaning finished tasks.
    expect((await get('/admin/queues/api/queues', { cookie })).status).toBe(200);
    const clean = await fetch(`${base}${api}/clean/completed`, {
      method: 'PUT',
      headers: { cookie, ...sameSite() },
    });
    expect(clean.status).toBe(200);
  });
});

describe('queue metrics', () => {
  it('reports tasks by state, the oldest waiting task, and what the workers did', async () => {
    // The marketplace queue is paused (no worker takes from it): what is put there waits, or is delayed.
    const marketplace = queueNamed(tasks, 'marketplace');
    await marketplace.pause();
    await tasks.enqueue(
      'reviews.publish',
      { contractId: crypto.randomUUID() },
      `metrics.wait.1.${redisPrefix}`,
    );
    await tasks.enqueue(
      'reviews.publish',
      { contractId: crypto.randomUUID() },
      `metrics.wait.2.${redisPrefix}`,
    );
    await tasks.enqueue(
      'reviews.publish',
      { contractId: crypto.randomUUID() },
      `metrics.delay.${redisPrefix}`,
      {
        delayMs: 3_600_000,
      },
    );
    await failedEscrowTask(tasks);
    const oldest = await marketplace.getJob(`metrics.wait.1.${redisPrefix}`);
    const payments = queueNamed(tasks, 'payments');
    const failedTasks = await payments.getJobs(['failed']);
    const failedAttempts = failedTasks.reduce((sum, task) => sum + task.attemptsMade, 0);
    // The welcome mails of this file's accounts: wait until the email worker is done with them.
    const emails = queueNamed(tasks, 'emails');
    for (let idle = false; !idle; ) {
      const now = await emails.getJobCounts('waiting', 'active', 'delayed');
      idle = (now.waiting ?? 0) + (now.active ?? 0) + (now.delayed ?? 0) === 0;
      if (!idle) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const sent = (await emails.getJobCounts('completed')).completed ?? 0;

    const before = Date.now();
    const text = await (await fetch(`${base}/metrics`)).text();
    const after = Date.now();
    const sample = (name: string, labels: Record<string, string>) => {
      const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
      const line = text
        .split('\n')
        .find((l) => l.startsWith(`${name}{`) && wanted.every((w) => l.includes(w)));
      return line === undefined ? undefined : Number(line.split(' ').at(-1));
    };

    expect(sample('gigwire_tasks', { queue: 'marketplace', state: 'waiting' })).toBe(2);
    expect(sample('gigwire_tasks', { queue: 'marketplace', state: 'delayed' })).toBe(1);
    expect(sample('gigwire_tasks', { queue: 'marketplace', state: 'active' })).toBe(0);
    expect(sample('gigwire_tasks', { queue: 'payments', state: 'failed' })).toBe(failedTasks.length);
    expect(sample('gigwire_tasks', { queue: 'emails', state: 'completed' })).toBe(sent);
    for (const queue of queueNames()) {
      for (const state of ['waiting', 'active', 'delayed', 'failed', 'completed']) {
        expect(sample('gigwire_tasks', { queue, state })).toBeTypeOf('number');
      }
    }
    // Age of the oldest waiting task: between what it was just before and just after the scrape.
    const age = sample('gigwire_tasks_oldest_waiting_seconds', { queue: 'marketplace' }) ?? -1;
    const created = oldest?.timestamp ?? 0;
    expect(age).toBeGreaterThanOrEqual((before - created) / 1000 - 0.001);
    expect(age).toBeLessThanOrEqual((after - created) / 1000 + 0.001);
    expect(sample('gigwire_tasks_oldest_waiting_seconds', { queue: 'payments' })).toBe(0);

    // Counted by this node's workers: every attempt of the escrow tasks failed unrecoverably (the
    // retried one twice); every welcome mail completed.
    expect(
      sample('gigwire_tasks_failed_total', { queue: 'payments', task: 'payments.escrow', final: 'true' }),
    ).toBe(failedAttempts);
    expect(sample('gigwire_task_duration_seconds_count', { queue: 'payments', outcome: 'failed' })).toBe(
      failedAttempts,
    );
    expect(sent).toBeGreaterThan(0);
    expect(sample('gigwire_tasks_completed_total', { queue: 'emails', task: 'emails.send' })).toBe(sent);
    expect(sample('gigwire_task_duration_seconds_count', { queue: 'emails', outcome: 'completed' })).toBe(
      sent,
    );
  });
});
