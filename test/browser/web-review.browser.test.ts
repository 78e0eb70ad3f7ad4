/**
 * The web app (web/) in Chromium against a real node, for the review's findings:
 * - a money command (a transfer), "Post job" and "Submit review" whose answers are lost say that they
 *   may have gone through, and submitting the same form again replays them with the same
 *   Idempotency-Key (the money moves once, one job is posted, the review is not refused as a second);
 * - "abc" as an amount is refused in the browser ("Enter an amount like 12.50"), nothing sent;
 * - a failed board search says "Can't reach gigwire…" (no "may have been applied" for a read) and
 *   the banner goes once a search succeeds;
 * - a declined top-up says "Declined: nothing was charged" instead of staying pending;
 * - the profile when GET /v1/me fails: the error and "Try again", never "ApiError: …";
 * - the nav shows the balance right after sign-in;
 * - the Security section (#/settings/security and #/profile/security): change password and sign out
 *   everywhere, each ending on the sign-in screen saying why;
 * - a long word does not push a phone-width page sideways.
 */
import type { Page, Route } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { createRestClient, type RestClient } from '../../protocol/src/client/rest.js';
import { signIn, webAppTestFile } from '../support/browser.js';
import { type httpClient, type Registered, registerUser } from '../support/http.js';

// Generous: CI runs this beside other test files on 2 cores; a wait ends as soon as the UI is there.
const UI_TIMEOUT = 30_000;
const TEST_TIMEOUT = 120_000;
const PHONE = { width: 390, height: 844 };

let base: string;
let api: ReturnType<typeof httpClient>;
const { pageErrors, newPage } = webAppTestFile(
  UI_TIMEOUT,
  { OUTBOX_POLL_MS: '20', LEDGER_AUDIT_INTERVAL_S: '0' },
  (node) => {
    ({ base, api } = node);
  },
);

const restOf = (user: Registered): RestClient =>
  createRestClient({ baseUrl: base, accessToken: () => user.accessToken });

const usd = (minor: number) =>
  new Intl.NumberFormat('en', { style: 'currency', currency: 'USD' }).format(minor / 100);

async function fund(user: Registered, amount: number): Promise<void> {
  const rest = restOf(user);
  await rest.topUp({ amount, card: '4242424242424242' });
  await expect.poll(async () => (await rest.wallet()).available, { timeout: UI_TIMEOUT }).toBe(amount);
}

/**
 * Every attempt of `method path` loses its answer while `lost` is on: the first reaches the server
 * (which applies it), the SDK's retries do not get through. Records the Idempotency-Key of each.
 */
async function loseAnswers(page: Page, method: string, path: string) {
  const state = { lost: true, keys: [] as (string | undefined)[], applied: 0 };
  await page.route(
    (url) => url.pathname === path,
    async (route: Route) => {
      const request = route.request();
      if (request.method() !== method) return route.continue();
      state.keys.push(request.headers()['idempotency-key']);
      if (!state.lost) return route.continue();
      if (state.applied === 0) {
        state.applied += 1;
        await route.fetch();
        return route.abort('connectionreset');
      }
      return route.abort('internetdisconnected');
    },
  );
  return state;
}

describe('web app commands whose answer is lost, in Chromium', () => {
  it(
    'a transfer: says it may have gone through, and "Send money" again sends it once',
    async () => {
      const sender = await registerUser(api, { roles: ['hirer'] });
      const receiver = await registerUser(api, { roles: ['worker'] });
      await fund(sender, 10_000);
      const page = await newPage();
      await signIn(page, base, sender);
      // The nav shows the balance right after sign-in, without waiting for a change or a reconnect.
      await page.getByRole('link', { name: `Wallet ${usd(10_000)}` }).waitFor();

      await page.goto(`${base}/#/users/${receiver.id}`);
      const form = page.getByRole('form', { name: /^Send money/ });
      // Not a number: refused in the browser, next to the field, nothing sent.
      await form.getByLabel('Amount (USD)').fill('abc');
      await form.getByRole('button', { name: 'Send money' }).click();
      await form.getByText('Enter an amount like 12.50').waitFor();

      const lost = await loseAnswers(page, 'POST', '/v1/wallet/transfers');
      await form.getByLabel('Amount (USD)').fill('7.25');
      await form.getByRole('button', { name: 'Send money' }).click();
      await form.getByRole('alert').getByText("Can't reach gigwire").waitFor();
      await form.getByRole('alert').getByText('may have gone through').waitFor();
      await form
        .getByRole('alert')
        .getByText(`your balance is now ${usd(10_000 - 725)}`)
        .waitFor();
      expect(lost.applied).toBe(1);

      // The same form again, the connection back: the same key, the server replays the transfer.
      lost.lost = false;
      await form.getByRole('button', { name: 'Send money' }).click();
      await page.getByRole('status').getByText('Sent $7.25').waitFor();
      expect(new Set(lost.keys).size).toBe(1);
      expect(lost.keys[0]).toMatch(/\S/);
      expect((await restOf(sender).wallet()).available).toBe(10_000 - 725);
      expect((await restOf(receiver).wallet()).available).toBe(725);

      // The next transfer is a new action: a new key.
      await form.getByLabel('Amount (USD)').fill('1');
      await form.getByRole('button', { name: 'Send money' }).click();
      await page.getByRole('status').getByText('Sent $1.00').waitFor();
      expect(new Set(lost.keys).size).toBe(2);
      expect((await restOf(receiver).wallet()).available).toBe(825);
      expect(pageErrors).toEqual([]);
    },
    TEST_TIMEOUT,
  );

  it(
    '"Post job": a lost answer posts one job when the same form is posted again',
    async () => {
      const hirer = await registerUser(api, { roles: ['hirer'] });
      const page = await newPage();
      await signIn(page, base, hirer);
      await page.goto(`${base}/#/jobs/new`);
      const title = `Deck staining ${Date.now().toString(36)}`;
      await page.getByLabel('Title').fill(title);
      await page.getByLabel('Description').fill('Two coats, cedar.');
      await page.getByLabel('Budget (USD, fixed price)').fill('abc');
      await page.getByRole('button', { name: 'Post job' }).click();
      await page.getByText('Enter an amount like 12.50').waitFor();
      await page.getByLabel('Budget (USD, fixed price)').fill('80');

      const lost = await loseAnswers(page, 'POST', '/v1/jobs');
      await page.getByRole('button', { name: 'Post job' }).click();
      await page.getByRole('alert').getByText('The job may have been posted').waitFor();
      lost.lost = false;
      await page.getByRole('button', { name: 'Post job' }).click();
      await page.getByRole('heading', { name: title }).waitFor();
      expect(new Set(lost.keys).size).toBe(1);
      const mine = await restOf(hirer).searchJobs({ hirerId: hirer.id, limit: 50 });
      expect(mine.data.filter((job) => job.title === title)).toHaveLength(1);
      expect(pageErrors).toEqual([]);
    },
    TEST_TIMEOUT,
  );

  it(
    '"Submit review": a lost answer sends one review when the same form is submitted again',
    async () => {
      const hirer = await registerUser(api, { roles: ['hirer'] });
      const worker = await registerUser(api, { roles: ['worker'] });
      await fund(hirer, 5_000);
      const hirerRest = restOf(hirer);
      const workerRest = restOf(worker);
      const job = await hirerRest.postJob({
        title: 'Fence painting',
        description: 'One side, white.',
        categoryId: (await hirerRest.categories()).data[0]?.id ?? '',
        skills: [],
        budget: { kind: 'fixed', amount: 3_000, currency: 'USD' },
        remote: true,
      });
      const bid = await workerRest.placeBid(job.id, { amount: 3_000, deliveryDays: 2, coverLetter: 'Yes.' });
      const contract = await hirerRest.acceptBid(bid.id, { ifMatch: bid.version });
      await workerRest.deliver(contract.id);
      await hirerRest.approve(contract.id);

      const page = await newPage();
      await signIn(page, base, worker);
      await page.goto(`${base}/#/contracts/${contract.id}`);
      await page.getByLabel('Rating').selectOption('4');
      await page.getByLabel('Review', { exact: true }).fill('Quick to approve.');
      const lost = await loseAnswers(page, 'POST', `/v1/contracts/${contract.id}/review`);
      await page.getByRole('button', { name: 'Submit review' }).click();
      await page.getByRole('alert').getByText('The review may have been sent').waitFor();
      expect(lost.applied).toBe(1);
      // The same form again, the connection back: the same key, the server replays the first answer
      // (a fresh key would be refused 409 REVIEW_EXISTS).
      lost.lost = false;
      await page.getByRole('button', { name: 'Submit review' }).click();
      await page.getByText('only you see it').waitFor();
      expect(new Set(lost.keys).size).toBe(1);
      expect(lost.keys[0]).toMatch(/\S/);
      expect(await page.getByRole('alert').count()).toBe(0);
      const reviews = await api.get<{ data: { authorId: string }[] }>(
        `/v1/contracts/${contract.id}/reviews`,
        worker.accessToken,
      );
      expect(reviews.body.data.map((review) => review.authorId)).toEqual([worker.id]);
      expect(pageErrors).toEqual([]);
    },
    TEST_TIMEOUT,
  );
});

describe('web app messages and screens, in Chromium', () => {
  it(
    "a failed search says Can't reach gigwire (not 'applied'), and the banner goes after a search succeeds",
    async () => {
      const user = await registerUser(api, { roles: ['worker'] });
      const page = await newPage();
      await signIn(page, base, user);
      await page.getByRole('heading', { name: 'Jobs' }).waitFor();
      const jobsSearch = (url: URL) => url.pathname === '/v1/jobs';
      await page.route(jobsSearch, (route) => route.abort('internetdisconnected'));
      await page.getByRole('button', { name: 'Apply filters' }).click();
      const banner = page.getByRole('alert');
      await banner.getByText("Can't reach gigwire. Check your connection and try again.").waitFor();
      expect(await banner.textContent()).not.toMatch(/applied/);
      await page.unroute(jobsSearch);
      await page.getByRole('button', { name: 'Apply filters' }).click();
      await expect.poll(() => banner.count(), { timeout: UI_TIMEOUT }).toBe(0);
      // Not a moment between two failures: the list is there and the banner stays away.
      await page.getByRole('list', { name: 'Open jobs' }).or(page.getByText('No open jobs match')).waitFor();
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(await banner.count()).toBe(0);
      expect(pageErrors).toEqual([]);
    },
    TEST_TIMEOUT,
  );

  it(
    'a declined top-up says so instead of staying pending',
    async () => {
      const user = await registerUser(api, { roles: ['hirer'] });
      const page = await newPage();
      await signIn(page, base, user);
      await page.goto(`${base}/#/wallet`);
      const form = page.getByRole('form', { name: 'Top up' });
      await form.getByLabel('Amount (USD)').fill('25');
      await form.getByLabel('Card number').fill('4000000000000002');
      await form.getByRole('button', { name: 'Top up' }).click();
      await form.getByRole('status').getByText('Declined: nothing was charged.').waitFor();
      expect(await page.getByTestId('balance').textContent()).toBe(usd(0));
      expect(pageErrors).toEqual([]);
    },
    TEST_TIMEOUT,
  );

  it(
    'the profile shows why it could not be read, with "Try again"',
    async () => {
      const user = await registerUser(api);
      const page = await newPage();
      await signIn(page, base, user);
      const me = (url: URL) => url.pathname === '/v1/me';
      await page.route(me, (route) =>
        route.fulfill({ status: 503, contentType: 'text/plain', body: 'down' }),
      );
      await page.goto(`${base}/#/profile`);
      const alert = page.getByRole('alert');
      await alert.getByText("Can't reach gigwire").waitFor();
      expect(await alert.textContent()).not.toMatch(/Error:/);
      await page.unroute(me);
      await page.getByRole('button', { name: 'Try again' }).click();
      await page.getByLabel('Display name').waitFor();
      expect(pageErrors).toEqual([]);
    },
    TEST_TIMEOUT,
  );

  it(
    'the Security section: the mailed link lands on it; change password and sign out everywhere end every session',
    async () => {
      const user = await registerUser(api);
      const page = await newPage();
      await signIn(page, base, user);
      // The link of older security mails.
      await page.goto(`${base}/#/settings/security`);
      await page.getByRole('heading', { name: 'Security' }).waitFor();
      await expect
        .poll(() => page.evaluate<string | undefined>('document.activeElement?.textContent?.trim()'))
        .toBe('Security');

      // A wrong current password is said next to its field; two different new ones too.
      await page.getByLabel('Current password').fill('not-my-password');
      await page.getByLabel('New password', { exact: true }).fill('Saffron-Heron-88!');
      await page.getByLabel('New password again').fill('Saffron-Heron-88?');
      await page.getByRole('button', { name: 'Change password' }).click();
      await page.getByText('The two new passwords differ.').waitFor();
      await page.getByLabel('New password again').fill('Saffron-Heron-88!');
      await page.getByRole('button', { name: 'Change password' }).click();
      await page.getByText('This is not your current password.').waitFor();

      // The other device's session ends with this one.
      const other = await api.post<{ refreshToken: string }>('/v1/auth/login', {
        login: user.username,
        password: user.password,
      });
      expect(other.status).toBe(200);
      await page.getByLabel('Current password').fill(user.password);
      await page.getByRole('button', { name: 'Change password' }).click();
      await page.getByRole('heading', { name: 'Sign in' }).waitFor();
      await page.getByRole('status').getByText('Your password is changed').waitFor();
      expect((await api.post('/v1/auth/refresh', { refreshToken: other.body.refreshToken })).status).toBe(
        401,
      );
      await signIn(page, base, user, 'Saffron-Heron-88!');

      // Sign out everywhere, from #/profile/security, after a confirmation.
      const another = await api.post<{ refreshToken: string }>('/v1/auth/login', {
        login: user.username,
        password: 'Saffron-Heron-88!',
      });
      await page.goto(`${base}/#/profile/security`);
      await page.getByRole('button', { name: 'Sign out everywhere…' }).click();
      await page.getByText('Sign out of every session, this one too?').waitFor();
      await page.getByRole('button', { name: 'Cancel' }).click();
      await page.getByRole('button', { name: 'Sign out everywhere…' }).click();
      await page.getByRole('button', { name: 'Yes, sign out everywhere' }).click();
      await page.getByRole('heading', { name: 'Sign in' }).waitFor();
      await page.getByRole('status').getByText('You are signed out everywhere').waitFor();
      expect((await api.post('/v1/auth/refresh', { refreshToken: another.body.refreshToken })).status).toBe(
        401,
      );
      expect(pageErrors).toEqual([]);
    },
    TEST_TIMEOUT,
  );

  it(
    'a long word wraps at phone width instead of pushing the page sideways',
    async () => {
      const hirer = await registerUser(api, { roles: ['hirer'] });
      const rest = restOf(hirer);
      const categoryId = (await rest.categories()).data[0]?.id ?? '';
      const long = 'Supercalifragilisticexpialidocious'.repeat(4);
      const job = await rest.postJob({
        title: long.slice(0, 120),
        description: `See https://example.com/${'a'.repeat(150)} for ${long}`,
        categoryId,
        skills: [],
        budget: { kind: 'fixed', amount: 5_000, currency: 'USD' },
        remote: true,
      });
      const page = await newPage({ viewport: PHONE });
      await signIn(page, base, hirer);
      await page.goto(`${base}/#/jobs/${job.id}`);
      await page.getByRole('heading', { name: long.slice(0, 20) }).waitFor();
      const widths = await page.evaluate<{ scroll: number; client: number }>(
        '({ scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth })',
      );
      expect(widths.scroll).toBeLessThanOrEqual(widths.client);
      expect(pageErrors).toEqual([]);
    },
    TEST_TIMEOUT,
  );
});
