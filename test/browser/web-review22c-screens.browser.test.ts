/**
 * Review 22c, in Chromium against a real node:
 * - the notifications screen showed the newest 30 with no way further: "Older notifications" pages
 *   on with the REST cursor, and a push read again from the top lists each notification once.
 * - a worker whose read of their bid failed saw the bid form, as if they had none (submitting it
 *   was refused, "a bid exists"): the read's failure is said, with "Try again", which shows the bid.
 * - a password reset whose answer was lost, submitted again, said "link invalid or already used"
 *   although the password had changed: it says the password may already be changed, with a link to
 *   sign in (and the new password works).
 */

import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRestClient } from '../../protocol/src/client/rest.js';
import { signedIn, webAppTestFile } from '../support/browser.js';
import { type HttpClient, registerUser } from '../support/http.js';
import { fundedRestClient } from '../support/rest-fixtures.js';
import { startSmtpServer, type TestSmtpServer, tokenFrom } from '../support/smtp.js';

const UI_TIMEOUT = 30_000;
const TEST_TIMEOUT = 120_000;

let smtp: TestSmtpServer | undefined;
// Read by webAppTestFile's beforeAll, which runs after this file's first one (hooks run in order).
const env: Record<string, string> = {
  LEDGER_AUDIT_INTERVAL_S: '0',
  OUTBOX_POLL_MS: '20',
  TRANSFERS_PER_MINUTE: '1000',
};
beforeAll(async () => {
  smtp = await startSmtpServer();
  env.SMTP_URL = smtp.url;
});
afterAll(async () => {
  await smtp?.close();
});

let base: string;
let api: HttpClient;
const { pageErrors, newPage } = webAppTestFile(UI_TIMEOUT, env, (node) => {
  ({ base, api } = node);
});

async function signIn(page: Page, user: { username: string; password: string }): Promise<void> {
  await page.goto(`${base}/#/signin`);
  await page.getByLabel('Username or email').fill(user.username);
  await page.getByLabel('Password').fill(user.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await signedIn(page);
}

const unavailable = {
  status: 503,
  contentType: 'application/problem+json',
  headers: { 'retry-after': '30' },
  body: JSON.stringify({
    type: 'about:blank',
    title: 'Service unavailable',
    status: 503,
    code: 'UNAVAILABLE',
    detail: 'the database is unreachable',
  }),
};

describe('web app review 22c (Chromium)', () => {
  it(
    'pages on past the newest 30 notifications with "Older notifications", each listed once',
    async () => {
      const me = await registerUser(api);
      const payer = await registerUser(api);
      const payerRest = await fundedRestClient(base, payer, 10_000, UI_TIMEOUT);
      const sent = 34;
      for (let n = 0; n < sent; n++) await payerRest.transfer({ toUserId: me.id, amount: 100 + n });
      // Made by a worker: wait until every one is stored.
      const stored = async (type?: string) => {
        const page = await api.get<{ data: { type: string }[] }>(
          '/v1/notifications?limit=100',
          me.accessToken,
        );
        return page.body.data.filter((n) => type === undefined || n.type === type).length;
      };
      await expect.poll(() => stored('transfer.received'), { timeout: UI_TIMEOUT }).toBe(sent);

      const page = await newPage();
      await signIn(page, me);
      await page.evaluate(`location.hash = '#/notifications'`);
      const main = page.locator('main');
      const items = main.locator('ul.list > li');
      const money = main.locator('ul.list').getByRole('link', { name: 'Money received' });
      const older = main.getByRole('button', { name: 'Older notifications' });
      await older.waitFor();
      // The newest page (30) only.
      expect(await money.count()).toBeLessThan(sent);
      await older.click();
      // Every one, and the button gone after the last page.
      await expect.poll(() => money.count(), { timeout: UI_TIMEOUT }).toBe(sent);
      await older.waitFor({ state: 'detached' });

      // A push reads the list again from the top, as many pages as were read: each listed once.
      await payerRest.transfer({ toUserId: me.id, amount: 99 });
      await expect.poll(() => money.count(), { timeout: UI_TIMEOUT }).toBe(sent + 1);
      // Every stored notification (a new sign-in notice too, pushed while the list was open), once.
      await expect
        .poll(async () => (await items.count()) - (await stored()), { timeout: UI_TIMEOUT })
        .toBe(0);
      expect(await main.getByRole('button', { name: 'Older notifications' }).count()).toBe(0);
      expect(pageErrors).toEqual([]);
    },
    TEST_TIMEOUT,
  );

  it(
    'says why my bid could not be read, with "Try again", not the bid form',
    async () => {
      const hirer = await registerUser(api, { roles: ['hirer'] });
      const worker = await registerUser(api, { roles: ['worker'] });
      const hirerRest = createRestClient({ baseUrl: base, accessToken: () => hirer.accessToken });
      const workerRest = createRestClient({ baseUrl: base, accessToken: () => worker.accessToken });
      const categoryId = (await hirerRest.categories()).data[0]?.id ?? '';
      const job = await hirerRest.postJob({
        title: 'Bid read fails',
        description: 'My bid cannot be read',
        categoryId,
        skills: [],
        budget: { kind: 'fixed', amount: 5_000, currency: 'USD' },
        remote: true,
      });
      await workerRest.placeBid(job.id, { amount: 4_000, deliveryDays: 3, coverLetter: 'Mine' });

      const page = await newPage();
      await signIn(page, worker);
      let refused = 0;
      await page.route(
        (url) => url.pathname === `/v1/jobs/${job.id}/bids`,
        async (route) => {
          if (refused > 0) return route.continue();
          refused += 1;
          await route.fulfill(unavailable);
        },
      );
      await page.evaluate(`location.hash = '#/jobs/${job.id}'`);
      const main = page.locator('main');
      await main.getByRole('heading', { name: 'Bid read fails' }).waitFor();
      await main.getByRole('alert').filter({ hasText: "Can't reach gigwire" }).waitFor();
      expect(refused).toBe(1);
      expect(await main.getByRole('button', { name: 'Place bid' }).count()).toBe(0);
      await main.getByRole('button', { name: 'Try again' }).click();
      await main.getByTestId('my-bid').getByText('pending').waitFor();
      expect(await main.getByRole('button', { name: 'Place bid' }).count()).toBe(0);
      expect(await main.getByRole('alert').count()).toBe(0);
      expect(pageErrors).toEqual([]);
    },
    TEST_TIMEOUT,
  );

  it(
    'says that a reset whose answer was lost may have changed the password, not only "link used"; the same retry succeeds',
    async () => {
      const user = await registerUser(api);
      expect((await api.post('/v1/auth/forgot-password', { email: user.email })).status).toBe(202);
      const mail = await (smtp as TestSmtpServer).waitFor(
        (m) => m.to.includes(user.email) && m.subject === 'Reset your gigwire password',
      );
      const token = tokenFrom(mail, 'Reset token');

      const page = await newPage();
      // The first attempt reaches the server, its answer is lost; the next ones go through.
      let attempts = 0;
      await page.route(
        (url) => url.pathname === '/v1/auth/reset-password',
        async (route) => {
          attempts += 1;
          if (attempts > 1) return route.continue();
          await route.fetch();
          await route.abort('connectionreset');
        },
      );
      await page.goto(`${base}/reset-password?token=${token}`);
      await page.getByRole('heading', { name: 'Choose a new password' }).waitFor();
      const newPassword = 'Juniper-Falcon-73#';
      await page.getByLabel('New password', { exact: true }).fill(newPassword);
      await page.getByRole('button', { name: 'Set new password' }).click();
      await page.getByRole('alert').filter({ hasText: "Can't reach gigwire" }).waitFor();
      // The password did change.
      expect((await api.post('/v1/auth/login', { login: user.username, password: newPassword })).status).toBe(
        200,
      );

      // Retried with the field edited: the link is spent, so the password may already be changed.
      await page.getByLabel('New password', { exact: true }).fill(`${newPassword}x`);
      await page.getByRole('button', { name: 'Set new password' }).click();
      await expect.poll(() => attempts).toBe(2);
      const alert = page.getByRole('alert').filter({ hasText: 'may already be changed' });
      await alert.waitFor();
      expect(await page.getByText('This link is invalid, has expired or was already used.').count()).toBe(0);
      // Retried as first sent: the server answers it as it did the first time (review 28).
      await page.getByLabel('New password', { exact: true }).fill(newPassword);
      await page.getByRole('button', { name: 'Set new password' }).click();
      await page.getByRole('status').filter({ hasText: 'Your password is changed' }).waitFor();
      expect(attempts).toBe(3);
      await page.getByRole('link', { name: 'Sign in with the new password' }).click();
      await page.getByRole('heading', { name: 'Sign in' }).waitFor();
      await page.getByLabel('Username or email').fill(user.username);
      await page.getByLabel('Password').fill(newPassword);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await signedIn(page);
      expect(pageErrors).toEqual([]);
    },
    TEST_TIMEOUT,
  );
});
