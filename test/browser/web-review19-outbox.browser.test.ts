/**
 * The web app's chat outbox across reloads, in Chromium against a real node (review 19):
 * - a message written while the socket is down survives a reload of the page, goes out once when
 *   the connection is back (its clientMsgId kept) and is shown as sent; one the server stored
 *   before the reload while its answer was lost is sent again with its clientMsgId and stored once;
 * - signing out removes the stored outbox (the next person to sign in there never sends it);
 * - an outbox in storage that is not one (hand-edited) or storage that refuses writes (quota) does
 *   not break the room: it works from memory;
 * - the wallet shows money parked at the balance limit, with what it means, from a read or a push.
 * The storage format and its checks are unit-tested in web-review19-outbox.test.ts.
 */

import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { createRestClient } from '../../protocol/src/client/rest.js';
import { newGroupRoom, signIn, socketLink, twoContactsWebAppFile } from '../support/browser.js';
import { type HttpClient, type Registered, registerUser } from '../support/http.js';
import { OUTBOX_PREFIX, storedOutboxes } from '../support/outbox-storage.js';
import { untilDefined } from '../support/poll.js';

// Generous: CI runs this beside other test files on 2 cores; a wait ends as soon as the UI is there.
const UI_TIMEOUT = 30_000;
const TEST_TIMEOUT = 90_000;

let base: string;
let api: HttpClient;
let me: Registered;
let other: Registered;
const { pageErrors, newPage } = twoContactsWebAppFile(UI_TIMEOUT, (file) => {
  ({ base, api, me, other } = file);
});

/** The users are registered once for the file: registering and signing in dominate its time. */
const newRoom = (title: string) => newGroupRoom(api, me, other, title);

interface StoredMessage {
  id: string;
  clientMsgId: string;
  body: string;
  senderId: string;
}

const historyOf = async (roomId: string, user: Registered) => {
  const messages = await api.get<{ data: StoredMessage[] }>(`/v1/rooms/${roomId}/messages`, user.accessToken);
  expect(messages.status).toBe(200);
  // The room's own notices (created, members) are the platform's, not anyone's outbox.
  return messages.body.data.filter((m) => !m.clientMsgId.startsWith('system.'));
};

/** The room screen's parts. */
const roomOf = (page: Page) => ({
  input: page.getByLabel('Message', { exact: true }),
  send: page.getByRole('button', { name: 'Send' }),
  stored: page.locator('.room .messages li .body'),
  pending: page.getByRole('list', { name: 'Not sent yet' }).getByRole('listitem'),
});

/**
 * Signed in as `me` in a new room, with only the socket cut (the page itself can still be loaded
 * again), and `body` written: it waits in the outbox.
 */
async function writtenOffline(title: string, body: string) {
  const roomId = await newRoom(title);
  const link = socketLink();
  const page = await newPage({ prepare: (context) => link.route(context) });
  await signIn(page, base, me);
  await page.evaluate(`location.hash = '#/rooms/${roomId}'`);
  const room = roomOf(page);
  await room.input.waitFor();
  await link.cut(page, { rest: false });
  await room.input.fill(body);
  await room.send.click();
  await room.pending.filter({ hasText: body }).getByText('Waiting for connection…').waitFor();
  return { roomId, link, page, room };
}

/** A reload with the app's leave-page question (unsent messages) answered "leave". */
async function reload(page: Page): Promise<void> {
  const accept = (dialog: { type: () => string; accept: () => Promise<void> }) => {
    if (dialog.type() === 'beforeunload') void dialog.accept();
  };
  page.on('dialog', accept);
  try {
    await page.reload();
  } finally {
    page.off('dialog', accept);
  }
  await page.getByRole('navigation', { name: 'Main' }).waitFor();
}

describe('unsent chat messages across a reload (Chromium)', () => {
  it(
    'sends a message written offline once after a reload, with its clientMsgId, and shows it sent',
    async () => {
      const { roomId, link, page, room } = await writtenOffline('Tunnel', 'Written in the tunnel');
      const before = await storedOutboxes(page);
      expect(Object.keys(before)).toEqual([OUTBOX_PREFIX + me.id]);
      const kept = JSON.parse(before[OUTBOX_PREFIX + me.id] ?? '') as {
        messages: { id: string; roomId: string; body: string }[];
      };
      expect(kept.messages.map((m) => m.body)).toEqual(['Written in the tunnel']);
      const clientMsgId = kept.messages[0]?.id ?? '';

      await reload(page);
      // Still offline after the reload: the message is there again, waiting.
      await room.pending.filter({ hasText: 'Written in the tunnel' }).waitFor();
      expect(await room.stored.allTextContents()).toEqual([]);

      await link.restore(page);
      await expect
        .poll(() => room.stored.allTextContents(), { timeout: UI_TIMEOUT })
        .toEqual(['Written in the tunnel']);
      await expect.poll(() => room.pending.count(), { timeout: UI_TIMEOUT }).toBe(0);
      const stored = await historyOf(roomId, other);
      expect(stored.map((m) => [m.body, m.clientMsgId, m.senderId])).toEqual([
        ['Written in the tunnel', clientMsgId, me.id],
      ]);
      // Sent: nothing is kept any more.
      expect(await storedOutboxes(page)).toEqual({});
      expect(pageErrors).toEqual([]);
    },
    TEST_TIMEOUT,
  );

  it(
    'stores once a message whose answer was lost before the reload',
    async () => {
      const roomId = await newRoom('Lost answer');
      // The server's answer to the first room.send is lost on its way back (the push too).
      let lost: number | string | undefined;
      const page = await newPage({
        prepare: (context) =>
          context.routeWebSocket(/\/ws$/, (socket) => {
            const server = socket.connectToServer();
            socket.onMessage((message) => {
              const frame = typeof message === 'string' ? JSON.parse(message) : undefined;
              if (lost === undefined && frame?.t === 'room.send') lost = frame.id;
              server.send(message);
            });
            server.onMessage((message) => {
              const frame = typeof message === 'string' ? JSON.parse(message) : undefined;
              if (lost !== undefined && frame?.t === 'ok' && frame.id === lost) return;
              if (frame?.t === 'room.message' && frame.d?.body === 'Answer lost' && lost !== 'done') return;
              socket.send(message);
            });
          }),
      });
      await signIn(page, base, me);
      await page.evaluate(`location.hash = '#/rooms/${roomId}'`);
      const room = roomOf(page);
      await room.input.fill('Answer lost');
      await room.send.click();
      await untilDefined(
        async () => ((await historyOf(roomId, other)).length === 1 ? true : undefined),
        'the message stored',
        UI_TIMEOUT,
      );
      expect(Object.keys(await storedOutboxes(page))).toEqual([OUTBOX_PREFIX + me.id]);
      lost = 'done';

      await reload(page);
      await expect
        .poll(() => room.stored.allTextContents(), { timeout: UI_TIMEOUT })
        .toEqual(['Answer lost']);
      await expect.poll(() => storedOutboxes(page), { timeout: UI_TIMEOUT }).toEqual({});
      expect(await room.pending.count()).toBe(0);
      expect((await historyOf(roomId, other)).map((m) => m.body)).toEqual(['Answer lost']);
      expect(pageErrors).toEqual([]);
    },
    TEST_TIMEOUT,
  );

  it(
    'removes the stored outbox at sign-out: the next person signed in there sends nothing of it',
    async () => {
      const { roomId, link, page, room } = await writtenOffline('Shared browser', 'Not for the next person');
      expect(Object.keys(await storedOutboxes(page))).toEqual([OUTBOX_PREFIX + me.id]);

      await page.getByRole('button', { name: 'Sign out' }).click();
      await page.getByRole('button', { name: 'Sign in' }).waitFor();
      expect(await storedOutboxes(page)).toEqual({});

      link.down = false;
      await signIn(page, base, other);
      await page.getByRole('img', { name: 'connected' }).waitFor();
      await page.evaluate(`location.hash = '#/rooms/${roomId}'`);
      await room.input.waitFor();
      expect(await room.pending.count()).toBe(0);
      expect(await storedOutboxes(page)).toEqual({});
      expect(await historyOf(roomId, other)).toEqual([]);
      expect(pageErrors).toEqual([]);
    },
    TEST_TIMEOUT,
  );

  it(
    'keeps the room working when the stored outbox is corrupt or storage refuses writes',
    async () => {
      const roomId = await newRoom('Corrupt storage');
      const link = socketLink();
      const page = await newPage({ prepare: (context) => link.route(context) });
      await signIn(page, base, me);
      await page.evaluate(`location.hash = '#/rooms/${roomId}'`);
      // Hand-edited: not JSON at all.
      await page.evaluate(
        `sessionStorage.setItem(${JSON.stringify(OUTBOX_PREFIX + me.id)}, '{"v":1,"messages":[{"id":')`,
      );
      await reload(page);
      const room = roomOf(page);
      await room.input.fill('After the corruption');
      await room.send.click();
      await room.stored.filter({ hasText: 'After the corruption' }).waitFor();
      expect(await storedOutboxes(page)).toEqual({});

      // Storage full (quota): the outbox goes on from memory.
      await page.evaluate(`(() => {
        const setItem = Storage.prototype.setItem;
        Storage.prototype.setItem = function (key, value) {
          if (key.startsWith(${JSON.stringify(OUTBOX_PREFIX)})) throw new DOMException('full', 'QuotaExceededError');
          setItem.call(this, key, value);
        };
      })()`);
      await link.cut(page, { rest: false });
      await room.input.fill('Kept in memory');
      await room.send.click();
      await room.pending.filter({ hasText: 'Kept in memory' }).getByText('Waiting for connection…').waitFor();
      expect(await storedOutboxes(page)).toEqual({});
      await link.restore(page);
      await expect
        .poll(() => room.stored.allTextContents(), { timeout: UI_TIMEOUT })
        .toEqual(['After the corruption', 'Kept in memory']);
      expect((await historyOf(roomId, other)).map((m) => m.body).sort()).toEqual(
        ['After the corruption', 'Kept in memory'].sort(),
      );
      expect(await page.locator('.room').getByRole('alert').count()).toBe(0);
      expect(pageErrors).toEqual([]);
    },
    TEST_TIMEOUT,
  );
});

describe('the wallet (Chromium)', () => {
  it(
    'shows money parked at the balance limit, with what it means',
    async () => {
      const page = await newPage();
      // A balance at its limit (2^53 − 1 minor units) cannot be reached in a test: the server's
      // real answer, with some money parked.
      await page.route(
        (url) => url.pathname === '/v1/wallet',
        async (route) => {
          const response = await route.fetch();
          const wallet = (await response.json()) as Record<string, unknown>;
          await route.fulfill({ response, json: { ...wallet, parked: 4_200 } });
        },
      );
      await signIn(page, base, me);
      await page.evaluate(`location.hash = '#/wallet'`);
      const parked = page.getByTestId('parked');
      await parked.waitFor();
      expect(await parked.textContent()).toContain('Parked: $42.00');
      expect(await parked.textContent()).toContain('at its limit');
      expect(pageErrors).toEqual([]);
    },
    TEST_TIMEOUT,
  );

  it(
    'shows parked money a push carries, without reading the wallet again',
    async () => {
      const payer = await registerUser(api);
      const payerRest = createRestClient({ baseUrl: base, accessToken: () => payer.accessToken });
      await payerRest.topUp({ amount: 1_000, card: '4242424242424242' });
      await expect
        .poll(async () => (await payerRest.wallet()).available, { timeout: UI_TIMEOUT })
        .toBe(1_000);
      // The server's real push, with some money parked (a balance at its limit cannot be reached
      // here); its reads say none is parked, so only the push can show it.
      const page = await newPage({
        prepare: async (context) => {
          await context.routeWebSocket(/\/ws$/, (socket) => {
            const server = socket.connectToServer();
            socket.onMessage((message) => server.send(message));
            server.onMessage((message) => {
              const frame = typeof message === 'string' ? JSON.parse(message) : undefined;
              if (frame?.t === 'wallet') frame.d.parked = 700;
              socket.send(frame === undefined ? message : JSON.stringify(frame));
            });
          });
        },
      });
      await signIn(page, base, me);
      await page.evaluate(`location.hash = '#/wallet'`);
      await page.getByTestId('balance').waitFor();
      expect(await page.getByTestId('parked').count()).toBe(0);
      await payerRest.transfer({ toUserId: me.id, amount: 100 });
      const parked = page.getByTestId('parked');
      await parked.waitFor();
      expect(await parked.textContent()).toContain('Parked: $7.00');
      expect(pageErrors).toEqual([]);
    },
    TEST_TIMEOUT,
  );
});
