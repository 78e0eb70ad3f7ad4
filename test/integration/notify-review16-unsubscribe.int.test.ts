/**
 * The one-click unsubscribe page behind a reverse proxy that serves gigwire under a path
 * (PUBLIC_URL `https://…/gigwire`): real PostgreSQL and Redis, one node.
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
});
