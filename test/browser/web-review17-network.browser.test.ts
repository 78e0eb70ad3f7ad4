/**
 * The web app (web/) in Chromium against a real node, on a bad network (review 17):
 * - the bell's unread count, whose first reads fail (503), is read again (backoff) and shows up
 *   without waiting for a reconnect; a slow read answered after a newer count does not replace it;
 * - the nav balance whose first read fails is read again (backoff) without a reconnect; a wallet
 *   read answered after a newer balance was pushed does not roll the nav or the wallet screen back;
 * - the notifications list, my contracts, my rooms and the wallet's lines, read again per push or
 *   reconnect, show the latest read's answer, not a slower earlier one's;
 * - a chat message sent while offline says at once that it waits for the connection, then that it
 *   is not sent (with Retry) instead of "Sending…" for minutes, and goes out by itself, once, when
 *   the connection is back;
 * - a message written offline and refused once back (removed from the room meanwhile) says why,
 *   stays until discarded, and is not stored;
 * - a room's read mark lost with the connection is sent again at the next connect;
 * - a read the server never answers is given up after one 30 s attempt (not three: 90 s of Loading…).
 */

import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { createRestClient } from '../../protocol/src/client/rest.js';
import { holdNextRead, signIn, socketLink, webAppTestFile } from '../support/browser.js';
import { type httpClient, type Registered, registerUser } from '../support/http.js';
import { untilDefined } from '../support/poll.js';
import { activeContract, directRoomOfContacts, groupRoomOfContacts } from '../support/rest-fixtures.js';
import { openSocket } from '../support/ws-client.js';

// Generous: CI runs this beside other test files on 2 cores; a wait ends as soon as the UI is there.
const UI_TIMEOUT = 30_000;
const TEST_TIMEOUT = 120_000;

let base: string;
let api: ReturnType<typeof httpClient>;
const { pageErrors, newPage } = webAppTestFile(UI_TIMEOUT, { LEDGER_AUDIT_INTERVAL_S: '0' }, (node) => {
  ({ base, api } = node);
});

/**
 * A user with one unread notification (a sandbox top-up's "payment succeeded"); signing in from
 * Chromium adds a second one (a login from a new device).
 */
async function withUnread(): Promise<Registered> {
  const user = await registerUser(api);
  await topUp(user);
  await untilUnread(user, 1);
  return user;
}

const topUp = (user: Registered) =>
  createRestClient({ baseUrl: base, accessToken: () => user.accessToken }).topUp({
    amount: 1_000,
    card: '4242424242424242',
  });

const unreadOf = async (user: Registered) =>
  (await api.get<{ count: number }>('/v1/notifications/unread-count', user.accessToken)).body.count;

const untilUnread = (user: Registered, count: number) =>
  untilDefined(async () => ((await unreadOf(user)) === count ? true : undefined), `${count} unread`);

const isUnreadCount = (url: URL) => url.pathname === '/v1/notifications/unread-count';
const bellOf = (page: Page) => page.locator('a.bell');

describe('the notifications bell on a bad network (Chromium)', () => {
  it(
    'reads the unread count again after failed reads, without a reconnect',
    async () => {
      const user = await withUnread();
      const page = await newPage();
      let refused = 0;
      await page.route(isUnreadCount, async (route) => {
        if (refused >= 2) return route.continue();
        refused += 1;
        await route.fulfill({
          status: 503,
          contentType: 'application/problem+json',
          body: JSON.stringify({
            type: 'about:blank',
            title: 'Unavailable',
            status: 503,
            code: 'UNAVAILABLE',
          }),
        });
      });
      await signIn(page, base, user);
      await untilUnread(user, 2);
      // Without a reconnect, the bell shows what the server counts (a push alone, counted on
      // nothing, would say 1).
      await expect
        .poll(() => bellOf(page).getAttribute('aria-label'), { timeout: UI_TIMEOUT })
        .toBe('Notifications (2 unread)');
      expect(refused).toBe(2);
      expect(pageErrors).toEqual([]);
    },
    TEST_TIMEOUT,
  );

  it(
    'keeps a newer count when a slower earlier read answers last',
    async () => {
      const user = await withUnread();
      const page = await newPage();
      const held = await holdNextRead(page, isUnreadCount);
      await signIn(page, base, user);
      await expect.poll(held.held, { timeout: UI_TIMEOUT }).toBe(1);
      // The new-device notice arrives while that read is held: the bell reads again.
      await untilUnread(user, 2);
      await expect
        .poll(() => bellOf(page).getAttribute('aria-label'), { timeout: UI_TIMEOUT })
        .toBe('Notifications (2 unread)');
      // Read on another device: this tab is told the new count (0) by a push.
      const read = await api.post('/v1/notifications/read', { all: true }, user.accessToken);
      expect(read.status).toBe(200);
      await expect
        .poll(() => bellOf(page).getAttribute('aria-label'), { timeout: UI_TIMEOUT })
        .toBe('Notifications');
      // The first read answers last: it is older than the push, and the bell keeps 0.
      await held.release();
      // One more notification, counted on what the bell shows (the list shows it once the push
      // has been handled: the bell handles the same event).
      await page.evaluate(`location.hash = '#/notifications'`);
      const items = page.locator('main li');
      await expect.poll(() => items.count(), { timeout: UI_TIMEOUT }).toBe(2);
      await topUp(user);
      await expect.poll(() => items.count(), { timeout: UI_TIMEOUT }).toBe(3);
      expect(await bellOf(page).getAttribute('aria-label')).toBe('Notifications (1 unread)');
      expect(pageErrors).toEqual([]);
    },
    TEST_TIMEOUT,
  );
});

describe('a chat message sent while offline (Chromium)', () => {
  it(
    'says it waits, then that it is not sent, and goes out by itself once the connection is back',
    async () => {
      const { me, other, roomId } = await directRoomOfContacts(api);

      const link = socketLink();
      const page = await newPage({ prepare: (context) => link.route(context) });
      // The page's clock, so the SDK's 10 s request timeout below is jumped over, not waited out.
      await page.clock.install();
      await signIn(page, base, me);
      await page.evaluate(`location.hash = '#/rooms/${roomId}'`);
      const input = page.getByLabel('Message', { exact: true });
      const stored = page.locator('.room .messages li .body');
      const pending = page.getByRole('list', { name: 'Not sent yet' }).getByRole('listitem');
      await input.fill('Before the tunnel');
      await page.getByRole('button', { name: 'Send' }).click();
      await stored.filter({ hasText: 'Before the tunnel' }).waitFor();

      await link.cut(page);
      await input.fill('In the tunnel');
      await page.getByRole('button', { name: 'Send' }).click();
      // At once: shown as waiting for the connection (not "Sending…"), the box free for the next one.
      await pending.filter({ hasText: 'In the tunnel' }).getByText('Waiting for connection…').waitFor();
      expect(await input.inputValue()).toBe('');
      await input.fill('Still in the tunnel');
      await input.press('Enter');
      // Then, while still offline: not sent, with Retry (pressed: it waits again, sent once all the same).
      const first = pending.filter({ hasText: 'In the tunnel' });
      await page.clock.fastForward(11_000);
      await first.getByText('Not sent: it goes out when the connection is back').waitFor();
      await first.getByRole('button', { name: 'Retry' }).click();
      expect(await stored.allTextContents()).toEqual(['Before the tunnel']);

      await link.restore(page);
      // Back online: both go out by themselves, in order, once each; nothing is left pending.
      await expect
        .poll(() => stored.allTextContents(), { timeout: UI_TIMEOUT })
        .toEqual(['Before the tunnel', 'In the tunnel', 'Still in the tunnel']);
      await expect.poll(() => pending.count(), { timeout: UI_TIMEOUT }).toBe(0);
      const messages = await api.get<{ data: { body: string }[] }>(
        `/v1/rooms/${roomId}/messages`,
        other.accessToken,
      );
      expect(messages.status).toBe(200);
      expect(messages.body.data.map((m) => m.body).sort()).toEqual(
        ['Before the tunnel', 'In the tunnel', 'Still in the tunnel'].sort(),
      );
      expect(await page.locator('.room').getByRole('alert').count()).toBe(0);
      expect(pageErrors).toEqual([]);
    },
    TEST_TIMEOUT,
  );
});

const usd = (minor: number) =>
  new Intl.NumberFormat('en', { style: 'currency', currency: 'USD' }).format(minor / 100);
const isWallet = (url: URL) => url.pathname === '/v1/wallet';
/** Lets the page handle what it has received (a task and a frame): a barrier, not a wait for time. */
const settled = (page: Page) =>
  page.evaluate('new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)))');

describe('the balance on a bad network (Chromium)', () => {
  it(
    'reads the nav balance again after a failed read, without a reconnect',
    async () => {
      const user = await registerUser(api);
      await topUp(user);
      // Settled before the page opens: a later settlement's push would show the balance without
      // any read again, and the test would prove nothing (a flake when the webhook came late).
      await untilDefined(async () => {
        const wallet = await api.get<{ available: number }>('/v1/wallet', user.accessToken);
        return wallet.body.available === 1_000 ? true : undefined;
      }, 'the top-up to settle');
      const page = await newPage();
      let refused = 0;
      await page.route(isWallet, async (route) => {
        if (refused >= 2) return route.continue();
        refused += 1;
        await route.fulfill({
          status: 503,
          contentType: 'application/problem+json',
          body: JSON.stringify({
            type: 'about:blank',
            title: 'Unavailable',
            status: 503,
            code: 'UNAVAILABLE',
          }),
        });
      });
      await page.goto(`${base}/#/rooms`);
      await signIn(page, base, user);
      await page.evaluate(`location.hash = '#/rooms'`);
      await page.getByRole('link', { name: `Wallet ${usd(1_000)}` }).waitFor();
      expect(refused).toBe(2);
      expect(pageErrors).toEqual([]);
    },
    TEST_TIMEOUT,
  );

  it(
    'keeps the pushed balance when an older read answers last (nav and wallet screen)',
    async () => {
      const user = await registerUser(api);
      await topUp(user);
      const link = socketLink();
      const page = await newPage({ prepare: (context) => link.route(context) });
      await signIn(page, base, user);
      await page.evaluate(`location.hash = '#/rooms'`);
      await page.getByRole('link', { name: `Wallet ${usd(1_000)}` }).waitFor();

      // The nav reads the balance again at a reconnect; that read answers after a newer push.
      const navRead = await holdNextRead(page, isWallet);
      await link.cut(page, { rest: false });
      await link.restore(page);
      await expect.poll(navRead.held, { timeout: UI_TIMEOUT }).toBe(1);
      await topUp(user);
      await page.getByRole('link', { name: `Wallet ${usd(2_000)}` }).waitFor();
      await navRead.release();
      await settled(page);
      expect(await page.getByRole('link', { name: /^Wallet/ }).textContent()).toBe(`Wallet ${usd(2_000)}`);

      // The wallet screen's first read answers after a newer push too.
      const screenRead = await holdNextRead(page, isWallet);
      await page.evaluate(`location.hash = '#/wallet'`);
      await expect.poll(screenRead.held, { timeout: UI_TIMEOUT }).toBe(1);
      await topUp(user);
      await expect
        .poll(() => page.getByTestId('balance').textContent(), { timeout: UI_TIMEOUT })
        .toBe(usd(3_000));
      await screenRead.release();
      await settled(page);
      expect(await page.getByTestId('balance').textContent()).toBe(usd(3_000));
      expect(await page.getByRole('link', { name: /^Wallet/ }).textContent()).toBe(`Wallet ${usd(3_000)}`);
      expect(pageErrors).toEqual([]);
    },
    TEST_TIMEOUT,
  );
});

describe('lists read again per push, answered out of order (Chromium)', () => {
  it(
    'shows the latest notifications, not a slower earlier read',
    async () => {
      const user = await withUnread();
      const page = await newPage();
      await signIn(page, base, user);
      await untilUnread(user, 2);
      await page.evaluate(`location.hash = '#/notifications'`);
      const items = page.locator('main li');
      await expect.poll(() => items.count(), { timeout: UI_TIMEOUT }).toBe(2);

      // The read after the next notification is slow; the one after the one after answers first.
      const slow = await holdNextRead(page, (url) => url.pathname === '/v1/notifications');
      await topUp(user);
      await expect.poll(slow.held, { timeout: UI_TIMEOUT }).toBe(1);
      await topUp(user);
      await expect.poll(() => items.count(), { timeout: UI_TIMEOUT }).toBe(4);
      await slow.release();
      await settled(page);
      expect(await items.count()).toBe(4);
      expect(pageErrors).toEqual([]);
    },
    TEST_TIMEOUT,
  );

  it(
    'shows my rooms as the latest read has them, not a slower earlier read',
    async () => {
      const { me, other, roomId } = await directRoomOfContacts(api);
      const otherSocket = await openSocket(`${base.replace(/^http/, 'ws')}/ws`, other.accessToken, 'json');
      try {
        await otherSocket.request('room.join', { roomId });
        const link = socketLink();
        const page = await newPage({ prepare: (context) => link.route(context) });
        await signIn(page, base, me);
        await page.evaluate(`location.hash = '#/rooms'`);
        const rooms = page.getByRole('list', { name: 'Rooms' }).getByRole('listitem');
        await expect.poll(() => rooms.count(), { timeout: UI_TIMEOUT }).toBe(1);

        // The read at one reconnect answers slowly; a message arrives; the read at the next
        // reconnect (with it) answers first.
        const slow = await holdNextRead(page, (url) => url.pathname === '/v1/rooms');
        await link.cut(page, { rest: false });
        await link.restore(page);
        await expect.poll(slow.held, { timeout: UI_TIMEOUT }).toBe(1);
        const sent = await otherSocket.request('room.send', {
          roomId,
          clientMsgId: 'r17-1',
          body: 'Are you there?',
        });
        expect(sent.t).toBe('ok');
        await link.cut(page, { rest: false });
        await link.restore(page);
        await rooms.getByText('Are you there?', { exact: false }).waitFor();
        await slow.release();
        await settled(page);
        expect(await rooms.getByText('Are you there?', { exact: false }).count()).toBe(1);
        expect(await page.getByTestId('room-unread').textContent()).toBe('1 unread');
        expect(pageErrors).toEqual([]);
      } finally {
        otherSocket.close();
      }
    },
    TEST_TIMEOUT,
  );

  it(
    "shows the wallet's latest lines, not a slower earlier read",
    async () => {
      const user = await registerUser(api);
      await topUp(user);
      const page = await newPage();
      await signIn(page, base, user);
      await page.evaluate(`location.hash = '#/wallet'`);
      const rows = page.locator('table.lines tbody tr');
      await expect.poll(() => rows.count(), { timeout: UI_TIMEOUT }).toBe(1);

      // The read after the next top-up answers slowly; the one after the one after answers first.
      const slow = await holdNextRead(page, (url) => url.pathname === '/v1/wallet/transactions');
      await topUp(user);
      await expect.poll(slow.held, { timeout: UI_TIMEOUT }).toBe(1);
      await topUp(user);
      await expect.poll(() => rows.count(), { timeout: UI_TIMEOUT }).toBe(3);
      await slow.release();
      await settled(page);
      expect(await rows.count()).toBe(3);
      expect(pageErrors).toEqual([]);
    },
    TEST_TIMEOUT,
  );

  it(
    'shows my contracts at their latest state, not a slower earlier read',
    async () => {
      const { me, hirerRest, myRest, contract } = await activeContract(
        api,
        base,
        { title: 'Window cleaning', description: 'A contract list whose reads answer out of order.' },
        UI_TIMEOUT,
      );

      const page = await newPage();
      await signIn(page, base, me);
      await page.evaluate(`location.hash = '#/contracts'`);
      const state = page.locator('main li .state');
      await expect.poll(() => state.textContent(), { timeout: UI_TIMEOUT }).toBe('active');

      // The read after "changes requested" answers slowly (held on its way back); the one after
      // "approved" answers first.
      const delivered = await myRest.deliver(contract.id, {}, { ifMatch: contract.version });
      const slow = await holdNextRead(page, (url) => url.pathname === '/v1/me/contracts');
      const changes = await hirerRest.requestChanges(contract.id, {}, { ifMatch: delivered.version });
      await expect.poll(slow.held, { timeout: UI_TIMEOUT }).toBe(1);
      const again = await myRest.deliver(contract.id, {}, { ifMatch: changes.version });
      await hirerRest.approve(contract.id, {}, { ifMatch: again.version });
      await expect.poll(() => state.textContent(), { timeout: UI_TIMEOUT }).toBe('completed');
      await slow.release();
      await settled(page);
      expect(await state.textContent()).toBe('completed');
      expect(pageErrors).toEqual([]);
    },
    TEST_TIMEOUT,
  );
});

describe('a chat message refused after the connection is back (Chromium)', () => {
  it(
    'says why it was not sent, keeps it until discarded, and sends nothing twice',
    async () => {
      const { me, owner, roomId } = await groupRoomOfContacts(api, 'Night shift');

      const link = socketLink();
      const page = await newPage({ prepare: (context) => link.route(context) });
      await signIn(page, base, me);
      await page.evaluate(`location.hash = '#/rooms/${roomId}'`);
      const input = page.getByLabel('Message', { exact: true });
      await input.fill('Before');
      await page.getByRole('button', { name: 'Send' }).click();
      await page.locator('.room .messages li .body', { hasText: 'Before' }).waitFor();

      await link.cut(page);
      await input.fill('After the removal');
      await page.getByRole('button', { name: 'Send' }).click();
      const item = page.getByRole('list', { name: 'Not sent yet' }).getByRole('listitem');
      await item.getByText('Waiting for connection…').waitFor();
      const removal = await api.call('DELETE', `/v1/rooms/${roomId}/members/${me.id}`, {
        token: owner.accessToken,
      });
      expect(removal.status).toBe(204);
      await link.restore(page);

      // Refused (no longer a member): said, with the text still there until discarded.
      await item
        .filter({ hasText: 'After the removal' })
        .getByText(/^Not sent: /)
        .waitFor();
      await item.getByRole('button', { name: 'Discard' }).click();
      await expect.poll(() => item.count(), { timeout: UI_TIMEOUT }).toBe(0);
      const stored = await api.get<{ data: { body: string }[] }>(
        `/v1/rooms/${roomId}/messages`,
        owner.accessToken,
      );
      expect(stored.body.data.filter((m) => m.body === 'After the removal')).toEqual([]);
      expect(pageErrors).toEqual([]);
    },
    TEST_TIMEOUT,
  );
});

describe('read marks on a bad network (Chromium)', () => {
  it(
    "sends a room's read mark again at the next connect when the connection dropped with it",
    async () => {
      const { me, other, roomId } = await directRoomOfContacts(api);
      const otherSocket = await openSocket(`${base.replace(/^http/, 'ws')}/ws`, other.accessToken, 'json');
      try {
        await otherSocket.request('room.join', { roomId });
        const said = await otherSocket.request('room.send', {
          roomId,
          clientMsgId: 'r17-read',
          body: 'Read me',
        });
        expect(said.t).toBe('ok');
        const myUnread = async () => {
          const rooms = await api.get<{ data: { id: string; unread: number }[] }>(
            '/v1/rooms',
            me.accessToken,
          );
          return rooms.body.data.find((r) => r.id === roomId)?.unread;
        };
        expect(await myUnread()).toBe(1);

        // The first room.read frame dies with the connection (never reaches the server).
        let dropped = 0;
        const page = await newPage({
          prepare: (context) =>
            context.routeWebSocket(/\/ws$/, (socket) => {
              const server = socket.connectToServer();
              socket.onMessage((message) => {
                if (dropped === 0 && typeof message === 'string' && JSON.parse(message).t === 'room.read') {
                  dropped += 1;
                  void socket.close({ code: 1012, reason: 'test: the read mark is lost' });
                  void server.close();
                  return;
                }
                server.send(message);
              });
            }),
        });
        await signIn(page, base, me);
        await page.evaluate(`location.hash = '#/rooms/${roomId}'`);
        await page.locator('.room .messages li .body', { hasText: 'Read me' }).waitFor();
        await expect.poll(() => dropped, { timeout: UI_TIMEOUT }).toBe(1);
        await untilDefined(
          async () => ((await myUnread()) === 0 ? true : undefined),
          'the read mark',
          UI_TIMEOUT,
        );
        expect(pageErrors).toEqual([]);
      } finally {
        otherSocket.close();
      }
    },
    TEST_TIMEOUT,
  );
});

describe('a read the server never answers (Chromium)', () => {
  it('is given up after one attempt of 30 s and said, not tried twice more', async () => {
    const user = await registerUser(api);
    const page = await newPage();
    // The page's clock, not the wall's: the app's 30 s call timeout is jumped over once the call is out.
    await page.clock.install();
    await signIn(page, base, user);
    let asked = 0;
    // The profile's read goes out and nothing ever comes back (a stalled connection).
    const isMe = (url: URL) => url.pathname === '/v1/me';
    await page.route(isMe, (route) => {
      if (route.request().method() !== 'GET') return route.continue();
      asked += 1;
      return undefined;
    });
    await page.evaluate(`location.hash = '#/profile'`);
    await expect.poll(() => asked).toBe(1);
    await page.clock.fastForward(29_000);
    expect(await page.getByRole('alert').count()).toBe(0);
    // Past the first attempt's 30 s, and past where two more attempts would have gone out.
    await page.clock.fastForward(2_000);
    await expect(page.getByRole('alert').first().textContent({ timeout: 150_000 })).resolves.toBe(
      "Can't reach gigwire. Check your connection and try again.",
    );
    expect(asked).toBe(1);
    await page.unroute(isMe);
    expect(pageErrors).toEqual([]);
  }, 180_000);
});
