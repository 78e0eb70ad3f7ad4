/**
 * The one-click unsubscribe page behind a reverse proxy that serves gigwire under a path
 * (PUBLIC_URL `https://…/gigwire`), and what a browser gets for a link that no longer works: real
 * PostgreSQL and Redis, one node.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UserId } from '../../protocol/src/ids.js';
import { createDb, type DbHandle } from '../../src/db/create-db.js';
import { unsubscribeTokens, unsubscribeUrl } from '../../src/domain/notifications/unsubscribe.js';
import { startTestNode, type TestNode } from '../support/context.js';
import { httpClient, registerUser } from '../support/http.js';

const PUBLIC_URL = 'https://mail.example.test/gigwire';

describe('unsubscribe page under a PUBLIC_URL with a path', () => {
  let node: TestNode;
  let handle: DbHandle;

  beforeAll(async () => {
    node = await startTestNode({ PUBLIC_URL, LEDGER_AUDIT_INTERVAL_S: '0' });
    handle = await createDb({ kind: 'postgres', url: node.db.url, poolMax: 2 }, node.logs.log);
  }, 60_000);

  afterAll(async () => {
    await handle?.close();
    await node?.stop();
  });

  it('posts its button to the link it was opened from, prefix included, and that unsubscribes', async () => {
    const api = httpClient(node.node.baseUrl);
    const user = await registerUser(api);
    const token = await unsubscribeTokens(handle.db).issue(user.id as UserId, new Date());
    // The link as mailed, and what the proxy forwards of it (the prefix stripped).
    const link = new URL(unsubscribeUrl(PUBLIC_URL, token));
    const forwarded = (url: URL) => {
      expect(url.origin).toBe(link.origin);
      expect(url.pathname.startsWith('/gigwire/')).toBe(true);
      return `${node.node.baseUrl}${url.pathname.slice('/gigwire'.length)}${url.search}`;
    };

    const page = await fetch(forwarded(link), { headers: { accept: 'text/html' } });
    expect(page.status).toBe(200);
    const action = /<form method="post" action="([^"]+)"/.exec(await page.text())?.[1];
    expect(action).toBeDefined();
    // Where the browser posts the button: the action resolved against the page's URL.
    const target = new URL((action ?? '').replaceAll('&amp;', '&'), link);
    expect(target.href).toBe(link.href);

    const done = await fetch(forwarded(target), {
      method: 'POST',
      headers: { accept: 'text/html', 'content-type': 'application/x-www-form-urlencoded' },
      body: 'List-Unsubscribe=One-Click',
    });
    expect(done.status).toBe(200);
    const preferences = await api.get<{ preferences: Record<string, { email: string }> }>(
      '/v1/me/notification-preferences',
      user.accessToken,
    );
    expect(preferences.body.preferences['bid.received']?.email).toBe('never');
    expect(preferences.body.preferences['security.new_login']?.email).toBe('always');
  }, 60_000);

  it('shows a browser a page for a forged or cut-short link; an API client still gets problem+json', async () => {
    const api = httpClient(node.node.baseUrl);
    const user = await registerUser(api);
    const token = await unsubscribeTokens(handle.db).issue(user.id as UserId, new Date());
    const path = new URL(unsubscribeUrl(PUBLIC_URL, token)).pathname.slice('/gigwire'.length);
    const forged = `${token.slice(0, -4)}${token.endsWith('AAAA') ? 'BBBB' : 'AAAA'}`;
    const cases = [
      { token: forged, status: 401 },
      // What a mail client that wraps long lines leaves of it: malformed.
      { token: token.slice(0, 10), status: 400 },
    ];
    for (const { token: sent, status } of cases) {
      for (const method of ['GET', 'POST']) {
        const url = `${node.node.baseUrl}${path}?token=${encodeURIComponent(sent)}`;
        const page = await fetch(url, {
          method,
          headers: {
            accept: 'text/html',
            ...(method === 'POST' ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
          },
          ...(method === 'POST' ? { body: 'List-Unsubscribe=One-Click' } : {}),
        });
        expect(page.status, `${method} ${status}`).toBe(status);
        expect(page.headers.get('content-type')).toMatch(/^text\/html/);
        expect(await page.text()).toContain('This link no longer works');

        const problem = await fetch(url, { method, headers: { accept: 'application/json' } });
        expect(problem.status).toBe(status);
        expect(problem.headers.get('content-type')).toMatch(/^application\/problem\+json/);
        expect(await problem.json()).toMatchObject({
          code: status === 401 ? 'UNAUTHORIZED' : 'VALIDATION_FAILED',
        });
      }
    }
    // Nothing was turned off by any of them.
    const preferences = await api.get<{ preferences: Record<string, { email: string }> }>(
      '/v1/me/notification-preferences',
      user.accessToken,
    );
    expect(preferences.body.preferences['bid.received']?.email).not.toBe('never');
  }, 60_000);
});
