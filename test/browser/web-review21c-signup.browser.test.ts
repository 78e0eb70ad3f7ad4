/**
 * Sign-up pressed again after an answer was lost (review 21c), in Chromium against a real node. The
 * server answers the same registration sent again with 202, but a corrected email (the user's guess
 * at what went wrong) made it 409 "username is already taken", naming the user's own new account
 * someone else's. The form now signs in instead:
 * - the account was made but the sign-in's answer was lost: pressed again, it only signs in;
 * - the registration's own answer was lost: pressed again, "taken" is followed by a sign-in with the
 *   same username and password, which works.
 */
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { webAppTestFile } from '../support/browser.js';

const UI_TIMEOUT = 30_000;
const TEST_TIMEOUT = 60_000;
const PASSWORD = 'Vermilion-Otter-42!';

let base: string;
const { pageErrors, newPage } = webAppTestFile(UI_TIMEOUT, { LEDGER_AUDIT_INTERVAL_S: '0' }, (node) => {
  ({ base } = node);
});

let counter = 0;
const uniqueName = () => `su${process.pid}x${++counter}${Math.random().toString(36).slice(2, 6)}`;

/** The sign-up form filled in for `username` (email `email`) and sent. */
async function signUp(page: Page, username: string, email: string): Promise<void> {
  await page.getByLabel('Username', { exact: true }).fill(username);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign up' }).click();
}

/**
 * A page at the sign-up form whose first answer to `path` is lost: the request reaches the server
 * (and is done there), its answer never reaches the page.
 */
async function losingFirstAnswer(path: string): Promise<Page> {
  const page = await newPage();
  let lost = false;
  await page.route(`**${path}`, async (route) => {
    if (lost) return route.continue();
    lost = true;
    await route.fetch().catch(() => undefined);
    await route.abort('failed');
  });
  await page.goto(`${base}/#/signup`);
  return page;
}

describe('sign-up pressed again after a lost answer (Chromium)', () => {
  it(
    'signs in to the account it made, the email corrected meanwhile',
    async () => {
      for (const lostPath of ['/v1/auth/login', '/v1/auth/register']) {
        const page = await losingFirstAnswer(lostPath);
        const username = uniqueName();
        await signUp(page, username, `${username}@example.test`);
        await page.getByRole('alert').filter({ hasText: "Can't reach gigwire" }).first().waitFor();
        // Pressed again with another email (a typo fixed, say): the account is this user's.
        await signUp(page, username, `${username}.fixed@example.test`);
        await page.getByRole('button', { name: 'Sign out' }).waitFor();
        expect(await page.getByText('already taken').count()).toBe(0);
      }
      expect(pageErrors).toEqual([]);
    },
    TEST_TIMEOUT,
  );
});
