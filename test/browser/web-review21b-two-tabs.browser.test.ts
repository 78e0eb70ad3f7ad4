/**
 * Marketplace forms left open in a second tab (review 21b), in Chromium against a real node: what
 * the first tab did (here through REST, as that tab would) is pushed to nobody until both sides act,
 * so the second tab still shows its form. Submitted there, the refusal now brings the screen up to
 * date instead of leaving the stale form under the error:
 * - a bid placed meanwhile (409 LIVE_BID_EXISTS): the job shows "Your bid" instead of the form;
 * - a review sent meanwhile (409 REVIEW_EXISTS): the reviews show it, the form goes, the refusal
 *   stays said.
 * And a job a worker bid on long ago shows that bid, not a bid form: the bid was looked for among
 * the worker's newest 100 bids of all jobs only.
 */
import { describe, expect, it } from 'vitest';
import { createRestClient } from '../../protocol/src/client/rest.js';
import { signIn, webAppTestFile } from '../support/browser.js';
import { type HttpClient, registerUser } from '../support/http.js';
import { activeContract } from '../support/rest-fixtures.js';

const UI_TIMEOUT = 30_000;
const TEST_TIMEOUT = 90_000;

let base: string;
let api: HttpClient;
const { pageErrors, newPage } = webAppTestFile(
  UI_TIMEOUT,
  { LEDGER_AUDIT_INTERVAL_S: '0', RATE_LIMIT_PER_MINUTE: '100000' },
  (node) => {
    ({ base, api } = node);
  },
);

describe('a form left open in a second tab (Chromium)', () => {
  it(
    'shows the bid or the review sent from the other tab once the stale form is refused',
    async () => {
      const { me, myRest, hirerRest, contract } = await activeContract(
        api,
        base,
        { title: 'Two tabs', description: 'Done twice' },
        UI_TIMEOUT,
      );
      await myRest.deliver(contract.id);
      await hirerRest.approve(contract.id);
      const categoryId = (await hirerRest.categories()).data[0]?.id ?? '';
      const job = await hirerRest.postJob({
        title: 'Second job',
        description: 'Open for bids',
        categoryId,
        skills: [],
        budget: { kind: 'fixed', amount: 5_000, currency: 'USD' },
        remote: true,
      });

      const page = await newPage();
      await signIn(page, base, me);
      const main = page.locator('main');

      // A bid: the form is on screen, then the bid is placed from "the other tab".
      await page.evaluate(`location.hash = ${JSON.stringify(`#/jobs/${job.id}`)}`);
      await main.getByRole('button', { name: 'Place bid' }).waitFor();
      await myRest.placeBid(job.id, { amount: 4_500, deliveryDays: 4, coverLetter: 'Other tab' });
      await main.getByLabel(/^Amount/).fill('30');
      await main.getByRole('button', { name: 'Place bid' }).click();
      await main.getByTestId('my-bid').filter({ hasText: '$45.00' }).waitFor();
      expect(await main.getByRole('button', { name: 'Place bid' }).count()).toBe(0);

      // A review: the form is on screen, then the review is sent from "the other tab".
      await page.evaluate(`location.hash = ${JSON.stringify(`#/contracts/${contract.id}`)}`);
      await main.getByRole('button', { name: 'Submit review' }).waitFor();
      await myRest.review(contract.id, { rating: 5, text: 'From the other tab' });
      await main.getByLabel('Review', { exact: true }).fill('From this tab');
      await main.getByRole('button', { name: 'Submit review' }).click();
      await main.getByText('From the other tab').waitFor();
      await expect.poll(() => main.getByRole('button', { name: 'Submit review' }).count()).toBe(0);
      await main.getByRole('alert').filter({ hasText: 'already reviewed' }).waitFor();
      expect(pageErrors).toEqual([]);
    },
    TEST_TIMEOUT,
  );

  it(
    'shows a bid placed before 100 newer ones on the job, not a bid form',
    async () => {
      const worker = await registerUser(api, { roles: ['worker'] });
      const hirer = await registerUser(api, { roles: ['hirer'] });
      const hirerRest = createRestClient({ baseUrl: base, accessToken: () => hirer.accessToken });
      const workerRest = createRestClient({ baseUrl: base, accessToken: () => worker.accessToken });
      const categoryId = (await hirerRest.categories()).data[0]?.id ?? '';
      const post = (title: string) =>
        hirerRest.postJob({
          title,
          description: 'Bid on',
          categoryId,
          skills: [],
          budget: { kind: 'fixed', amount: 5_000, currency: 'USD' },
          remote: true,
        });
      const old = await post('Bid on long ago');
      await workerRest.placeBid(old.id, { amount: 1_234, deliveryDays: 2, coverLetter: 'First' });
      for (let batch = 0; batch < 10; batch += 1) {
        await Promise.all(
          Array.from({ length: batch === 9 ? 11 : 10 }, async (_, i) => {
            const job = await post(`Newer ${batch}.${i}`);
            await workerRest.placeBid(job.id, { amount: 2_000, deliveryDays: 2, coverLetter: 'Later' });
          }),
        );
      }
      const page = await newPage();
      await signIn(page, base, worker);
      await page.evaluate(`location.hash = ${JSON.stringify(`#/jobs/${old.id}`)}`);
      const main = page.locator('main');
      await main.locator('#job-title').waitFor();
      await main.getByTestId('my-bid').filter({ hasText: '$12.34' }).waitFor();
      expect(await main.getByRole('button', { name: 'Place bid' }).count()).toBe(0);
      expect(pageErrors).toEqual([]);
    },
    TEST_TIMEOUT,
  );
});
