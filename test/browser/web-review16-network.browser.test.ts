/**
 * The web app (web/) in Chromium against a real node, on a bad network (review 16):
 * - a room opened while the socket is down (its join times out) joins again once the connection is
 *   back: its history, the other member's new messages and the user's own sent message all show;
 * - the job board opened while the socket is down watches again once it is back (the SDK restores
 *   only a watch the server accepted): a job posted afterwards appears live;
 * - the board shows the answer of the search on screen, not a slower earlier one's;
 * - "Older activity" in the wallet pressed twice on a slow network lists the page once, and a
 *   failed load says so;
 * - the notifications list's error goes once the list is read successfully;
 * - job categories that cannot be read are said, nothing is posted without them, and they are read
 *   again on "Load categories again";
 * - a request the server never answers is given up (30 s) and said, the button usable again;
 * - People opened while the socket is down subscribes to presence again once it is back;
 * - a device clock an hour fast does not refresh the session before every call;
 * - a contract or a job read twice (a push each) keeps the newest answer when an older one comes
 *   last; each "Accept bid" is described by its bid (whose, how much) for screen readers;
 * - a room the user is removed from while it is open says so and takes no more messages;
 * - a public profile that could not be read says so and is read again on "Try again".
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createRestClient, type RestClient } from '../../protocol/src/client/rest.js';
import { holdNextRead, signedIn, signIn, socketLink, webAppTestFile } from '../support/browser.js';
import { type httpClient, makeContacts, type Registered, registerUser } from '../support/http.js';
import { activeContract, directRoomOfContacts, groupRoomOfContacts } from '../support/rest-fixtures.js';
import { openSocket } from '../support/ws-client.js';

// Generous: CI runs this beside other test files on 2 cores; a wait ends as soon as the UI is there.
const UI_TIMEOUT = 30_000;
const TEST_TIMEOUT = 120_000;

let base: string;
let api: ReturnType<typeof httpClient>;
/** Uncaught exceptions of any page: none expected. */
const { pageErrors, newPage } = webAppTestFile(UI_TIMEOUT, { LEDGER_AUDIT_INTERVAL_S: '0' }, (node) => {
  ({ base, api } = node);
});

const restOf = (user: Registered): RestClient =>
  createRestClient({ baseUrl: base, accessToken: () => user.accessToken });

/** A worker who watches the job board, and a funded hirer with a category to post jobs in. */
async function boardParties() {
  const me = await registerUser(api, { roles: ['worker'] });
  const hirerRest = restOf(await registerUser(api, { roles: ['hirer'] }));
  await hirerRest.topUp({ amount: 10_000, card: '4242424242424242' });
  const categoryId = (await hirerRest.categories()).data[0]?.id ?? '';
  return { me, hirerRest, categoryId };
}

describe('web app opened while the socket is down (Chromium)', () => {
  it(
    'joins a room again once the connection is back: history, new messages and my own send show',
    async () => {
      const { me, other, roomId } = await directRoomOfContacts(api);
      const otherSocket = await openSocket(`${base.replace(/^http/, 'ws')}/ws`, other.accessToken, 'json');
      try {
        await otherSocket.request('room.join', { roomId });
        const say = async (body: string) => {
          const answer = await otherSocket.request('room.send', { roomId, clientMsgId: randomUUID(), body });
          expect(answer.t).toBe('ok');
        };
        await say('Sent before you looked');

        const link = socketLink();
        const page = await newPage({ prepare: (context) => link.route(context) });
        // The page's clock, so the SDK's 10 s request timeout below is jumped over, not waited out.
        await page.clock.install();
        await signIn(page, base, me);
        await link.cut(page);
        // Opened while offline: the join waits for a connection and times out (the SDK's 10 s).
        await page.evaluate(`location.hash = '#/rooms/${roomId}'`);
        await page.locator('.room').waitFor();
        await page.clock.fastForward(11_000);
        await expect(
          page.locator('.room').getByRole('alert').textContent({ timeout: UI_TIMEOUT }),
        ).resolves.toBe("Can't reach gigwire. Check your connection and try again.");
        await link.restore(page);

        // Back online: the room is joined again, with its history, and is live.
        const bodies = page.locator('.room .messages li .body');
        await page.locator('.room .messages li .body', { hasText: 'Sent before you looked' }).waitFor();
        await say('Sent after you came back');
        await page.locator('.room .messages li .body', { hasText: 'Sent after you came back' }).waitFor();
        const input = page.getByLabel('Message', { exact: true });
        await input.fill('My answer');
        await page.getByRole('button', { name: 'Send' }).click();
        await expect
          .poll(() => bodies.allTextContents(), { timeout: UI_TIMEOUT })
          .toEqual(['Sent before you looked', 'Sent after you came back', 'My answer']);
        expect(await page.locator('.room').getByRole('alert').count()).toBe(0);
        expect(pageErrors).toEqual([]);
      } finally {
        otherSocket.close();
      }
    },
    TEST_TIMEOUT,
  );

  // Review 25: the board replaced its list with the search's answer, so a job pushed while that
  // answer was on its way (committed after the search read the database) vanished from the board.
  it(
    'keeps a job pushed while its search was on the way, though that answer predates the job',
    async () => {
      const suffix = Date.now().toString(36).slice(-6);
      const { me, hirerRest, categoryId } = await boardParties();
      const job = (title: string) => ({
        title,
        description: 'A job for the board to list.',
        categoryId,
        skills: [],
        budget: { kind: 'fixed' as const, amount: 5_000, currency: 'USD' },
        remote: true,
      });
      await hirerRest.postJob(job(`Fence repair ${suffix}`));

      const page = await newPage();
      await signIn(page, base, me);
      await page.getByRole('link', { name: 'Wallet' }).click();
      await page.getByRole('heading', { name: 'Wallet' }).waitFor();
      const search = await holdNextRead(page, (url) => url.pathname === '/v1/jobs');
      await page.evaluate(`location.hash = '#/jobs'`);
      await page.locator('[data-watching="true"]').waitFor();
      // The search has read the database; its answer is held while a new job is posted and pushed.
      await expect.poll(() => search.held(), { timeout: UI_TIMEOUT }).toBe(1);
      await hirerRest.postJob(job(`Gutter cleaning ${suffix}`));
      await page.getByRole('link', { name: `Gutter cleaning ${suffix}` }).waitFor();
      await search.release();
      await page.getByRole('link', { name: `Fence repair ${suffix}` }).waitFor();
      expect(await page.getByRole('link', { name: `Gutter cleaning ${suffix}` }).count()).toBe(1);
      expect(pageErrors).toEqual([]);
    },
    TEST_TIMEOUT,
  );

  it(
    'watches the job board again once the connection is back: a job posted then appears live',
    async () => {
      const suffix = Date.now().toString(36).slice(-6);
      const { me, hirerRest, categoryId } = await boardParties();

      const link = socketLink();
      const page = await newPage({ prepare: (context) => link.route(context) });
      // The page's clock, so the SDK's 10 s request timeout below is jumped over, not waited out.
      await page.clock.install();
      await signIn(page, base, me);
      await page.getByRole('link', { name: 'Wallet' }).click();
      await page.getByRole('heading', { name: 'Wallet' }).waitFor();
      await link.cut(page, { rest: false });
      // The board, opened while the socket is down: its search works, its watch times out (the
      // SDK's 10 s) and says so in words.
      await page.evaluate(`location.hash = '#/jobs'`);
      await page.getByRole('heading', { name: 'Jobs' }).waitFor();
      expect(await page.getByRole('alert').count()).toBe(0);
      await page.clock.fastForward(11_000);
      await expect(page.getByRole('alert').textContent({ timeout: UI_TIMEOUT })).resolves.toBe(
        "Can't reach gigwire. Check your connection and try again.",
      );
      expect(await page.locator('[data-watching="false"]').count()).toBe(1);
      await link.restore(page);

      // Live again: the board says it watches, and a job posted now appears without a search.
      await page.locator('[data-watching="true"]').waitFor();
      await hirerRest.postJob({
        title: `Gutter cleaning ${suffix}`,
        description: 'Posted after the board came back online.',
        categoryId,
        skills: [],
        budget: { kind: 'fixed', amount: 5_000, currency: 'USD' },
        remote: true,
      });
      await page.getByRole('link', { name: `Gutter cleaning ${suffix}` }).waitFor();
      expect(await page.getByRole('alert').count()).toBe(0);
      expect(pageErrors).toEqual([]);
    },
    TEST_TIMEOUT,
  );

  it(
    "subscribes to contacts' presence again once the connection is back",
    async () => {
      const me = await registerUser(api);
      const other = await registerUser(api);
      await makeContacts(api, me, other);
      // The other member is online throughout.
      const otherSocket = await openSocket(`${base.replace(/^http/, 'ws')}/ws`, other.accessToken, 'json');
      try {
        const link = socketLink();
        const page = await newPage({ prepare: (context) => link.route(context) });
        // The page's clock, so the SDK's 10 s request timeout below is jumped over, not waited out.
        await page.clock.install();
        await signIn(page, base, me);
        await page.getByRole('link', { name: 'Wallet' }).click();
        await page.getByRole('heading', { name: 'Wallet' }).waitFor();
        await link.cut(page, { rest: false });
        // People, opened while the socket is down: the contacts are read, their presence
        // subscription waits for a connection until the SDK's request timeout (10 s) ends it.
        await page.evaluate(`location.hash = '#/people'`);
        const contacts = page.getByRole('list', { name: 'Contacts' });
        await contacts.getByRole('link', { name: other.username }).waitFor();
        await page.clock.fastForward(12_000);
        await link.restore(page);

        await contacts.getByRole('img', { name: 'online' }).waitFor();
        expect(pageErrors).toEqual([]);
      } finally {
        otherSocket.close();
      }
    },
    TEST_TIMEOUT,
  );
});

describe('web app in a room the user is removed from (Chromium)', () => {
  it(
    'says so at once and takes no more messages',
    async () => {
      const { me, owner, roomId } = await groupRoomOfContacts(api, 'Garden crew');

      const page = await newPage();
      await signIn(page, base, me);
      await page.evaluate(`location.hash = '#/rooms/${roomId}'`);
      const input = page.getByLabel('Message', { exact: true });
      await input.fill('Before');
      await page.getByRole('button', { name: 'Send' }).click();
      await page.locator('.room .messages li .body', { hasText: 'Before' }).waitFor();
      expect(await input.isEnabled()).toBe(true);

      const removal = await api.call('DELETE', `/v1/rooms/${roomId}/members/${me.id}`, {
        token: owner.accessToken,
      });
      expect(removal.status).toBe(204);
      await expect
        .poll(() => page.locator('.room').getByRole('status').textContent(), { timeout: UI_TIMEOUT })
        .toContain('You are no longer a member of this room');
      expect(await input.isDisabled()).toBe(true);
      expect(await page.getByRole('button', { name: 'Send' }).isDisabled()).toBe(true);
      // What was there stays.
      expect(await page.locator('.room .messages li .body').allTextContents()).toEqual(['Before']);
      expect(pageErrors).toEqual([]);
    },
    TEST_TIMEOUT,
  );
});

describe('web app on a slow network (Chromium)', () => {
  it(
    'shows the answer of the search on screen, not a slower earlier one',
    async () => {
      const suffix = Date.now().toString(36).slice(-6);
      const { me, hirerRest, categoryId } = await boardParties();
      for (const title of [`Alpha roofing ${suffix}`, `Beta plumbing ${suffix}`]) {
        await hirerRest.postJob({
          title,
          description: 'A job to search for.',
          categoryId,
          skills: [],
          budget: { kind: 'fixed', amount: 5_000, currency: 'USD' },
          remote: true,
        });
      }
      const page = await newPage();
      await signIn(page, base, me);
      await page.getByRole('heading', { name: 'Jobs' }).waitFor();

      // The search for Alpha is slow; Beta is asked for meanwhile and answers first.
      let releaseAlpha: () => void = () => undefined;
      const alphaHeld = new Promise<void>((resolve) => {
        releaseAlpha = resolve;
      });
      await page.route(
        (url) => url.pathname === '/v1/jobs' && (url.searchParams.get('q') ?? '').startsWith('Alpha'),
        async (route) => {
          await alphaHeld;
          await route.continue();
        },
      );
      const search = page.getByRole('searchbox', { name: 'Search' });
      const alphaAnswer = page.waitForResponse((response) =>
        (new URL(response.url()).searchParams.get('q') ?? '').startsWith('Alpha'),
      );
      await search.fill(`Alpha roofing ${suffix}`);
      await page.getByRole('button', { name: 'Apply filters' }).click();
      await search.fill(`Beta plumbing ${suffix}`);
      await page.getByRole('button', { name: 'Apply filters' }).click();
      const jobs = page.getByRole('list', { name: 'Open jobs' }).getByRole('link');
      await expect.poll(() => jobs.allTextContents()).toEqual([`Beta plumbing ${suffix}`]);

      // Alpha's answer arrives late: the board still shows what was asked for last.
      releaseAlpha();
      await (await alphaAnswer).finished();
      await page.evaluate(() => new Promise((resolve) => setTimeout(resolve, 300)));
      expect(await jobs.allTextContents()).toEqual([`Beta plumbing ${suffix}`]);
      expect(pageErrors).toEqual([]);
    },
    TEST_TIMEOUT,
  );

  it(
    'says when the job categories cannot be read, posts nothing without them, and reads them again',
    async () => {
      const suffix = Date.now().toString(36).slice(-6);
      const hirer = await registerUser(api, { roles: ['hirer'] });
      const page = await newPage();
      await signIn(page, base, hirer);
      const isCategories = (url: URL) => url.pathname === '/v1/categories';
      await page.route(isCategories, (route) => route.abort('internetdisconnected'));
      let posts = 0;
      page.on('request', (request) => {
        if (request.method() === 'POST' && new URL(request.url()).pathname === '/v1/jobs') posts += 1;
      });
      await page.evaluate(`location.hash = '#/jobs/new'`);
      await page.getByRole('heading', { name: 'Post a job' }).waitFor();
      await expect(page.getByRole('alert').first().textContent()).resolves.toBe(
        "Can't reach gigwire. Check your connection and try again.",
      );
      await page.getByLabel('Title').fill(`Window washing ${suffix}`);
      await page.getByLabel('Description').fill('Posted once the categories are there.');
      await page.getByLabel(/^Budget/).fill('50');
      await page.getByRole('button', { name: 'Post job' }).click();
      await page.getByText('Categories are not loaded yet: try again.').waitFor();
      expect(posts).toBe(0);

      await page.unroute(isCategories);
      await page.getByRole('button', { name: 'Load categories again' }).click();
      await expect.poll(() => page.getByLabel('Category').locator('option').count()).toBeGreaterThan(0);
      await page.getByRole('button', { name: 'Post job' }).click();
      await page.getByRole('heading', { name: `Window washing ${suffix}` }).waitFor();
      expect(posts).toBe(1);
      expect(pageErrors).toEqual([]);
    },
    TEST_TIMEOUT,
  );

  it(
    'says when a public profile cannot be read, and reads it on "Try again"',
    async () => {
      const me = await registerUser(api);
      const other = await registerUser(api, { roles: ['worker'] });
      const page = await newPage();
      await signIn(page, base, me);
      const isProfile = (url: URL) => url.pathname === `/v1/users/${other.id}`;
      await page.route(isProfile, (route) => route.abort('internetdisconnected'));
      await page.evaluate(`location.hash = '#/users/${other.id}'`);
      await expect(page.getByRole('alert').first().textContent()).resolves.toBe(
        "Can't reach gigwire. Check your connection and try again.",
      );
      await page.unroute(isProfile);
      await page.getByRole('button', { name: 'Try again' }).click();
      await page.getByRole('heading', { name: other.username, level: 1 }).waitFor();
      expect(await page.getByRole('alert').count()).toBe(0);
      expect(pageErrors).toEqual([]);
    },
    TEST_TIMEOUT,
  );

  it(
    'gives up a request the server never answers (a stalled connection) and says so, instead of staying busy',
    async () => {
      const me = await registerUser(api);
      const page = await newPage();
      const isLogin = (url: URL) => url.pathname === '/v1/auth/login';
      // Accepted and never answered: the browser alone would wait for many minutes.
      let asked = 0;
      await page.route(isLogin, () => {
        asked += 1;
      });
      // The page's clock, not the wall's: the app's 30 s call timeout is jumped over once the call is out.
      await page.clock.install();
      await page.goto(`${base}/#/signin`);
      await page.getByLabel('Username or email').fill(me.username);
      await page.getByLabel('Password').fill(me.password);
      const signInButton = page.getByRole('button', { name: 'Sign in' });
      await signInButton.click();
      await expect.poll(() => asked).toBe(1);
      await page.clock.fastForward(29_000);
      expect(await page.getByRole('alert').count()).toBe(0);
      await page.clock.fastForward(2_000);
      await expect(page.getByRole('alert').textContent({ timeout: 60_000 })).resolves.toBe(
        "Can't reach gigwire. Check your connection and try again.",
      );
      expect(await signInButton.isEnabled()).toBe(true);

      await page.unroute(isLogin);
      await signInButton.click();
      await signedIn(page);
      expect(pageErrors).toEqual([]);
    },
    TEST_TIMEOUT,
  );

  it(
    'keeps a contract at its newest state when an older read answers last',
    async () => {
      const { me, hirerRest, myRest, contract } = await activeContract(
        api,
        base,
        { title: 'Hedge trimming', description: 'A contract whose reads answer out of order.' },
        UI_TIMEOUT,
      );

      const page = await newPage();
      await signIn(page, base, me);
      await page.goto(`${base}/#/contracts/${contract.id}`);
      await expect.poll(() => page.getByTestId('contract-state').textContent()).toBe('active');

      // The read after "changes requested" answers slowly (its answer is held on the way back); the
      // one after "approved" answers first.
      const delivered = await myRest.deliver(contract.id, {}, { ifMatch: contract.version });
      const slow = await holdNextRead(page, (url) => url.pathname === `/v1/contracts/${contract.id}`);
      const changes = await hirerRest.requestChanges(contract.id, {}, { ifMatch: delivered.version });
      await expect.poll(() => slow.held()).toBe(1);
      const again = await myRest.deliver(contract.id, {}, { ifMatch: changes.version });
      await hirerRest.approve(contract.id, {}, { ifMatch: again.version });
      await expect.poll(() => page.getByTestId('contract-state').textContent()).toBe('completed');

      await slow.release();
      await page.evaluate(() => new Promise((resolve) => setTimeout(resolve, 300)));
      expect(await page.getByTestId('contract-state').textContent()).toBe('completed');
      expect(await page.getByRole('button', { name: 'Deliver work' }).count()).toBe(0);
      expect(pageErrors).toEqual([]);
    },
    TEST_TIMEOUT,
  );

  it(
    'keeps a job\'s newest bids when an older read answers last; each "Accept bid" is described by its bid',
    async () => {
      const hirer = await registerUser(api, { roles: ['hirer'] });
      const first = await registerUser(api, { roles: ['worker'] });
      const second = await registerUser(api, { roles: ['worker'] });
      const hirerRest = restOf(hirer);
      const categoryId = (await hirerRest.categories()).data[0]?.id ?? '';
      const job = await hirerRest.postJob({
        title: 'Lawn mowing',
        description: 'A job whose reads answer out of order.',
        categoryId,
        skills: [],
        budget: { kind: 'fixed', amount: 5_000, currency: 'USD' },
        remote: true,
      });
      const page = await newPage();
      await signIn(page, base, hirer);
      await page.goto(`${base}/#/jobs/${job.id}`);
      await page.getByText('No bids yet').waitFor();

      // The read after the first bid answers slowly (held on the way back); the one after the second
      // answers first.
      const slow = await holdNextRead(page, (url) => url.pathname === `/v1/jobs/${job.id}`);
      await restOf(first).placeBid(job.id, { amount: 4_000, deliveryDays: 3, coverLetter: 'First' });
      await expect.poll(() => slow.held()).toBe(1);
      await restOf(second).placeBid(job.id, { amount: 4_500, deliveryDays: 2, coverLetter: 'Second' });
      const accept = page.getByRole('button', { name: 'Accept bid' });
      await expect.poll(() => accept.count()).toBe(2);

      await slow.release();
      await page.evaluate(() => new Promise((resolve) => setTimeout(resolve, 300)));
      expect(await accept.count()).toBe(2);

      // Two "Accept bid" buttons: each is described by its bid (whose, how much), for screen readers.
      const descriptions = async () => {
        const texts: string[] = [];
        for (const button of await accept.all()) {
          const id = await button.getAttribute('aria-describedby');
          texts.push(id === null ? '' : ((await page.locator(`[id="${id}"]`).textContent()) ?? ''));
        }
        return texts;
      };
      await expect
        .poll(descriptions)
        .toEqual(
          expect.arrayContaining([
            expect.stringMatching(new RegExp(`^${first.username} \\$40\\.00 in 3 days`)),
            expect.stringMatching(new RegExp(`^${second.username} \\$45\\.00 in 2 days`)),
          ]),
        );
      expect(pageErrors).toEqual([]);
    },
    TEST_TIMEOUT,
  );

  it(
    'lists older wallet activity once when pressed twice, says when it fails, and drops a list error once read',
    async () => {
      const me = await registerUser(api);
      const rest = restOf(me);
      // 21 lines: one more than the wallet's first page.
      for (let i = 1; i <= 21; i += 1) await rest.topUp({ amount: 100 * i, card: '4242424242424242' });
      const all = async () =>
        (
          await api.get<{ data: { transactionId: string }[] }>(
            '/v1/wallet/transactions?limit=100',
            me.accessToken,
          )
        ).body.data.length;
      await expect.poll(all, { timeout: UI_TIMEOUT }).toBe(21);

      const page = await newPage();
      await signIn(page, base, me);
      const rows = page.locator('table.lines tbody tr');
      const older = page.getByRole('button', { name: 'Older activity' });
      const isOlder = (url: URL) =>
        url.pathname === '/v1/wallet/transactions' && url.searchParams.has('cursor');

      // The next page cannot be read: the wallet says so (not a button that does nothing).
      await page.route(isOlder, (route) => route.abort('internetdisconnected'));
      await page.getByRole('link', { name: 'Wallet' }).click();
      await expect.poll(() => rows.count()).toBe(20);
      await older.click();
      await expect(page.getByRole('alert').textContent()).resolves.toBe(
        "Can't reach gigwire. Check your connection and try again.",
      );
      await page.unroute(isOlder);

      // Slow now: two presses (in one task, before the button can turn disabled) ask once.
      let asked = 0;
      let release: () => void = () => undefined;
      const held = new Promise<void>((resolve) => {
        release = resolve;
      });
      await page.route(isOlder, async (route) => {
        asked += 1;
        await held;
        await route.continue();
      });
      await older.evaluate((button: unknown) => {
        const press = button as { click(): void };
        press.click();
        press.click();
      });
      await expect.poll(() => asked).toBeGreaterThanOrEqual(1);
      await page.evaluate(() => new Promise((resolve) => setTimeout(resolve, 300)));
      release();
      await older.waitFor({ state: 'detached' });
      await page.evaluate(() => new Promise((resolve) => setTimeout(resolve, 300)));
      expect(asked).toBe(1);
      expect(await rows.count()).toBe(21);
      expect(await page.getByRole('alert').count()).toBe(0);

      // The notifications list fails to load, then is read again on a push: its error goes.
      const isList = (url: URL) => url.pathname === '/v1/notifications';
      await page.route(isList, (route) => route.abort('internetdisconnected'));
      await page.getByRole('link', { name: /^Notifications/ }).click();
      await page.getByRole('heading', { name: 'Notifications' }).waitFor();
      await page.getByRole('alert').waitFor();
      await page.unroute(isList);
      await rest.topUp({ amount: 5_000, card: '4242424242424242' });
      await page.locator('.list li').first().waitFor();
      await expect.poll(() => page.getByRole('alert').count()).toBe(0);
      expect(pageErrors).toEqual([]);
    },
    TEST_TIMEOUT,
  );
});

describe('web app on a device whose clock is off (Chromium)', () => {
  it(
    'uses its access token for its 15 minutes instead of refreshing before every call',
    async () => {
      const me = await registerUser(api);
      // This device's clock is an hour fast: by it, every access token has expired on arrival.
      const page = await newPage({
        prepare: (context) =>
          context.addInitScript(() => {
            const now = Date.now.bind(Date);
            Date.now = () => now() + 3_600_000;
          }),
      });
      await signIn(page, base, me);
      await page.getByRole('img', { name: 'connected' }).waitFor();
      const refreshes: string[] = [];
      page.on('request', (request) => {
        const url = new URL(request.url());
        if (request.method() === 'POST' && url.pathname === '/v1/auth/refresh') refreshes.push(url.pathname);
      });
      for (const [link, heading] of [
        ['Wallet', 'Wallet'],
        ['Contracts', 'My contracts'],
        ['People', 'People'],
        ['Messages', 'Messages'],
        ['Profile', 'My profile'],
      ] as const) {
        await page
          .getByRole('navigation', { name: 'Main' })
          .getByRole('link', { name: link, exact: link !== 'Wallet' })
          .click();
        await page.getByRole('heading', { name: heading, exact: true }).waitFor();
      }
      // My profile's heading shows once GET /v1/me has answered: every screen's calls have gone out.
      expect(refreshes).toEqual([]);
      expect(pageErrors).toEqual([]);
    },
    TEST_TIMEOUT,
  );
});
