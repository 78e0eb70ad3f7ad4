/**
 * Review of the web app's stored chat outbox (review 19b), in Chromium against a real node: a
 * sign-in with a password never sends, nor leaves in the tab, an outbox that no session of this
 * page left there: one written into sessionStorage while nobody was signed in (someone at a shared
 * browser, in the name of who signs in next), or another user's unsent text (their session ended,
 * the tab changed hands). What a session that ended by itself left for the same user's next
 * sign-in in the same page is unit-tested in web-review19-outbox.test.ts.
 * - a message of mine confirmed after a reload by its resend (its answer was lost) comes with its
 *   first seq, older than the newest page read: "Older messages" goes on from the pages read, so no
 *   message between the two is skipped.
 */

import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createClient } from '../../protocol/src/client/index.js';
import { newGroupRoom, signedIn, signIn, twoContactsWebAppFile } from '../support/browser.js';
import type { HttpClient, Registered } from '../support/http.js';
import { OUTBOX_PREFIX, storedOutboxes } from '../support/outbox-storage.js';

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

describe('the stored chat outbox at a sign-in (Chromium)', () => {
  it(
    'sends nothing of an outbox found in the tab at a password sign-in, and removes every one',
    async () => {
      const roomId = await newGroupRoom(api, me, other, 'Shared computer');
      const page = await newPage();
      await page.goto(`${base}/#/signin`);
      await page.getByLabel('Username or email').waitFor();
      // Written while nobody is signed in: a message in my name to my room (user and room ids are
      // no secret to a member), and another user's unsent text left in the tab.
      const outboxOf = (body: string) =>
        JSON.stringify({
          v: 1,
          messages: [{ id: `planted-${body.length}`, roomId, body, status: 'queued' }],
        });
      await page.evaluate(`(() => {
        sessionStorage.setItem(${JSON.stringify(OUTBOX_PREFIX + me.id)}, ${JSON.stringify(outboxOf('Release the escrow now'))});
        sessionStorage.setItem(${JSON.stringify(OUTBOX_PREFIX + other.id)}, ${JSON.stringify(outboxOf('My private draft'))});
      })()`);

      await page.getByLabel('Username or email').fill(me.username);
      await page.getByLabel('Password').fill(me.password);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await signedIn(page);
      expect(await storedOutboxes(page)).toEqual({});

      await page.evaluate(`location.hash = '#/rooms/${roomId}'`);
      const input = page.getByLabel('Message', { exact: true });
      await input.fill('Typed after signing in');
      await page.getByRole('button', { name: 'Send' }).click();
      // The outbox sends in the order written: anything restored would have gone out first.
      const shown = page.locator('.room .messages li .body');
      await shown.filter({ hasText: 'Typed after signing in' }).waitFor();
      expect(await shown.allTextContents()).toEqual(['Typed after signing in']);
      const history = await api.get<{ data: { body: string; clientMsgId: string }[] }>(
        `/v1/rooms/${roomId}/messages`,
        other.accessToken,
      );
      expect(history.status).toBe(200);
      expect(
        history.body.data.filter((m) => !m.clientMsgId.startsWith('system.')).map((m) => m.body),
      ).toEqual(['Typed after signing in']);
      expect(await page.getByRole('list', { name: 'Not sent yet' }).count()).toBe(0);
      expect(await storedOutboxes(page)).toEqual({});
      expect(pageErrors).toEqual([]);
    },
    TEST_TIMEOUT,
  );
});

describe('a room after a reload (Chromium)', () => {
  it(
    'pages back over every message when a resend confirms a message older than the newest page',
    async () => {
      const roomId = await newGroupRoom(api, me, other, 'Busy room');
      // Answers to my room.send: lost (and the push of it) before the reload; after it held until
      // the room shows its newest page, so that the screen is there to be told of the resend.
      let phase: 'lose' | 'hold' | 'pass' = 'lose';
      const sends = new Set<unknown>();
      const held: (() => void)[] = [];
      const page = await newPage({
        prepare: (context) =>
          context.routeWebSocket(/\/ws$/, (socket) => {
            const server = socket.connectToServer();
            socket.onMessage((message) => {
              const frame = typeof message === 'string' ? JSON.parse(message) : undefined;
              if (frame?.t === 'room.send') sends.add(frame.id);
              server.send(message);
            });
            server.onMessage((message) => {
              const frame = typeof message === 'string' ? JSON.parse(message) : undefined;
              const answer = frame?.t === 'ok' && sends.has(frame.id);
              if (phase === 'lose' && (answer || frame?.d?.body === 'Answer lost')) return;
              if (phase === 'hold' && answer) held.push(() => socket.send(message));
              else socket.send(message);
            });
          }),
      });
      await signIn(page, base, me);
      await page.evaluate(`location.hash = '#/rooms/${roomId}'`);
      const input = page.getByLabel('Message', { exact: true });
      await input.fill('Answer lost');
      await page.getByRole('button', { name: 'Send' }).click();
      const bodies = async () => {
        const history = await api.get<{ data: { body: string; clientMsgId: string }[] }>(
          `/v1/rooms/${roomId}/messages?limit=100`,
          other.accessToken,
        );
        expect(history.status).toBe(200);
        return history.body.data.filter((m) => !m.clientMsgId.startsWith('system.')).map((m) => m.body);
      };
      await expect.poll(bodies, { timeout: UI_TIMEOUT }).toEqual(['Answer lost']);

      // Then more than a page of messages from the other member.
      const said = Array.from({ length: 51 }, (_, index) => `Message ${index + 1}`);
      const client = createClient({
        url: `${base.replace(/^http/, 'ws')}/ws`,
        WebSocket,
        encoding: 'json',
        getAccessToken: () => other.accessToken,
      });
      try {
        for (const body of said) await client.sendMessage(roomId, body);
      } finally {
        client.close();
      }

      phase = 'hold';
      page.on('dialog', (dialog) => void (dialog.type() === 'beforeunload' ? dialog.accept() : undefined));
      await page.reload();
      await signedIn(page);
      const shown = page.locator('.room .messages li .body');
      await expect.poll(() => shown.count(), { timeout: UI_TIMEOUT }).toBe(50);
      phase = 'pass';
      for (const release of held.splice(0)) release();
      // The resend is answered with the first seq: shown, and nothing is stored any more.
      await shown.filter({ hasText: 'Answer lost' }).waitFor();
      await expect.poll(() => storedOutboxes(page), { timeout: UI_TIMEOUT }).toEqual({});
      await page.getByRole('button', { name: 'Older messages' }).click();
      await expect
        .poll(() => shown.allTextContents(), { timeout: UI_TIMEOUT })
        .toEqual(['Answer lost', ...said]);
      expect(pageErrors).toEqual([]);
    },
    TEST_TIMEOUT,
  );
});
