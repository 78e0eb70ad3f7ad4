/**
 * Review 24, the web app in Chromium against a real node:
 * - the bell counted a `notification` push on top of a count read over REST that already held it
 *   (the push goes through the bus, so it can arrive after a read answered at a reconnect): one
 *   unread too many until the next read;
 * - "Mark all read" was disabled when every listed notification was read but older ones, beyond the
 *   pages read, were not: the bell said 1 unread and nothing in the app could clear it;
 * - /verify-email whose request got no answer said "Can't reach gigwire" with nothing to do: the
 *   token has already left the address bar, so not even a reload could ask again;
 * - my profile saved on a slow network replaced what was typed meanwhile with what was saved;
 * - the job board whose socket had never connected kept its watch's "Can't reach gigwire" after
 *   the first connect watched it fine (only a reconnect searched again, which took it away);
 * - my rooms cut a last message at 80 UTF-16 units: inside an emoji, a broken character.
 */

import { sql } from 'kysely';
import type { Page, WebSocketRoute } from 'playwright-core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createRestClient } from '../../protocol/src/client/rest.js';
import { createDb, type DbHandle } from '../../src/db/create-db.js';
import { buildWebApp, chromiumPages, findChromium, signIn, socketLink } from '../support/browser.js';
import { captureLogs, startTestNode, type TestNode } from '../support/context.js';
import { httpClient, type Registered, registerUser } from '../support/http.js';
import { untilDefined } from '../support/poll.js';
import { groupRoomWithOwnerSocket } from '../support/rest-fixtures.js';
import { startSmtpServer, type TestSmtpServer, tokenFrom } from '../support/smtp.js';

const UI_TIMEOUT = 30_000;
const TEST_TIMEOUT = 120_000;

let testNode: TestNode;
let smtp: TestSmtpServer;
let handle: DbHandle;
let base: string;
let api: ReturnType<typeof httpClient>;
const pages = chromiumPages(UI_TIMEOUT);
const { pageErrors, newPage } = pages;

beforeAll(async () => {
  const executablePath = await findChromium();
  buildWebApp();
  smtp = await startSmtpServer();
  testNode = await startTestNode({ SMTP_URL: smtp.url, LEDGER_AUDIT_INTERVAL_S: '0' });
  base = testNode.node.baseUrl;
  api = httpClient(base);
  handle = await createDb({ kind: 'postgres', url: testNode.db.url, poolMax: 2 }, captureLogs().log);
  await pages.launch(executablePath);
});

beforeEach(() => {
  pageErrors.length = 0;
});

afterAll(async () => {
  await pages.close();
  await handle?.close();
  await testNode?.stop();
  await smtp?.close();
});

const unreadOf = async (user: Registered) =>
  (await api.get<{ count: number }>('/v1/notifications/unread-count', user.accessToken)).body.count;

const untilUnread = (user: Registered, count: number) =>
  untilDefined(async () => ((await unreadOf(user)) === count ? true : undefined), `${count} unread`);

/** A sandbox top-up: a `payment.succeeded` notification, stored and pushed. */
const topUp = (user: Registered) =>
  createRestClient({ baseUrl: base, accessToken: () => user.accessToken }).topUp({
    amount: 1_000,
    card: '4242424242424242',
  });

const bellOf = (page: Page) => page.locator('a.bell');
const isUnreadCount = (url: URL) => url.pathname === '/v1/notifications/unread-count';
/** Lets the page handle what it has received (a task and a frame): a barrier, not a wait for time. */
const settled = (page: Page) =>
  page.evaluate('new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)))');

/** A user's notification of the new sign-in (Chromium is a new device), once stored: its id. */
const newLoginOf = (user: Registered) =>
  untilDefined(async () => {
    const unread = await api.get<{ data: { id: string; type: string }[] }>(
      '/v1/notifications?unread=true',
      user.accessToken,
    );
    return unread.body.data.find((n) => n.type === 'security.new_login')?.id;
  }, 'the new sign-in notice');

describe('the notifications bell (Chromium, review 24)', () => {
  it(
    'does not count a push that the count read at a reconnect already holds',
    async () => {
      const user = await registerUser(api);
      // The page's socket through Playwright: `payment.*` pushes are held while `holdPushes`.
      let holdPushes = false;
      const heldPushes: string[] = [];
      let socket: WebSocketRoute | undefined;
      const page = await newPage({
        prepare: (context) =>
          context.routeWebSocket(/\/ws$/, (ws) => {
            const server = ws.connectToServer();
            socket = ws;
            server.onMessage((message) => {
              if (
                holdPushes &&
                typeof message === 'string' &&
                /^\{"t":"notification".*"kind":"payment\./.test(message)
              ) {
                heldPushes.push(message);
              } else ws.send(message);
            });
          }),
      });
      await signIn(page, base, user);
      await page.evaluate(`location.hash = '#/notifications'`);
      await newLoginOf(user);
      await untilUnread(user, 1);
      await expect
        .poll(() => bellOf(page).getAttribute('aria-label'), { timeout: UI_TIMEOUT })
        .toBe('Notifications (1 unread)');

      // The count read at the next connect waits before it reaches the server.
      let openCount: () => void = () => undefined;
      const countGate = new Promise<void>((resolve) => {
        openCount = resolve;
      });
      let countsHeld = 0;
      let holdCounts = true;
      await page.route(isUnreadCount, async (route) => {
        if (!holdCounts) return route.continue();
        countsHeld += 1;
        await countGate;
        await route.continue();
      });
      holdPushes = true;
      const first = socket;
      first?.close({ code: 1012, reason: 'restart' });
      await expect.poll(() => countsHeld, { timeout: UI_TIMEOUT }).toBe(1);
      expect(socket).not.toBe(first);

      // A top-up is stored meanwhile; its push is on its way (held), the count read answers with it.
      await topUp(user);
      await untilUnread(user, 2);
      // (Held on each server connection the route opened: the same notification, deduped by id.)
      await expect.poll(() => heldPushes.length, { timeout: UI_TIMEOUT }).toBeGreaterThan(0);
      holdCounts = false;
      openCount();
      await expect
        .poll(() => bellOf(page).getAttribute('aria-label'), { timeout: UI_TIMEOUT })
        .toBe('Notifications (2 unread)');

      // Then the push arrives: the list reads itself again (the bell handles the same event).
      holdPushes = false;
      const listRead = page.waitForRequest(
        (request) => new URL(request.url()).pathname === '/v1/notifications' && request.method() === 'GET',
      );
      for (const message of heldPushes.splice(0)) socket?.send(message);
      await listRead;
      await settled(page);
      // Still what the server counts: 2, not 3.
      await expect
        .poll(() => bellOf(page).getAttribute('aria-label'), { timeout: UI_TIMEOUT })
        .toBe('Notifications (2 unread)');
      expect(await unreadOf(user)).toBe(2);
      expect(pageErrors).toEqual([]);
    },
    TEST_TIMEOUT,
  );

  it(
    'offers "Mark all read" while older notifications beyond the pages read are unread',
    async () => {
      const user = await registerUser(api);
      // 31 notifications: the oldest unread, the 30 newer ones read (a page is 30).
      await sql`insert into notifications (user_id, event_id, type, title, body, created_at, read_at)
        select ${user.id}::uuid, 'review24-' || g, 'payment.succeeded', 'Top-up ' || g, 'done',
          now() - interval '1 hour' + g * interval '1 second',
          case when g = 1 then null else now() end
        from generate_series(1, 31) g`.execute(handle.db);
      const page = await newPage();
      await signIn(page, base, user);
      // Signing in from Chromium adds an unread notice; read on another device, the oldest stays.
      const newLogin = await newLoginOf(user);
      expect((await api.post('/v1/notifications/read', { ids: [newLogin] }, user.accessToken)).status).toBe(
        200,
      );
      await untilUnread(user, 1);
      await page.getByRole('link', { name: /^Notifications/ }).click();
      await page.getByRole('heading', { name: 'Notifications' }).waitFor();
      await page.getByRole('button', { name: 'Older notifications' }).waitFor();
      const items = page.locator('main li');
      await expect.poll(() => items.count(), { timeout: UI_TIMEOUT }).toBe(30);
      await expect.poll(() => page.locator('main li.unread').count(), { timeout: UI_TIMEOUT }).toBe(0);
      await expect
        .poll(() => bellOf(page).getAttribute('aria-label'), { timeout: UI_TIMEOUT })
        .toBe('Notifications (1 unread)');

      const markAll = page.getByRole('button', { name: 'Mark all read' });
      await expect.poll(() => markAll.isEnabled(), { timeout: UI_TIMEOUT }).toBe(true);
      await markAll.click();
      await expect
        .poll(() => bellOf(page).getAttribute('aria-label'), { timeout: UI_TIMEOUT })
        .toBe('Notifications');
      expect(await unreadOf(user)).toBe(0);
      await expect.poll(() => markAll.isDisabled(), { timeout: UI_TIMEOUT }).toBe(true);
      expect(pageErrors).toEqual([]);
    },
    TEST_TIMEOUT,
  );
});

describe('/verify-email on a bad network (Chromium, review 24)', () => {
  it(
    'offers "Try again" after a request that got no answer, and confirms the address with it',
    async () => {
      const user = await registerUser(api);
      const mail = await smtp.waitFor(
        (m) => m.to.includes(user.email) && m.subject === 'Confirm your email address',
      );
      const token = tokenFrom(mail, 'Verification token');
      const page = await newPage();
      let attempts = 0;
      await page.route(
        (url) => url.pathname === '/v1/auth/verify-email',
        async (route) => {
          attempts += 1;
          if (attempts === 1) return route.abort('internetdisconnected');
          return route.continue();
        },
      );
      await page.goto(`${base}/verify-email?token=${token}`);
      await page.getByRole('alert').getByText("Can't reach gigwire").waitFor();
      // The token is out of the address bar: the page itself asks again.
      expect(page.url()).not.toContain(token);
      await page.getByRole('button', { name: 'Try again' }).click();
      await page.getByRole('status').getByText('Your email address is confirmed.').waitFor();
      expect(attempts).toBe(2);
      expect((await api.get('/v1/me', user.accessToken)).body).toMatchObject({ emailVerified: true });

      // A refused link stays a final answer: said, with nothing to try again.
      await page.goto(`${base}/verify-email?token=${token}x`);
      await page
        .getByRole('alert')
        .getByText('This link is invalid, has expired or was already used.')
        .waitFor();
      expect(await page.getByRole('button', { name: 'Try again' }).count()).toBe(0);
      expect(pageErrors).toEqual([]);
    },
    TEST_TIMEOUT,
  );
});

describe('my profile on a slow network (Chromium, review 24)', () => {
  it(
    'keeps what is typed while a save is on its way, and saves it next time',
    async () => {
      const user = await registerUser(api);
      const page = await newPage();
      await signIn(page, base, user);
      await page.evaluate(`location.hash = '#/profile'`);
      await page.getByRole('heading', { name: 'My profile' }).waitFor();
      // The save's answer waits until something more is typed.
      let openSave: () => void = () => undefined;
      const saveGate = new Promise<void>((resolve) => {
        openSave = resolve;
      });
      let saves = 0;
      await page.route(
        (url) => url.pathname === '/v1/me',
        async (route) => {
          if (route.request().method() !== 'PATCH') return route.continue();
          saves += 1;
          const response = await route.fetch();
          if (saves === 1) await saveGate;
          await route.fulfill({ response });
        },
      );
      await page.getByLabel('About me').fill('Carpenter <b>bold</b> & "quoted"');
      await page.getByRole('button', { name: 'Save profile' }).click();
      await expect.poll(() => saves, { timeout: UI_TIMEOUT }).toBe(1);
      await page.getByLabel('Location').fill('Lisbon');
      openSave();
      await page.getByRole('status').getByText('Saved.').waitFor();
      expect(await page.getByLabel('Location').inputValue()).toBe('Lisbon');
      expect(await page.getByLabel('About me').inputValue()).toBe('Carpenter <b>bold</b> & "quoted"');

      await page.getByRole('button', { name: 'Save profile' }).click();
      await expect.poll(() => saves, { timeout: UI_TIMEOUT }).toBe(2);
      await expect
        .poll(
          async () => (await api.get<{ location: string | null }>('/v1/me', user.accessToken)).body.location,
          {
            timeout: UI_TIMEOUT,
          },
        )
        .toBe('Lisbon');
      expect(pageErrors).toEqual([]);
    },
    TEST_TIMEOUT,
  );
});

describe('the job board whose socket connects late (Chromium, review 24)', () => {
  it(
    'takes back "Can\'t reach gigwire" once the watch succeeds at the first connect',
    async () => {
      const user = await registerUser(api, { roles: ['worker'] });
      const link = socketLink();
      const page = await newPage({
        prepare: async (context) => {
          await link.route(context);
          // The socket is refused from the start: it has never connected when the board opens.
          link.down = true;
        },
      });
      // The page's clock, so the SDK's 10 s request timeout is jumped over, not waited out.
      await page.clock.install();
      await signIn(page, base, user);
      await page.getByRole('heading', { name: 'Jobs' }).waitFor();
      await page.clock.fastForward(11_000);
      await expect(page.getByRole('alert').textContent({ timeout: UI_TIMEOUT })).resolves.toBe(
        "Can't reach gigwire. Check your connection and try again.",
      );
      expect(await page.locator('[data-watching="false"]').count()).toBe(1);

      // The socket connects for the first time (no reconnect: the board searches nothing again).
      await link.reconnect(page.context());
      const connected = page.getByRole('img', { name: 'connected' });
      await expect
        .poll(
          async () => {
            if ((await connected.count()) > 0) return true;
            await page.clock.fastForward(5_000);
            return false;
          },
          { timeout: UI_TIMEOUT },
        )
        .toBe(true);
      await page.locator('[data-watching="true"]').waitFor();
      await expect.poll(() => page.getByRole('alert').count(), { timeout: UI_TIMEOUT }).toBe(0);
      expect(pageErrors).toEqual([]);
    },
    TEST_TIMEOUT,
  );
});

describe('my rooms with hostile text (Chromium, review 24)', () => {
  it(
    'cuts a long last message between characters, not inside an emoji',
    async () => {
      const room = await groupRoomWithOwnerSocket(api, base, 'Emoji room');
      try {
        await room.send(`${'a'.repeat(79)}😀 and <b>more</b> after it`);
      } finally {
        room.close();
      }
      const page = await newPage();
      await signIn(page, base, room.me);
      await page.evaluate(`location.hash = '#/rooms'`);
      const item = page.getByRole('list', { name: 'Rooms' }).locator('li').filter({ hasText: 'Emoji room' });
      const preview = await item.locator('.meta').textContent({ timeout: UI_TIMEOUT });
      expect(preview?.startsWith(`${'a'.repeat(79)}😀…`)).toBe(true);
      // No half of a surrogate pair (shown as a broken character).
      expect(preview).not.toMatch(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])/);
      expect(pageErrors).toEqual([]);
    },
    TEST_TIMEOUT,
  );
});
