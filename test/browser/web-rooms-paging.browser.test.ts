/**
 * The Messages list pages through GET /v1/rooms (50 a page; the server also cuts a page at 1 MiB):
 * before, only the first page was ever read, so rooms past it were never listed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildWebApp, chromiumPages, findChromium, signIn } from '../support/browser.js';
import { startTestNode, type TestNode } from '../support/context.js';
import { createGroupRoom, httpClient, registerUser } from '../support/http.js';

const UI_TIMEOUT = 30_000;

let testNode: TestNode;
let base: string;
const pages = chromiumPages(UI_TIMEOUT);
const { pageErrors, newPage } = pages;

beforeAll(async () => {
  const executablePath = await findChromium();
  buildWebApp();
  testNode = await startTestNode({ LEDGER_AUDIT_INTERVAL_S: '0', RATE_LIMIT_PER_MINUTE: '100000' });
  base = testNode.node.baseUrl;
  await pages.launch(executablePath);
});

afterAll(async () => {
  await pages.close();
  await testNode?.stop();
});

describe('the Messages list (Chromium)', () => {
  it('lists rooms past the first page with "More rooms", each once', async () => {
    const api = httpClient(base);
    const [me, friend] = [await registerUser(api), await registerUser(api)];
    const titles: string[] = [];
    for (let i = 0; i < 51; i++) {
      const roomId = await createGroupRoom(api, friend, [me]);
      titles.push(roomId);
    }
    const page = await newPage();
    await signIn(page, base, me);
    await page.goto(`${base}/#/rooms`);
    const rooms = page.getByRole('list', { name: 'Rooms' }).locator('li');
    await expect.poll(() => rooms.count(), { timeout: UI_TIMEOUT }).toBe(50);
    await page.getByRole('button', { name: 'More rooms' }).click();
    await expect.poll(() => rooms.count(), { timeout: UI_TIMEOUT }).toBe(51);
    await expect.poll(() => page.getByRole('button', { name: 'More rooms' }).count()).toBe(0);
    const links = await rooms
      .locator('a')
      .evaluateAll((anchors) => anchors.map((a) => (a.getAttribute('href') ?? '').replace('#/rooms/', '')));
    expect(new Set(links)).toEqual(new Set(titles));
    expect(pageErrors).toEqual([]);
  }, 180_000);
});
