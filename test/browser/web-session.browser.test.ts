/**
 * The web app (web/) in Chromium against a real node, for what goes wrong around the happy path:
 * - sessions: a session revoked elsewhere (logout-all) returns the tab to the sign-in screen; a
 *   reload while the server cannot be reached keeps the session (and "Try again" resumes it); a
 *   refresh whose answer was lost is asked again at once with the same token (the server's reuse
 *   grace window answers it); a copy of a signed-in tab (sessionStorage copied) starts signed out
 *   and leaves the original's single-use refresh token alone;
 * - chat: a message whose `ok` was lost is resent with the same clientMsgId, a double submit sends
 *   once, so each message is stored once;
 * - after a reconnect, the job board, a job, a contract, my contracts, the wallet and the nav
 *   balance show what changed while the socket was down (pushes are not replayed);
 * - the mailed links: /verify-email and /reset-password (reached from "Forgot your password?")
 *   work in the browser and take the token out of the address bar; a verification link opened
 *   again (its first answer lost) still says the address is confirmed.
 */
import type { Page, Request } from 'playwright-core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createRestClient, type RestClient } from '../../protocol/src/client/rest.js';
import {
  buildWebApp,
  chromiumPages,
  findChromium,
  signedIn,
  signIn,
  socketLink,
} from '../support/browser.js';
import { startTestNode, type TestNode } from '../support/context.js';
import { httpClient, makeContacts, type Registered, registerUser } from '../support/http.js';
import { startSmtpServer, type TestSmtpServer, tokenFrom } from '../support/smtp.js';

// Generous: CI runs this beside other test files on 2 cores; a wait ends as soon as the UI is there.
// Generous: CI runs this beside other test files on 2 cores; a wait ends as soon as the UI is there.
const UI_TIMEOUT = 30_000;
const TEST_TIMEOUT = 120_000;
const REFRESH_KEY = 'gigwire.refreshToken';

let testNode: TestNode;
let smtp: TestSmtpServer;
let base: string;
let api: ReturnType<typeof httpClient>;
const pages = chromiumPages(UI_TIMEOUT);
/** Uncaught exceptions of any page: none expected. */
const { pageErrors, newPage } = pages;

const storedRefreshToken = (page: Page) =>
  page.evaluate<string | null>(`sessionStorage.getItem('${REFRESH_KEY}')`);

const isRefresh = (request: Request) =>
  request.method() === 'POST' && new URL(request.url()).pathname === '/v1/auth/refresh';

/** The SDK's REST client for a user registered over REST (their own session, not the browser's). */
const restOf = (user: Registered): RestClient =>
  createRestClient({ baseUrl: base, accessToken: () => user.accessToken });

const usd = (minor: number) =>
  new Intl.NumberFormat('en', { style: 'currency', currency: 'USD' }).format(minor / 100);

beforeAll(async () => {
  const executablePath = await findChromium();
  buildWebApp();
  smtp = await startSmtpServer();
  testNode = await startTestNode({
    SMTP_URL: smtp.url,
    OUTBOX_POLL_MS: '20',
    PLATFORM_FEE_BPS: '1000',
    LEDGER_AUDIT_INTERVAL_S: '0',
  });
  base = testNode.node.baseUrl;
  api = httpClient(base);
  await pages.launch(executablePath);
});

beforeEach(() => {
  pageErrors.length = 0;
});

afterAll(async () => {
  await pages.close();
  await testNode?.stop();
  await smtp?.close();
});

describe('web app sessions in Chromium', () => {
  it(
    'returns to the sign-in screen when the session is revoked elsewhere (logout-all)',
    async () => {
      const user = await registerUser(api);
      const page = await newPage();
      await signIn(page, base, user);
      await page.getByRole('link', { name: 'Wallet' }).click();
      await page.getByRole('heading', { name: 'Wallet' }).waitFor();

      // Another device ends every session: the socket is closed (4001), the SDK asks for a fresh
      // token, the refresh is refused, and the tab must show that it is signed out.
      expect((await api.post('/v1/auth/logout-all', undefined, user.accessToken)).status).toBe(204);
      await page.getByRole('heading', { name: 'Sign in' }).waitFor();
      await page.getByRole('status').getByText('Your session has ended').waitFor();
      expect(await storedRefreshToken(page)).toBeNull();

      // And it works as a sign-in screen: a new session.
      const again = await api.post<{ accessToken: string }>('/v1/auth/login', {
        login: user.username,
        password: user.password,
      });
      expect(again.status).toBe(200);
      await page.getByLabel('Username or email').fill(user.username);
      await page.getByLabel('Password').fill(user.password);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await signedIn(page);
      expect(pageErrors).toEqual([]);
    },
    TEST_TIMEOUT,
  );

  it(
    'keeps the session through a reload while the server cannot be reached, and resumes it on "Try again"',
    async () => {
      const user = await registerUser(api);
      const page = await newPage();
      await signIn(page, base, user);
      const token = await storedRefreshToken(page);
      expect(token).not.toBeNull();

      let refused = 0;
      await page.route('**/v1/auth/refresh', (route) => {
        refused += 1;
        return route.abort('internetdisconnected');
      });
      await page.reload();
      await page.getByRole('heading', { name: 'Cannot reach gigwire' }).waitFor();
      // Not signed out: the token is still there (it was never spent), and no sign-in form.
      expect(await storedRefreshToken(page)).toBe(token);
      expect(await page.getByRole('heading', { name: 'Sign in' }).count()).toBe(0);
      expect(refused).toBeGreaterThanOrEqual(1);

      await page.unroute('**/v1/auth/refresh');
      await page.getByRole('button', { name: 'Try again' }).click();
      await signedIn(page);
      expect(await storedRefreshToken(page)).not.toBe(token);
      expect(pageErrors).toEqual([]);
    },
    TEST_TIMEOUT,
  );

  it(
    'asks again at once, with the same token, when the answer of a refresh is lost (no reuse revocation)',
    async () => {
      const user = await registerUser(api);
      const page = await newPage();
      await signIn(page, base, user);
      const first = await storedRefreshToken(page);

      // The first refresh reaches the server (which spends the token) and its answer is lost.
      const presented: string[] = [];
      let lost = 0;
      await page.route('**/v1/auth/refresh', async (route) => {
        presented.push((route.request().postDataJSON() as { refreshToken: string }).refreshToken);
        if (lost === 0) {
          lost += 1;
          const answer = await route.fetch();
          expect(answer.status()).toBe(200);
          return route.abort('connectionreset');
        }
        return route.continue();
      });
      await page.reload();
      // No user action: the app retried by itself within the grace window and got the same pair.
      await signedIn(page);
      expect(presented).toEqual([first, first]);
      const second = await storedRefreshToken(page);
      expect(second).not.toBe(first);

      // The session is intact: the new token refreshes again after another reload.
      await page.unroute('**/v1/auth/refresh');
      await page.reload();
      await signedIn(page);
      expect(await storedRefreshToken(page)).not.toBe(second);
      expect(pageErrors).toEqual([]);
    },
    TEST_TIMEOUT,
  );

  for (const variant of [
    { name: 'a copied tab', copyName: false },
    // Should a browser carry window.name into the copy as well, the original's Web Lock still tells.
    { name: 'a copied tab that also inherited window.name', copyName: true },
  ]) {
    it(
      `starts ${variant.name} signed out and leaves the original's session alone`,
      async () => {
        const user = await registerUser(api);
        const original = await newPage({
          prepare: async (context) => {
            // What each document found in sessionStorage before the app ran (proves the copy got the token).
            await context.addInitScript({
              // (try: the popup's first about:blank has no storage of its own)
              content: `try { window.__storedAtStart = sessionStorage.getItem('${REFRESH_KEY}');${
                variant.copyName
                  ? " if (window.opener && sessionStorage.getItem('gigwire.tab')) window.name = 'gigwire.tab:' + sessionStorage.getItem('gigwire.tab');"
                  : ''
              } } catch {}`,
            });
          },
        });
        await signIn(original, base, user);
        const token = await storedRefreshToken(original);
        const refreshes: Request[] = [];
        original.context().on('request', (request) => {
          if (isRefresh(request)) refreshes.push(request);
        });

        // window.open copies sessionStorage into the new tab, as "Duplicate tab" does.
        const [copy] = await Promise.all([
          original.context().waitForEvent('page'),
          original.evaluate('void window.open(location.href)'),
        ]);
        await copy.getByRole('heading', { name: 'Sign in' }).waitFor();
        await copy.getByRole('status').getByText('This tab is a copy of another signed-in tab').waitFor();
        expect(await copy.evaluate('window.__storedAtStart')).toBe(token);
        expect(await storedRefreshToken(copy)).toBeNull();
        expect(refreshes).toEqual([]);

        // The original still holds an unspent token: a reload signs it in again (the first spend).
        expect(await storedRefreshToken(original)).toBe(token);
        await original.reload();
        await signedIn(original);
        expect(refreshes.map((request) => request.postDataJSON())).toEqual([{ refreshToken: token }]);
        expect(refreshes.every((request) => request.frame().page() === original)).toBe(true);

        // The copy signs in on its own and becomes a tab of its own: both reload signed in.
        await copy.getByLabel('Username or email').fill(user.username);
        await copy.getByLabel('Password').fill(user.password);
        await copy.getByRole('button', { name: 'Sign in' }).click();
        await signedIn(copy);
        await copy.reload();
        await signedIn(copy);
        await original.reload();
        await signedIn(original);
        expect(pageErrors).toEqual([]);
      },
      TEST_TIMEOUT,
    );
  }
});

describe('web app chat in Chromium', () => {
  it(
    'stores each message once: a lost ok is resent with the same clientMsgId, a double submit sends once',
    async () => {
      const me = await registerUser(api);
      const other = await registerUser(api);
      await makeContacts(api, me, other);
      const room = await api.post<{ id: string }>(
        '/v1/rooms',
        { kind: 'direct', memberIds: [other.id] },
        me.accessToken,
      );
      expect([200, 201]).toContain(room.status);

      // The page's socket: room.send frames are recorded, and the ok of one can be lost (the
      // server stored the message, then the connection dies before the answer arrives).
      const sends: { id: number; clientMsgId: string; body: string }[] = [];
      let loseNextOk = false;
      let lostOks = 0;
      const page = await newPage({
        prepare: (context) =>
          context.routeWebSocket(/\/ws$/, (socket) => {
            const server = socket.connectToServer();
            const waiting = new Set<number>();
            socket.onMessage((message) => {
              if (typeof message === 'string') {
                const frame = JSON.parse(message) as {
                  t: string;
                  id: number;
                  d: { clientMsgId: string; body: string };
                };
                if (frame.t === 'room.send') {
                  sends.push({ id: frame.id, clientMsgId: frame.d.clientMsgId, body: frame.d.body });
                  if (loseNextOk) waiting.add(frame.id);
                }
              }
              server.send(message);
            });
            server.onMessage((message) => {
              if (typeof message === 'string' && waiting.size > 0) {
                const frame = JSON.parse(message) as { t: string; id: number };
                if (frame.t === 'ok' && waiting.has(frame.id)) {
                  loseNextOk = false;
                  lostOks += 1;
                  waiting.clear();
                  void socket.close({ code: 1012, reason: 'test: the answer is lost' });
                  void server.close();
                  return;
                }
              }
              socket.send(message);
            });
          }),
      });
      await signIn(page, base, me);
      await page.goto(`${base}/#/rooms/${room.body.id}`);
      const input = page.getByLabel('Message', { exact: true });
      const bodies = page.locator('.room .messages li .body');
      const sendOne = async (text: string) => {
        await input.fill(text);
        await page.getByRole('button', { name: 'Send' }).click();
        await page.locator('.room .messages li .body', { hasText: text }).waitFor();
        await expect.poll(() => input.inputValue(), { timeout: UI_TIMEOUT }).toBe('');
      };
      await sendOne('Hello there');

      // Two submits in the same task (a double Enter): one send.
      await input.fill('Double submitted');
      await page.locator('.room form').evaluate((form: unknown) => {
        const submit = form as { requestSubmit(): void };
        submit.requestSubmit();
        submit.requestSubmit();
      });
      await page.locator('.room .messages li .body', { hasText: 'Double submitted' }).first().waitFor();
      await expect.poll(() => input.inputValue(), { timeout: UI_TIMEOUT }).toBe('');

      // The ok is lost with the connection: the SDK resends the same frame after reconnecting, the
      // server answers from its clientMsgId, and the app clears the box without an error.
      loseNextOk = true;
      await input.fill('Answer lost');
      await page.getByRole('button', { name: 'Send' }).click();
      await expect.poll(() => input.inputValue(), { timeout: UI_TIMEOUT }).toBe('');
      await expect.poll(() => lostOks, { timeout: UI_TIMEOUT }).toBe(1);
      expect(await page.locator('.room').getByRole('alert').count()).toBe(0);

      // A last message, after which every earlier one (duplicates too) would be listed.
      await sendOne('The end');
      await expect
        .poll(() => bodies.allTextContents(), { timeout: UI_TIMEOUT })
        .toEqual(['Hello there', 'Double submitted', 'Answer lost', 'The end']);
      const byBody = (body: string) => sends.filter((send) => send.body === body);
      expect(byBody('Double submitted')).toHaveLength(1);
      const lostSends = byBody('Answer lost');
      expect(lostSends.length).toBeGreaterThanOrEqual(2);
      expect(new Set(lostSends.map((send) => send.clientMsgId)).size).toBe(1);

      // What the server stored, read by the other member: each message once.
      const stored = await api.get<{ data: { body: string; meta?: { system?: unknown } | null }[] }>(
        `/v1/rooms/${room.body.id}/messages`,
        other.accessToken,
      );
      expect(
        stored.body.data
          .filter((message) => typeof message.meta?.system !== 'string')
          .map((message) => message.body)
          .reverse(),
      ).toEqual(['Hello there', 'Double submitted', 'Answer lost', 'The end']);
      expect(pageErrors).toEqual([]);
    },
    TEST_TIMEOUT,
  );
});

describe('web app after a reconnect in Chromium', () => {
  it(
    'reads the board, a job, a contract, my contracts, the wallet and the nav balance again',
    async () => {
      const suffix = Date.now().toString(36).slice(-6);
      const me = await registerUser(api, { roles: ['hirer', 'worker'] });
      const hirer = await registerUser(api, { roles: ['hirer', 'worker'] });
      const hirerRest = restOf(hirer);
      const myRest = restOf(me);
      await hirerRest.topUp({ amount: 20_000, card: '4242424242424242' });
      await expect
        .poll(async () => (await hirerRest.wallet()).available, { timeout: UI_TIMEOUT })
        .toBe(20_000);
      const categoryId = (await hirerRest.categories()).data[0]?.id ?? '';
      const post = (title: string) =>
        hirerRest.postJob({
          title,
          description: 'Done while the other side was offline.',
          categoryId,
          skills: [],
          budget: { kind: 'fixed', amount: 5_000, currency: 'USD' },
          remote: true,
        });

      const link = socketLink();
      const page = await newPage({ prepare: (context) => link.route(context) });
      await signIn(page, base, me);

      // The board: a job posted while the socket was down shows after the reconnect.
      await page.getByRole('link', { name: 'Jobs', exact: true }).click();
      await page.locator('[data-watching="true"]').waitFor();
      await link.cut(page);
      const job = await post(`Fence painting ${suffix}`);
      await link.restore(page);
      await page.getByRole('link', { name: `Fence painting ${suffix}` }).click();

      // A job: my bid accepted while the socket was down.
      await page.getByLabel('Amount (USD)').fill('40');
      await page.getByLabel('Delivery (days)').fill('5');
      await page.getByRole('button', { name: 'Place bid' }).click();
      await page.getByTestId('my-bid').getByText('pending').waitFor();
      await link.cut(page);
      const bid = (await hirerRest.getJob(job.id)).bids?.find((b) => b.workerId === me.id);
      expect(bid).toBeDefined();
      const contract = await hirerRest.acceptBid(bid?.id ?? '', { ifMatch: bid?.version ?? -1 });
      await link.restore(page);
      await page.getByTestId('my-bid').getByText('accepted').waitFor();

      // A contract: approved while the socket was down (and the wallet paid).
      await page.goto(`${base}/#/contracts/${contract.id}`);
      await expect.poll(() => page.getByTestId('contract-state').textContent()).toBe('active');
      await page.getByRole('button', { name: 'Deliver work' }).click();
      await expect.poll(() => page.getByTestId('contract-state').textContent()).toBe('delivered');
      await link.cut(page);
      const delivered = await hirerRest.getContract(contract.id);
      await hirerRest.approve(contract.id, {}, { ifMatch: delivered.version });
      await link.restore(page);
      await expect
        .poll(() => page.getByTestId('contract-state').textContent(), { timeout: UI_TIMEOUT })
        .toBe('completed');

      // The wallet and the nav: money sent while the socket was down.
      await page.getByRole('link', { name: /^Wallet/ }).click();
      const paid = (await myRest.wallet()).available;
      expect(paid).toBeGreaterThan(0);
      await expect.poll(() => page.getByTestId('balance').textContent()).toBe(usd(paid));
      await link.cut(page);
      await hirerRest.transfer({ toUserId: me.id, amount: 500 });
      await link.restore(page);
      await expect
        .poll(() => page.getByTestId('balance').textContent(), { timeout: UI_TIMEOUT })
        .toBe(usd(paid + 500));
      await page.getByRole('link', { name: `Wallet ${usd(paid + 500)}` }).waitFor();

      // My contracts: a new one started while the socket was down.
      await page.getByRole('link', { name: 'Contracts' }).click();
      await page.getByRole('heading', { name: 'My contracts' }).waitFor();
      await page.getByRole('link', { name: `Fence painting ${suffix}` }).waitFor();
      await link.cut(page);
      const second = await post(`Gate repair ${suffix}`);
      const secondBid = await myRest.placeBid(second.id, { amount: 3_000, deliveryDays: 3, coverLetter: '' });
      await hirerRest.acceptBid(secondBid.id, { ifMatch: secondBid.version });
      await link.restore(page);
      await page.getByRole('link', { name: `Gate repair ${suffix}` }).waitFor();
      expect(pageErrors).toEqual([]);
    },
    TEST_TIMEOUT,
  );
});

describe('web app mailed links in Chromium', () => {
  it(
    'confirms an email address and resets a password from the mailed links, taking the token out of the address bar',
    async () => {
      const user = await registerUser(api);
      const page = await newPage();

      // Confirm the address: the link of the registration mail.
      const verification = await smtp.waitFor(
        (m) => m.to.includes(user.email) && m.subject === 'Confirm your email address',
      );
      const verifyToken = tokenFrom(verification, 'Verification token');
      const served = await fetch(`${base}/verify-email?token=${verifyToken}`);
      expect(served.status).toBe(200);
      expect(served.headers.get('referrer-policy')).toBe('no-referrer');
      expect(await served.text()).toContain('id="app"');
      await page.goto(`${base}/verify-email?token=${verifyToken}`);
      await page.getByRole('status').getByText('Your email address is confirmed.').waitFor();
      expect(new URL(page.url()).search).toBe('');
      expect((await api.get('/v1/me', user.accessToken)).body).toMatchObject({ emailVerified: true });
      // The same link again (its first answer lost, or just reopened): confirmed again, not "failed".
      const again = page.waitForResponse((r) => r.url().endsWith('/v1/auth/verify-email'));
      await page.goto(`${base}/verify-email?token=${verifyToken}`);
      expect((await again).status()).toBe(204);
      await page.getByRole('status').getByText('Your email address is confirmed.').waitFor();
      expect((await api.get('/v1/me', user.accessToken)).body).toMatchObject({ emailVerified: true });
      // A link whose token was never issued says so.
      await page.goto(`${base}/verify-email?token=${verifyToken}x`);
      await page
        .getByRole('alert')
        .getByText('This link is invalid, has expired or was already used.')
        .waitFor();

      // Forgot the password: ask for a link from the sign-in screen.
      await page.goto(`${base}/#/signin`);
      await page.getByRole('link', { name: 'Forgot your password?' }).click();
      await page.getByLabel('Email').fill(user.email);
      await page.getByRole('button', { name: 'Mail me a link' }).click();
      await page.getByRole('status').getByText('a link is on its way').waitFor();
      const mail = await smtp.waitFor(
        (m) => m.to.includes(user.email) && m.subject === 'Reset your gigwire password',
      );
      const resetToken = tokenFrom(mail, 'Reset token');

      // The reset link: the token leaves the address bar at once; a new password is set.
      await page.goto(`${base}/reset-password?token=${resetToken}`);
      await page.getByRole('heading', { name: 'Choose a new password' }).waitFor();
      expect(new URL(page.url()).search).toBe('');
      expect(page.url()).not.toContain(resetToken);
      const newPassword = 'Juniper-Falcon-73#';
      await page.getByLabel('New password', { exact: true }).fill(newPassword);
      await page.getByRole('button', { name: 'Set new password' }).click();
      await page.getByRole('status').getByText('Your password is changed').waitFor();
      expect(page.url()).not.toContain(resetToken);

      // Sign in with it (the old one no longer works).
      await page.getByRole('link', { name: 'Sign in with the new password' }).click();
      await page.getByRole('heading', { name: 'Sign in' }).waitFor();
      expect(
        (await api.post('/v1/auth/login', { login: user.username, password: user.password })).status,
      ).toBe(401);
      await page.getByLabel('Username or email').fill(user.username);
      await page.getByLabel('Password').fill(newPassword);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await signedIn(page);

      // A used reset link says so instead of failing silently.
      await page.goto(`${base}/reset-password?token=${resetToken}`);
      await page.getByLabel('New password', { exact: true }).fill('Another-Heron-51&');
      await page.getByRole('button', { name: 'Set new password' }).click();
      await page
        .getByRole('alert')
        .getByText('This link is invalid, has expired or was already used.')
        .waitFor();
      expect(pageErrors).toEqual([]);
    },
    TEST_TIMEOUT,
  );
});
