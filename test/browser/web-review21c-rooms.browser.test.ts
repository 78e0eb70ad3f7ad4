/**
 * Rooms in the web app (review 21c), in Chromium against a real node:
 * - a room's messages list was an aria-live region, so a screen reader read out every message of a
 *   page of history as it loaded: only a message pushed is said now (a live region of its own); and
 *   "Older messages", pressed from the keyboard for the last page, went away with the focus on it
 *   (lost to the page's body): the focus moves to the list;
 * - the Messages list said it was live, but nothing is pushed for a room the user has not opened
 *   (nor when someone adds them to one): it is read again when the tab is shown again.
 */

import { describe, expect, it } from 'vitest';
import { signIn, webAppTestFile } from '../support/browser.js';
import { createGroupRoom, type HttpClient, registerUser } from '../support/http.js';
import { groupRoomWithOwnerSocket } from '../support/rest-fixtures.js';

const UI_TIMEOUT = 30_000;
const TEST_TIMEOUT = 60_000;
/** The newest page of 50 and an older one of 10 (and the room's system messages). */
const MESSAGES = 60;

let base: string;
let api: HttpClient;
const { pageErrors, newPage } = webAppTestFile(
  UI_TIMEOUT,
  { LEDGER_AUDIT_INTERVAL_S: '0', WS_MAX_MESSAGES_PER_SECOND: '10000', WS_MAX_BURST: '10000' },
  (node) => {
    ({ base, api } = node);
  },
);

describe('rooms for keyboard and screen-reader users, and the rooms list (Chromium)', () => {
  it(
    'says only pushed messages, and moves the focus to the list when "Older messages" goes',
    async () => {
      const { me, roomId, send, close } = await groupRoomWithOwnerSocket(api, base, 'Spoken');
      try {
        for (let i = 1; i <= MESSAGES; i += 1) await send(`m${i}`);

        const page = await newPage();
        await signIn(page, base, me);
        await page.evaluate(`location.hash = ${JSON.stringify(`#/rooms/${roomId}`)}`);
        const list = page.getByRole('list', { name: 'Messages' });
        await list.getByText(`m${MESSAGES}`, { exact: true }).waitFor();
        // The list itself is no live region (nor inside one): a page of history is not read out.
        expect(
          await list.evaluate(
            (element) => element.closest('[aria-live], [role="log"], [role="status"]') === null,
          ),
        ).toBe(true);

        // From the keyboard: the last older page read, the button goes and the focus is on the list.
        const older = page.getByRole('button', { name: 'Older messages' });
        await older.focus();
        await page.keyboard.press('Enter');
        await list.getByText('m1', { exact: true }).waitFor();
        await expect.poll(() => older.count()).toBe(0);
        expect(await page.evaluate(`document.activeElement?.getAttribute('aria-label') ?? null`)).toBe(
          'Messages',
        );

        // A message pushed is said, by a live region of its own.
        await send('just now');
        await list.getByText('just now', { exact: true }).waitFor();
        const announce = page.getByTestId('room-announce');
        await expect.poll(() => announce.textContent()).toContain('just now');
        expect(await announce.getAttribute('aria-live')).toBe('polite');
      } finally {
        close();
      }
      expect(pageErrors).toEqual([]);
    },
    TEST_TIMEOUT,
  );

  it(
    'reads the rooms list again when the tab is shown again',
    async () => {
      const me = await registerUser(api);
      const friend = await registerUser(api);
      await createGroupRoom(api, friend, [me]);
      const page = await newPage();
      await signIn(page, base, me);
      await page.evaluate(`location.hash = '#/rooms'`);
      const rooms = page.getByRole('list', { name: 'Rooms' }).locator('li');
      await expect.poll(() => rooms.count(), { timeout: UI_TIMEOUT }).toBe(1);
      // Added to a room while the list is open: nothing is pushed for it.
      const added = await createGroupRoom(api, friend, [me]);
      // The user comes back to the tab (from another one).
      await page.evaluate(`document.dispatchEvent(new Event('visibilitychange'))`);
      await page.locator(`a[href="#/rooms/${added}"]`).waitFor();
      expect(await rooms.count()).toBe(2);
      expect(pageErrors).toEqual([]);
    },
    TEST_TIMEOUT,
  );
});
