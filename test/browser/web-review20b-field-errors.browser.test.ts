/**
 * Field errors of list entries (review 20b), in Chromium against a real node: a skill too long is
 * refused by the server as `skills.1` (one entry of the list), which no field is named after, so the
 * form said "Please correct the marked fields." with nothing marked. Now the list's one field (the
 * comma-separated Skills) says which entry is wrong and why: posting a job, the job board's filter
 * (whose fields were never given the search's errors) and the worker's profile. What was typed stays.
 * And "Post job" whose platform currency (read from the wallet before sending) cannot be read says
 * only that gigwire cannot be reached: it said the job "may have been applied" when nothing was sent.
 */

import type { Locator, Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { UNREACHABLE } from '../../web/src/outcome.js';
import { signIn, webAppTestFile } from '../support/browser.js';
import { type HttpClient, registerUser } from '../support/http.js';

const UI_TIMEOUT = 30_000;
const TEST_TIMEOUT = 60_000;

let base: string;
let api: HttpClient;
const { pageErrors, newPage } = webAppTestFile(UI_TIMEOUT, { LEDGER_AUDIT_INTERVAL_S: '0' }, (node) => {
  ({ base, api } = node);
});

const TOO_LONG = 'x'.repeat(60);
const SKILLS = `typescript, ${TOO_LONG}`;

/** The error shown under the field labelled `label` inside `scope`. */
const fieldError = (scope: Locator, label: string) =>
  scope
    .locator('.field')
    .filter({ has: scope.page().getByLabel(label, { exact: true }) })
    .locator('.field-error');

async function saysEntryTwo(scope: Locator, label: string): Promise<void> {
  const error = fieldError(scope, label);
  await error.waitFor();
  expect(await error.textContent()).toMatch(/^entry 2: /);
}

const goTo = (page: Page, hash: string) => page.evaluate(`location.hash = ${JSON.stringify(hash)}`);

describe('an invalid entry of a list field (Chromium)', () => {
  it(
    'is marked on the list field, saying which entry, in the board filter, a job and the profile',
    async () => {
      const user = await registerUser(api, { roles: ['hirer', 'worker'] });
      const page = await newPage();
      await signIn(page, base, user);
      const main = page.locator('main');

      // The board's filter: the search (and the live watch) refuse the skill.
      const filters = main.getByRole('form', { name: 'Filter jobs' });
      await filters.getByLabel('Skills (comma-separated)').fill(SKILLS);
      await filters.getByRole('button', { name: 'Apply filters' }).click();
      await saysEntryTwo(filters, 'Skills (comma-separated)');

      // Posting a job.
      await goTo(page, '#/jobs/new');
      const post = main.getByRole('form', { name: 'Post a job' });
      await post.getByLabel('Title').fill('A job with a long skill');
      await post.getByLabel('Description').fill('Described');
      await post.getByLabel('Skills (comma-separated)').fill(SKILLS);
      await post.getByLabel(/^Budget/).fill('50');
      // The categories are there (the select has its first one).
      await expect.poll(() => post.getByLabel('Category').locator('option').count()).toBeGreaterThan(0);
      await post.getByRole('button', { name: 'Post job' }).click();
      await saysEntryTwo(post, 'Skills (comma-separated)');
      expect(await post.getByRole('alert').textContent()).toBe('Please correct the marked fields.');
      expect(await post.getByLabel('Title').inputValue()).toBe('A job with a long skill');

      // The worker profile.
      await goTo(page, '#/profile');
      const profile = main.getByRole('form', { name: 'My profile' });
      await profile.getByLabel('Skills (comma-separated)').fill(SKILLS);
      await profile.getByRole('button', { name: 'Save profile' }).click();
      await saysEntryTwo(profile, 'Skills (comma-separated)');
      expect(pageErrors).toEqual([]);
    },
    TEST_TIMEOUT,
  );

  it(
    'of a command whose currency could not be read says nothing was sent, not that it may have been',
    async () => {
      const user = await registerUser(api, { roles: ['hirer'] });
      const page = await newPage();
      const posts: string[] = [];
      page.on('request', (request) => {
        if (request.method() === 'POST') posts.push(new URL(request.url()).pathname);
      });
      await signIn(page, base, user);
      await page.getByRole('img', { name: 'connected' }).waitFor();
      // The wallet (which names the platform's currency) cannot be read: no answer.
      const isWallet = (url: URL) => url.pathname === '/v1/wallet';
      await page.route(isWallet, (route) => route.abort('internetdisconnected'));
      await goTo(page, '#/jobs/new');
      const post = page.locator('main').getByRole('form', { name: 'Post a job' });
      await post.getByLabel('Title').fill('Posted once the currency is known');
      await post.getByLabel('Description').fill('Described');
      await post.getByLabel(/^Budget/).fill('50');
      await expect.poll(() => post.getByLabel('Category').locator('option').count()).toBeGreaterThan(0);
      await post.getByRole('button', { name: 'Post job' }).click();
      const alert = post.getByRole('alert');
      await alert.waitFor();
      // Nothing was sent: the message says so, not "it may have been applied".
      expect(await alert.textContent()).toBe(UNREACHABLE);
      expect(posts.filter((path) => path === '/v1/jobs')).toEqual([]);

      await page.unroute(isWallet);
      await post.getByRole('button', { name: 'Post job' }).click();
      await page.locator('#job-title').filter({ hasText: 'Posted once the currency is known' }).waitFor();
      expect(posts.filter((path) => path === '/v1/jobs')).toHaveLength(1);
      expect(pageErrors).toEqual([]);
    },
    TEST_TIMEOUT,
  );
});
