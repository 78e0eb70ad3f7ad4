/**
 * Operators' console, review 20: where a sign-in goes next. `next` (from the sign-in link's query,
 * carried by the form) becomes the Location header of the 303. A control character in it
 * (`/admin/sign-in?next=/admin/queues%23%01`, a link anyone can send an admin) made Node refuse the
 * header: the admin who typed their password got a bare 500 (`ERR_INVALID_CHAR`, not problem+json)
 * and no cookie, with a console session begun for nothing. Such a `next` now falls back to the
 * console's own page, as any `next` outside it does. Review 23: so does a `next` longer than 2 000
 * characters, which failed the whole sign-in as "Enter your login and password." instead.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, type DbHandle } from '../../src/db/create-db.js';
import { consoleCookie, consoleSignIn } from '../support/console.js';
import { captureLogs, startTestNode, type TestNode } from '../support/context.js';
import { httpClient, promoteToAdmin, registerUser } from '../support/http.js';

let node: TestNode;
let handle: DbHandle;

beforeAll(async () => {
  node = await startTestNode();
  handle = await createDb({ kind: 'postgres', url: node.db.url, poolMax: 2 }, captureLogs().log);
}, 60_000);
afterAll(async () => {
  await handle?.close();
  await node?.stop();
});

describe('console sign-in destination', () => {
  it('sends an admin to the console when next holds characters a Location header cannot carry', async () => {
    const base = node.node.baseUrl;
    const api = httpClient(base);
    const admin = await registerUser(api, { roles: ['worker'] });
    await promoteToAdmin(api, handle.db, admin, ['worker']);
    for (const next of [
      '/admin/queues#\u0001',
      '/admin/queues?q=\u007f',
      '/admin/queues/\u00e9',
      '/admin/queues?\u20ac',
    ]) {
      const signedIn = await consoleSignIn(base, { login: admin.username, password: admin.password, next });
      expect(signedIn.status, JSON.stringify(next)).toBe(303);
      expect(signedIn.headers.get('location')).toBe('/admin/queues');
      const cookie = consoleCookie(signedIn);
      expect(cookie).toBeDefined();
      const board = await fetch(`${base}/admin/queues`, {
        headers: { cookie: cookie as string },
        redirect: 'manual',
      });
      expect(board.status).toBe(200);
    }
    // Longer than any console link: dropped, and the sign-in still succeeds.
    const long = await consoleSignIn(base, {
      login: admin.username,
      password: admin.password,
      next: `/admin/queues/queue/emails?status=failed&q=${'x'.repeat(2_100)}`,
    });
    expect(long.status).toBe(303);
    expect(long.headers.get('location')).toBe('/admin/queues');
    expect(consoleCookie(long)).toBeDefined();
    // A console path in plain ASCII is still where the admin lands.
    const deep = await consoleSignIn(base, {
      login: admin.username,
      password: admin.password,
      next: '/admin/queues/queue/emails?status=failed',
    });
    expect(deep.headers.get('location')).toBe('/admin/queues/queue/emails?status=failed');
  });
});
