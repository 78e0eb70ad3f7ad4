/**
 * A money form pressed again right after its answer (review 20b), in Chromium against a real node:
 * a double click whose second click lands after a quick answer (the button is only disabled while
 * the first is on its way) topped up, or withdrew, a second time with a new Idempotency-Key, since
 * the form kept its amount. Now a top-up or withdrawal that went through empties the amount (as
 * "Send money" does), and the second press only asks for one: the money moves once (the POSTs are
 * counted at the end, after later round trips, so a second one would have been seen). And a
 * transfer refused 429 with a minute's Retry-After says so at once instead of waiting behind a busy
 * button (the SDK waits up to 60 s per attempt by default).
 */

import type { Locator, Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { signIn, webAppTestFile } from '../support/browser.js';
import { type HttpClient, registerUser } from '../support/http.js';

const UI_TIMEOUT = 30_000;
const TEST_TIMEOUT = 90_000;

let base: string;
let api: HttpClient;
const { pageErrors, newPage } = webAppTestFile(UI_TIMEOUT, { LEDGER_AUDIT_INTERVAL_S: '0' }, (node) => {
  ({ base, api } = node);
});

/** Presses `button` of `form`, waits for the POST to `pathname` to be answered, and presses it again. */
async function pressTwice(page: Page, form: Locator, button: string, pathname: string): Promise<void> {
  const answered = page.waitForResponse(
    (response) => new URL(response.url()).pathname === pathname && response.request().method() === 'POST',
  );
  await form.getByRole('button', { name: button }).click();
  expect((await answered).status()).toBeLessThan(300);
  // The page has the answer: the button is free again.
  await expect.poll(() => form.getByRole('button', { name: button }).isEnabled()).toBe(true);
  const amount = form.getByLabel(/^Amount/);
  expect(await amount.inputValue()).toBe('');
  await form.getByRole('button', { name: button }).click();
  // The browser asks for the amount (a required field): nothing is sent.
  expect(
    await amount.evaluate(
      (input) => (input as unknown as { validity: { valueMissing: boolean } }).validity.valueMissing,
    ),
  ).toBe(true);
}

describe('a money form pressed again once answered, or refused for a while (Chromium)', () => {
  it(
    'tops up and withdraws once, asks for an amount the second time, and says a long 429 at once',
    async () => {
      const user = await registerUser(api);
      const page = await newPage();
      const posts: string[] = [];
      page.on('request', (request) => {
        if (request.method() === 'POST') posts.push(new URL(request.url()).pathname);
      });
      await signIn(page, base, user);
      await page.evaluate(`location.hash = '#/wallet'`);
      const main = page.locator('main');

      const topUp = main.getByRole('form', { name: 'Top up' });
      await topUp.getByLabel(/^Amount/).fill('100');
      await pressTwice(page, topUp, 'Top up', '/v1/wallet/top-ups');
      await expect
        .poll(() => main.getByTestId('balance').textContent(), { timeout: UI_TIMEOUT })
        .toBe('$100.00');

      const withdraw = main.getByRole('form', { name: 'Withdraw' });
      await withdraw.getByLabel(/^Amount/).fill('10');
      await withdraw.getByLabel('Bank account (IBAN or number)').fill('DE89370400440532013000');
      await pressTwice(page, withdraw, 'Withdraw', '/v1/wallet/withdrawals');

      const wallet = await api.get<{ available: number; pending: number }>('/v1/wallet', user.accessToken);
      // $100 in, $10 reserved for the one withdrawal.
      expect(wallet.body.available).toBe(9_000);
      expect(posts.filter((path) => path === '/v1/wallet/top-ups')).toHaveLength(1);
      expect(posts.filter((path) => path === '/v1/wallet/withdrawals')).toHaveLength(1);

      // A transfer refused 429 with a long Retry-After (the per-address limit's window) says so at
      // once, the form as typed: before, the SDK waited the 60 s, up to 4 times, behind a busy button.
      const payee = await registerUser(api);
      let limited = 0;
      await page.route(
        (url) => url.pathname === '/v1/wallet/transfers',
        async (route) => {
          if (limited > 0) return route.continue();
          limited += 1;
          await route.fulfill({
            status: 429,
            contentType: 'application/problem+json',
            headers: { 'retry-after': '60' },
            body: JSON.stringify({
              type: 'urn:gigwire:problem:RATE_LIMITED',
              title: 'Too many requests',
              status: 429,
              code: 'RATE_LIMITED',
              detail: 'too many requests from this address; retry in 60 s',
              retryAfterS: 60,
            }),
          });
        },
      );
      await page.evaluate(`location.hash = '#/users/${payee.id}'`);
      const send = main.getByRole('form', { name: `Send money to ${payee.username}` });
      await send.getByLabel(/^Amount/).fill('1');
      await send.getByRole('button', { name: 'Send money' }).click();
      await send.getByRole('alert').filter({ hasText: 'retry in 60 s' }).waitFor();
      expect(await send.getByLabel(/^Amount/).inputValue()).toBe('1');
      await send.getByRole('button', { name: 'Send money' }).click();
      await send
        .getByRole('status')
        .filter({ hasText: `Sent $1.00 to ${payee.username}.` })
        .waitFor();
      expect(posts.filter((path) => path === '/v1/wallet/transfers')).toHaveLength(2);
      expect(pageErrors).toEqual([]);
    },
    TEST_TIMEOUT,
  );
});
