/**
 * A room's "Older messages" on a bad network (review 21b), in Chromium against a real node, with
 * the page's socket relayed through Playwright:
 * - a press that failed says why, and that error goes once a later press reads the page (it stayed
 *   under the room before, beside the messages it had since loaded);
 * - pressed twice while a page is read, the page is asked for once (each press asked for the same
 *   page again, one more of the user's room reads at a time) and every message is listed once, in
 *   order.
 * And People, whose contacts could not be read, says why with "Try again" (it said "No contacts yet"
 * under the error, as if the user had none).
 */

import { describe, expect, it } from 'vitest';
import { signIn, webAppTestFile } from '../support/browser.js';
import type { HttpClient } from '../support/http.js';
import { groupRoomOfContacts, groupRoomWithOwnerSocket } from '../support/rest-fixtures.js';

const UI_TIMEOUT = 30_000;
const TEST_TIMEOUT = 90_000;
/** Three pages of history at the app's 50 a page: the newest, one more, and the last 10. */
const MESSAGES = 110;

let base: string;
let api: HttpClient;
const { pageErrors, newPage } = webAppTestFile(
  UI_TIMEOUT,
  { LEDGER_AUDIT_INTERVAL_S: '0', WS_MAX_MESSAGES_PER_SECOND: '10000', WS_MAX_BURST: '10000' },
  (node) => {
    ({ base, api } = node);
  },
);

describe('older messages of a room, and People, on a bad network (Chromium)', () => {
  it(
    'clears its error once a page loads, and reads one page per press while one is read',
    async () => {
      const { me, roomId, send, close } = await groupRoomWithOwnerSocket(api, base, 'Long history');
      try {
        for (let i = 1; i <= MESSAGES; i += 1) await send(`m${i}`);
      } finally {
        close();
      }

      // The page's socket, relayed: the `room.history` frames asking for older pages are counted;
      // once armed, the next is refused (as the server refuses a fifth room read at a time) or held
      // until released.
      const olderAsked: number[] = [];
      let refuseNext = false;
      let holdNext = false;
      let release: () => void = () => undefined;
      const page = await newPage({
        prepare: (context) =>
          context.routeWebSocket(/\/ws$/, (route) => {
            const server = route.connectToServer();
            server.onMessage((message) => route.send(message));
            route.onMessage((message) => {
              const frame = JSON.parse(String(message)) as {
                t: string;
                id?: number;
                d?: { beforeSeq?: number };
              };
              if (frame.t !== 'room.history' || frame.d?.beforeSeq === undefined) return server.send(message);
              olderAsked.push(frame.d.beforeSeq);
              if (refuseNext) {
                refuseNext = false;
                route.send(
                  JSON.stringify({
                    t: 'error',
                    id: frame.id,
                    d: { code: 'RATE_LIMITED', message: 'at most 4 room reads at a time' },
                  }),
                );
                return;
              }
              if (!holdNext) return server.send(message);
              holdNext = false;
              release = () => server.send(message);
            });
          }),
      });
      await signIn(page, base, me);
      await page.evaluate(`location.hash = ${JSON.stringify(`#/rooms/${roomId}`)}`);
      const main = page.locator('main');
      const bodies = main.locator('.room .messages li:not(.end) .body');
      await expect.poll(() => bodies.count(), { timeout: UI_TIMEOUT }).toBe(50);
      const olderButton = main.getByRole('button', { name: 'Older messages' });

      // A press refused: why is said. The next press reads the page, and the error goes.
      refuseNext = true;
      await olderButton.click();
      await main.getByRole('alert').filter({ hasText: 'at most 4 room reads at a time' }).waitFor();
      await olderButton.click();
      await expect.poll(() => bodies.count(), { timeout: UI_TIMEOUT }).toBe(100);
      expect(await main.getByRole('alert').count()).toBe(0);

      // Two presses while the last page is on its way: asked for once.
      holdNext = true;
      await olderButton.click();
      await expect.poll(() => olderAsked.length).toBe(3);
      await olderButton.click();
      // The second press has been handled by the page (its task ran) before the count is read.
      await page.evaluate(() => new Promise((resolve) => setTimeout(resolve, 0)));
      release();
      await expect.poll(() => bodies.count(), { timeout: UI_TIMEOUT }).toBe(MESSAGES);
      await expect.poll(() => olderButton.count()).toBe(0);
      expect(olderAsked.length).toBe(3);
      expect(await bodies.allTextContents()).toEqual(Array.from({ length: MESSAGES }, (_, i) => `m${i + 1}`));
      expect(pageErrors).toEqual([]);
    },
    TEST_TIMEOUT,
  );

  it(
    'People says why the contacts could not be read, never "No contacts yet"',
    async () => {
      const { me, owner } = await groupRoomOfContacts(api, 'Contacts');
      const page = await newPage();
      let refused = 0;
      await page.route(
        (url) => url.pathname === '/v1/me/contacts',
        async (route) => {
          if (refused > 0 || route.request().method() !== 'GET') return route.continue();
          refused += 1;
          await route.fulfill({
            status: 503,
            contentType: 'application/problem+json',
            headers: { 'retry-after': '30' },
            body: JSON.stringify({ type: 'about:blank', title: 'Service unavailable', status: 503 }),
          });
        },
      );
      await signIn(page, base, me);
      await page.evaluate(`location.hash = '#/people'`);
      const main = page.locator('main');
      await main.getByRole('alert').filter({ hasText: "Can't reach gigwire" }).waitFor();
      expect(refused).toBe(1);
      expect(await main.getByText('No contacts yet').count()).toBe(0);
      await main.getByRole('button', { name: 'Try again' }).click();
      await main
        .getByRole('list', { name: 'Contacts' })
        .getByRole('link', { name: owner.username })
        .waitFor();
      expect(await main.getByRole('alert').count()).toBe(0);
      expect(pageErrors).toEqual([]);
    },
    TEST_TIMEOUT,
  );
});
