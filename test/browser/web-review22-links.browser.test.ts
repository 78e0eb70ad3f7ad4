/**
 * Review 22, in Chromium against a real node:
 * - a mailed link (`/#/contracts/…`: the digest mails link to the screen a notification is about)
 *   opens a new tab, which is always signed out (the session is per tab): once signed in there, the
 *   screen the link named is shown, not the job board. So is the screen a session ended on.
 * - the wallet's recent activity whose read fails says why with "Try again", not "Nothing yet."
 *   over a wallet that has lines.
 * - every notification in the list links where its mail does: a new sign-in to the profile's
 *   Security section, money received to the wallet (they had no link).
 * - a link with an upper-case id (UUIDs are taken in either case): a room opened by one showed none
 *   of its messages, and a message sent from it went out but never showed.
 */

import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { signedIn, webAppTestFile } from '../support/browser.js';
import { type HttpClient, registerUser } from '../support/http.js';
import { activeContract, fundedRestClient, groupRoomWithOwnerSocket } from '../support/rest-fixtures.js';

const UI_TIMEOUT = 30_000;
const TEST_TIMEOUT = 90_000;

let base: string;
let api: HttpClient;
const { pageErrors, newPage } = webAppTestFile(UI_TIMEOUT, { LEDGER_AUDIT_INTERVAL_S: '0' }, (node) => {
  ({ base, api } = node);
});

async function fillSignIn(page: Page, user: { username: string; password: string }): Promise<void> {
  await page.getByLabel('Username or email').fill(user.username);
  await page.getByLabel('Password').fill(user.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await signedIn(page);
}

describe('web app review 22 (Chromium)', () => {
  it(
    'shows the screen a link named once signed in, not the job board',
    async () => {
      const { hirer, contract } = await activeContract(
        api,
        base,
        { title: 'Linked from a mail', description: 'Deep link' },
        UI_TIMEOUT,
      );
      const page = await newPage();
      // As the digest mail links it: a new tab, signed out.
      await page.goto(`${base}/#/contracts/${contract.id}`);
      await page.getByRole('heading', { name: 'Sign in' }).waitFor();
      await fillSignIn(page, hirer);
      await page.getByRole('heading', { name: 'Linked from a mail' }).waitFor();
      expect(new URL(page.url()).hash).toBe(`#/contracts/${contract.id}`);

      // The session ends elsewhere while a screen is open: signed in again, the same screen.
      await page.getByRole('link', { name: 'Wallet' }).click();
      await page.getByRole('heading', { name: 'Wallet' }).waitFor();
      expect((await api.post('/v1/auth/logout-all', undefined, hirer.accessToken)).status).toBe(204);
      await page.getByRole('status').getByText('Your session has ended').waitFor();
      await fillSignIn(page, hirer);
      await page.getByRole('heading', { name: 'Wallet' }).waitFor();

      // Signing in from the sign-in screen itself: the job board.
      await page.getByRole('button', { name: 'Sign out' }).click();
      await page.getByRole('heading', { name: 'Sign in' }).waitFor();
      await fillSignIn(page, hirer);
      await page.getByRole('heading', { name: 'Jobs' }).waitFor();
      expect(new URL(page.url()).hash).toBe('#/jobs');
      expect(pageErrors).toEqual([]);
    },
    TEST_TIMEOUT,
  );

  it(
    'says why the recent activity could not be read, with "Try again", not "Nothing yet."',
    async () => {
      const { hirer } = await activeContract(
        api,
        base,
        { title: 'Lines', description: 'Wallet' },
        UI_TIMEOUT,
      );
      const page = await newPage();
      await page.goto(`${base}/#/signin`);
      await fillSignIn(page, hirer);
      let refused = 0;
      await page.route(
        (url) => url.pathname === '/v1/wallet/transactions',
        async (route) => {
          if (refused > 0) return route.continue();
          refused += 1;
          await route.fulfill({
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
          });
        },
      );
      await page.evaluate(`location.hash = '#/wallet'`);
      const main = page.locator('main');
      // The balance is read (the top-up of 200.00, less the 40.00 held in escrow).
      await expect.poll(() => main.getByTestId('balance').textContent()).not.toBe('…');
      await main.getByRole('alert').filter({ hasText: "Can't reach gigwire" }).waitFor();
      expect(refused).toBe(1);
      expect(await main.getByText('Nothing yet.').count()).toBe(0);
      await main.getByRole('button', { name: 'Try again' }).click();
      await main.locator('table.lines tbody tr').first().waitFor();
      expect(await main.getByRole('alert').count()).toBe(0);
      expect(await main.getByText('Nothing yet.').count()).toBe(0);
      expect(pageErrors).toEqual([]);
    },
    TEST_TIMEOUT,
  );

  it(
    'links a security notice to the Security section and money received to the wallet',
    async () => {
      const me = await registerUser(api);
      const payer = await registerUser(api);
      const payerRest = await fundedRestClient(base, payer, 1_000, UI_TIMEOUT);
      await payerRest.transfer({ toUserId: me.id, amount: 300 });
      const page = await newPage();
      await page.goto(`${base}/#/signin`);
      // Chromium is a device this account has not signed in from: a `security.new_login` notice.
      await fillSignIn(page, me);
      await page.evaluate(`location.hash = '#/notifications'`);
      const list = page.locator('main ul.list');
      const security = list.getByRole('link', { name: 'New sign-in to your account' });
      const money = list.getByRole('link', { name: 'Money received' });
      await expect
        .poll(
          async () => {
            // The notices are made by a worker: read the list again until both are there.
            if ((await security.count()) === 0 || (await money.count()) === 0) await page.reload();
            await signedIn(page);
            return (await security.count()) + (await money.count());
          },
          { timeout: UI_TIMEOUT },
        )
        .toBe(2);
      expect(await money.getAttribute('href')).toBe('#/wallet');
      await security.click();
      await page.getByRole('heading', { name: 'Security' }).waitFor();
      await page.getByRole('button', { name: 'Change password' }).waitFor();
      await page.goBack();
      await money.click();
      await page.getByRole('heading', { name: 'Wallet' }).waitFor();
      expect(pageErrors).toEqual([]);
    },
    TEST_TIMEOUT,
  );

  it(
    'opens a room linked with an upper-case id with its messages, and shows the ones sent there',
    async () => {
      const { me, roomId, send, close } = await groupRoomWithOwnerSocket(api, base, 'Shouted');
      try {
        await send('said before');
        const page = await newPage();
        await page.goto(`${base}/#/signin`);
        await fillSignIn(page, me);
        await page.evaluate(`location.hash = ${JSON.stringify(`#/rooms/${roomId.toUpperCase()}`)}`);
        const list = page.getByRole('list', { name: 'Messages' });
        await list.getByText('said before', { exact: true }).waitFor();
        await page.getByLabel('Message', { exact: true }).fill('said here');
        await page.getByRole('button', { name: 'Send' }).click();
        await list.getByText('said here', { exact: true }).waitFor();
        await send('said after');
        await list.getByText('said after', { exact: true }).waitFor();
      } finally {
        close();
      }
      expect(pageErrors).toEqual([]);
    },
    TEST_TIMEOUT,
  );
});
