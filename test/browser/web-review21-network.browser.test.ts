/**
 * The web app on a bad network (review 21), in Chromium against a real node:
 * - a review that went in, whose reviews could not be read again, shows why with "Try again" and
 *   not the empty form again (which invited a second review);
 * - a mutual contact's profile follows their presence live (online, then offline) instead of the
 *   state read when it opened, and its reviews that could not be read say so with "Try again"
 *   (not "No published reviews yet");
 * - a proxy's HTML error page (nginx's 413) says what it means ("too large"), not "HTTP 413", and
 *   what was typed stays.
 */

import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createClient } from '../../protocol/src/client/index.js';
import { signIn, webAppTestFile } from '../support/browser.js';
import { type HttpClient, makeContacts, registerUser } from '../support/http.js';
import { activeContract } from '../support/rest-fixtures.js';

const UI_TIMEOUT = 30_000;
const TEST_TIMEOUT = 90_000;

let base: string;
let api: HttpClient;
const { pageErrors, newPage } = webAppTestFile(UI_TIMEOUT, { LEDGER_AUDIT_INTERVAL_S: '0' }, (node) => {
  ({ base, api } = node);
});

/** What nginx answers by itself: an HTML page, no problem+json. */
const nginxPage = (status: number, text: string) => ({
  status,
  contentType: 'text/html',
  body: `<html><head><title>${status} ${text}</title></head><body><center><h1>${status} ${text}</h1></center><hr><center>nginx</center></body></html>`,
});

describe('the web app on a bad network (Chromium)', () => {
  it(
    'shows a review that went in but could not be read again as a failed read, not as the form again',
    async () => {
      const { hirer, myRest, hirerRest, contract } = await activeContract(
        api,
        base,
        { title: 'Reviewed', description: 'A review whose re-read fails' },
        UI_TIMEOUT,
      );
      const delivered = await myRest.deliver(contract.id, {}, { ifMatch: contract.version });
      await hirerRest.approve(contract.id, {}, { ifMatch: delivered.version });

      const page = await newPage();
      await signIn(page, base, hirer);
      await page.evaluate(`location.hash = '#/contracts/${contract.id}'`);
      const main = page.locator('main');
      const submit = main.getByRole('button', { name: 'Submit review' });
      await submit.waitFor();

      // Once the review is posted, every read of the reviews fails on the network.
      let posted = false;
      await page.route(
        (url) => url.pathname === `/v1/contracts/${contract.id}/reviews`,
        (route) => (posted ? route.abort('failed') : route.continue()),
      );
      await page.route(
        (url) => url.pathname === `/v1/contracts/${contract.id}/review`,
        async (route) => {
          const response = await route.fetch();
          posted = true;
          await route.fulfill({ response });
        },
      );
      await main.getByLabel('Review', { exact: true }).fill('Quick and careful.');
      await submit.click();

      await main.getByRole('alert').filter({ hasText: "Can't reach gigwire" }).waitFor();
      const again = main.getByRole('button', { name: 'Try again' });
      await again.waitFor();
      await main.getByRole('status').filter({ hasText: 'Your review is sent.' }).waitFor();
      expect(await submit.count()).toBe(0);

      posted = false;
      await again.click();
      await main.getByText('Quick and careful.').waitFor();
      expect(await again.count()).toBe(0);
      expect(await submit.count()).toBe(0);
      expect(pageErrors).toEqual([]);
    },
    TEST_TIMEOUT,
  );

  it(
    "a contact's profile: unread reviews said, presence followed; a proxy's 413 page says too large, the form kept",
    async () => {
      const me = await registerUser(api);
      const other = await registerUser(api);
      await makeContacts(api, me, other);

      const page = await newPage();
      await signIn(page, base, me);
      await page.getByRole('img', { name: 'connected' }).waitFor();
      // The profile's reviews cannot be read: said, with "Try again", not "No published reviews yet".
      let failReviews = true;
      await page.route(
        (url) => url.pathname === `/v1/users/${other.id}/reviews`,
        (route) => (failReviews ? route.abort('failed') : route.continue()),
      );
      await page.evaluate(`location.hash = '#/users/${other.id}'`);
      const main = page.locator('main');
      await main.getByRole('alert').filter({ hasText: "Can't reach gigwire" }).waitFor();
      expect(await main.getByText('No published reviews yet.').count()).toBe(0);
      failReviews = false;
      await main.getByRole('button', { name: 'Try again' }).click();
      await main.getByText('No published reviews yet.').waitFor();
      expect(await main.getByRole('alert').count()).toBe(0);

      const presence = main.getByTestId('presence');
      await expect.poll(() => presence.textContent(), { timeout: UI_TIMEOUT }).toBe('offline');

      // The other user connects, then leaves: the open profile follows without a reload.
      const client = createClient({
        url: `${base.replace(/^http/, 'ws')}/ws`,
        WebSocket,
        encoding: 'json',
        getAccessToken: () => other.accessToken,
      });
      try {
        await expect.poll(() => presence.textContent(), { timeout: UI_TIMEOUT }).toBe('online');
      } finally {
        client.close();
      }
      await expect.poll(() => presence.textContent(), { timeout: UI_TIMEOUT }).toBe('offline');

      // "Send money" answered by the proxy's own 413 page.
      await page.route(
        (url) => url.pathname === '/v1/wallet/transfers',
        (route) => route.fulfill(nginxPage(413, 'Request Entity Too Large')),
      );
      const amount = main.getByLabel(/^Amount/);
      await amount.fill('1.00');
      await main.getByLabel('Note (optional)').fill('For the ladder');
      await main.getByRole('button', { name: 'Send money' }).click();
      const alert = main.getByRole('alert');
      await alert.filter({ hasText: 'too large' }).waitFor();
      expect(await alert.textContent()).not.toContain('HTTP');
      expect(await amount.inputValue()).toBe('1.00');
      expect(await main.getByLabel('Note (optional)').inputValue()).toBe('For the ladder');
      expect(pageErrors).toEqual([]);
    },
    TEST_TIMEOUT,
  );
});
