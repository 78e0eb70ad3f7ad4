/**
 * Lists past their first 100 (review 21c), in Chromium against one real node:
 * - "My contracts": only the first page of 100 was ever read, with no way to see more. "More
 *   contracts" pages on with the REST cursor, and a push meanwhile (a new contract: the list read
 *   again from the top, as many pages as shown) lists every contract once.
 * - A hirer's job: only the bids the job carries (its newest 100) were shown. "More bids" pages on
 *   with GET /v1/jobs/:id/bids's cursor, and a push meanwhile (a new bid: the job read again, and
 *   the pages past it) lists every bid once.
 */

import { describe, expect, it } from 'vitest';
import { createRestClient, type RestClient } from '../../protocol/src/client/rest.js';
import { signIn, webAppTestFile } from '../support/browser.js';
import { type HttpClient, registerUser } from '../support/http.js';

const UI_TIMEOUT = 30_000;
const TEST_TIMEOUT = 120_000;

let base: string;
let api: HttpClient;
const { pageErrors, newPage } = webAppTestFile(
  UI_TIMEOUT,
  { LEDGER_AUDIT_INTERVAL_S: '0', RATE_LIMIT_PER_MINUTE: '100000' },
  (node) => {
    ({ base, api } = node);
  },
);

const restOf = (user: { accessToken: string }): RestClient =>
  createRestClient({ baseUrl: base, accessToken: () => user.accessToken });

/** `count` runs of `task`, 20 at a time. */
async function inBatches(count: number, task: (i: number) => Promise<unknown>): Promise<void> {
  for (let start = 0; start < count; start += 20) {
    await Promise.all(Array.from({ length: Math.min(20, count - start) }, (_, i) => task(start + i)));
  }
}

let category: Promise<string> | undefined;
async function postJob(hirerRest: RestClient, title: string) {
  category ??= hirerRest.categories().then((list) => list.data[0]?.id ?? '');
  const categoryId = await category;
  return hirerRest.postJob({
    title,
    description: 'Paged',
    categoryId,
    skills: [],
    budget: { kind: 'fixed', amount: 5_000, currency: 'USD' },
    remote: true,
  });
}

describe('My contracts past the first 100 (Chromium)', () => {
  it(
    'lists every contract with "More contracts", once each, a new contract pushed meanwhile',
    async () => {
      const worker = await registerUser(api, { roles: ['worker'] });
      const hirer = await registerUser(api, { roles: ['hirer'] });
      const hirerRest = restOf(hirer);
      const workerRest = restOf(worker);
      await hirerRest.topUp({ amount: 20_000, card: '4242424242424242' });
      await expect
        .poll(async () => (await hirerRest.wallet()).available, { timeout: UI_TIMEOUT })
        .toBe(20_000);
      const contract = async (i: number) => {
        const job = await postJob(hirerRest, `Contract ${i}`);
        const bid = await workerRest.placeBid(job.id, { amount: 100, deliveryDays: 2, coverLetter: 'Me' });
        return hirerRest.acceptBid(bid.id, { ifMatch: bid.version });
      };
      const ids: string[] = [];
      await inBatches(101, async (i) => ids.push((await contract(i)).id));

      const page = await newPage();
      await signIn(page, base, worker);
      await page.evaluate(`location.hash = '#/contracts'`);
      const main = page.locator('main');
      const items = main.locator('li:has(> a[href^="#/contracts/"])');
      await expect.poll(() => items.count(), { timeout: UI_TIMEOUT }).toBe(100);
      await main.getByRole('button', { name: 'More contracts' }).click();
      await expect.poll(() => items.count(), { timeout: UI_TIMEOUT }).toBe(101);
      await expect.poll(() => main.getByRole('button', { name: 'More contracts' }).count()).toBe(0);

      // A new contract: pushed, the list read again from the top (two pages now), each listed once.
      ids.push((await contract(101)).id);
      await expect.poll(() => items.count(), { timeout: UI_TIMEOUT }).toBe(102);
      const links = await items
        .locator('a')
        .evaluateAll((anchors) =>
          anchors.map((a) => (a.getAttribute('href') ?? '').replace('#/contracts/', '')),
        );
      expect(links.length).toBe(102);
      expect(new Set(links)).toEqual(new Set(ids));
      expect(pageErrors).toEqual([]);
    },
    TEST_TIMEOUT,
  );
});

describe("a job's bids past the first 100 (Chromium)", () => {
  it(
    'lists every bid of a job with "More bids" for its hirer, once each, a new bid pushed meanwhile',
    async () => {
      const hirer = await registerUser(api, { roles: ['hirer'] });
      const hirerRest = restOf(hirer);
      const job = await postJob(hirerRest, 'Many bids');
      // One live bid per worker and job, at most 5 in all: 4 withdrawn and 1 live each, 105 bids.
      const workers = await Promise.all(
        Array.from({ length: 21 }, () => registerUser(api, { roles: ['worker'] })),
      );
      const bidIds: string[] = [];
      await Promise.all(
        workers.map(async (worker) => {
          const rest = restOf(worker);
          for (let n = 0; n < 5; n++) {
            const bid = await rest.placeBid(job.id, { amount: 1_000 + n, deliveryDays: 3, coverLetter: '' });
            bidIds.push(bid.id);
            if (n < 4) await rest.withdrawBid(bid.id);
          }
        }),
      );

      const page = await newPage();
      await signIn(page, base, hirer);
      await page.evaluate(`location.hash = ${JSON.stringify(`#/jobs/${job.id}`)}`);
      const main = page.locator('main');
      const items = main.locator('li.bid');
      await expect.poll(() => items.count(), { timeout: UI_TIMEOUT }).toBe(100);
      await main.getByRole('button', { name: 'More bids' }).click();
      await expect.poll(() => items.count(), { timeout: UI_TIMEOUT }).toBe(105);
      await expect.poll(() => main.getByRole('button', { name: 'More bids' }).count()).toBe(0);

      // A new bid: pushed, the job read again (and the page past its 100), each bid listed once.
      const late = await registerUser(api, { roles: ['worker'] });
      bidIds.push(
        (await restOf(late).placeBid(job.id, { amount: 900, deliveryDays: 1, coverLetter: '' })).id,
      );
      await expect.poll(() => items.count(), { timeout: UI_TIMEOUT }).toBe(106);
      const shown = await items
        .locator('> div[id^="bid-"]')
        .evaluateAll((divs) => divs.map((d) => d.id.slice(4)));
      expect(shown.length).toBe(106);
      expect(new Set(shown)).toEqual(new Set(bidIds));
      expect(pageErrors).toEqual([]);
    },
    TEST_TIMEOUT,
  );
});
