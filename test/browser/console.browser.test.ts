/**
 * The operators' console in a real browser: Debian's Chromium driven by playwright-core (apt's
 * package, installed when missing like the harness's PostgreSQL; never downloaded by Playwright). An admin signs in through the form, sees every queue,
 * opens an exhausted task and retries it; a non-admin and an anonymous visitor get nothing from the
 * page or its API; a page of another site cannot make the console act.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queueNames } from '../../src/platform/queues/tasks.js';
import { findChromium, launchChromium } from '../support/browser.js';
import { failedEscrowTask, queueNamed, testTaskQueue, waitForTaskState } from '../support/console.js';
import { sharedRedisUrl, startTestNode, type TestNode, uniqueRedisPrefix } from '../support/context.js';
import { httpClient, type Registered, registerUser } from '../support/http.js';

const ADMIN = { email: 'console-admin@example.test', password: 'Cobalt-Heron-77?' };
const redisPrefix = uniqueRedisPrefix();

let testNode: TestNode;
let base: string;
let browser: Browser;
let tasks: ReturnType<typeof testTaskQueue>;
let member: Registered;
/** A page of another site (localhost is not the same site as 127.0.0.1) that posts to the console. */
let evil: Server;
let evilUrl: string;

async function signIn(page: Page, login: string, password: string): Promise<void> {
  await page.goto(`${base}/admin/queues`);
  expect(new URL(page.url()).pathname).toBe('/admin/sign-in');
  await page.fill('#login', login);
  await page.fill('#password', password);
  await Promise.all([page.waitForLoadState('load'), page.click('button[type=submit]')]);
}

/** What the page's own scripts would get from the console's API. */
const apiStatus = (page: Page) =>
  page.evaluate(async () => {
    const response = await fetch('/admin/queues/api/queues');
    return { status: response.status, body: await response.text() };
  });

beforeAll(async () => {
  // Like PostgreSQL and Redis in the harness: Debian's package, installed when missing and root.
  const executablePath = await findChromium();
  testNode = await startTestNode({
    ADMIN_EMAIL: ADMIN.email,
    ADMIN_PASSWORD: ADMIN.password,
    REDIS_PREFIX: redisPrefix,
  });
  base = testNode.node.baseUrl;
  tasks = testTaskQueue(sharedRedisUrl(), redisPrefix);
  member = await registerUser(httpClient(base));
  browser = await launchChromium(executablePath);
  const target = `${base}/admin/queues/api/queues/payments/add`;
  evil = createServer((_request, response) => {
    response.setHeader('content-type', 'text/html');
    response.end(`<!DOCTYPE html><form id="f" method="post" action="${target}" enctype="text/plain">
<input name='{"name":"payments.escrow","data":{},"x":"' value='"}'></form>
<script>document.getElementById('f').submit()</script>`);
  });
  await new Promise<void>((resolve) => evil.listen(0, '127.0.0.1', resolve));
  evilUrl = `http://localhost:${(evil.address() as AddressInfo).port}/`;
});

afterAll(async () => {
  await browser?.close();
  await new Promise((resolve) => evil?.close(resolve));
  await tasks?.quit();
  await testNode?.stop();
});

describe("operators' console in Chromium", () => {
  it('shows an anonymous visitor only the sign-in form', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${base}/admin/queues/queue/payments`);
    expect(new URL(page.url()).pathname).toBe('/admin/sign-in');
    expect(await page.textContent('body')).not.toContain('payments');
    const api = await apiStatus(page);
    expect(api.status).toBe(401);
    expect(api.body).not.toContain('"queues"');
    await context.close();
  });

  it('lets an admin sign in, see every queue, open an exhausted task and retry it', async () => {
    const taskId = await failedEscrowTask(tasks);
    const context = await browser.newContext();
    const page = await context.newPage();
    await signIn(page, ADMIN.email, ADMIN.password);
    expect(new URL(page.url()).pathname).toBe('/admin/queues');
    for (const name of queueNames()) {
      await page.getByRole('link', { name, exact: true }).first().waitFor();
    }
    const cookies = await context.cookies();
    expect(cookies.find((c) => c.name === 'gigwire_console')).toMatchObject({
      httpOnly: true,
      sameSite: 'Strict',
    });

    await page.goto(`${base}/admin/queues/queue/payments/${taskId}`);
    await page.getByText(taskId).first().waitFor();
    // The job card's actions are icon buttons with a tooltip: the first is "Retry".
    const retry = page.locator('button:has(svg.lucide-refresh-cw)').first();
    await retry.hover();
    await page.getByText('Retry', { exact: true }).waitFor();
    await retry.click();
    // bull-board asks before it acts on a job (its default setting).
    await page.getByText('Are you sure that you want to retry this job?').waitFor();
    await page.getByRole('button', { name: 'Confirm' }).click();
    // The payments worker runs it again; the contract still does not exist, so it fails again.
    const retried = await waitForTaskState(queueNamed(tasks, 'payments'), taskId, 'failed', 2);
    expect(retried.attemptsMade).toBe(2);

    // Signing out (bull-board's "Sign out" link leads to the button) ends the console for this browser.
    await page.goto(`${base}/admin/sign-out`);
    await Promise.all([
      page.waitForURL(`${base}/admin/sign-in`),
      page.getByRole('button', { name: 'Sign out' }).click(),
    ]);
    await page.goto(`${base}/admin/queues`);
    expect(new URL(page.url()).pathname).toBe('/admin/sign-in');
    expect((await apiStatus(page)).status).toBe(401);
    await context.close();
  });

  it('gives a non-admin nothing: no cookie, no page, no API', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await signIn(page, member.username, member.password);
    expect(await page.textContent('body')).toContain('not an admin');
    expect(await context.cookies()).toEqual([]);
    await page.goto(`${base}/admin/queues`);
    expect(new URL(page.url()).pathname).toBe('/admin/sign-in');
    expect((await apiStatus(page)).status).toBe(401);
    await context.close();
  });

  it("refuses a queue action posted by another site's page while the admin is signed in", async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await signIn(page, ADMIN.email, ADMIN.password);
    const payments = queueNamed(tasks, 'payments');
    const before = await payments.getJobCounts('waiting', 'active', 'delayed', 'completed', 'failed');
    const refused = page.waitForResponse((response) => response.url().endsWith('/payments/add'));
    await page.goto(evilUrl);
    expect((await refused).status()).toBe(403);
    expect(await payments.getJobCounts('waiting', 'active', 'delayed', 'completed', 'failed')).toEqual(
      before,
    );
    await context.close();
  });
});
