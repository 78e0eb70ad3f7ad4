/**
 * Operators read the email log over REST, but never a live single-use token from it: a password
 * reset mail that SMTP has not taken yet (the server is down) is listed without its body, so an
 * admin cannot reset another user's (another admin's) password with it. Real PostgreSQL, Redis and
 * worker; SMTP_URL points at a port nothing listens on.
 */
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, type DbHandle } from '../../src/db/create-db.js';
import { captureLogs, startTestNode, type TestNode } from '../support/context.js';
import { httpClient, promoteToAdmin, registerUser } from '../support/http.js';

interface Mail {
  template: string;
  to: string;
  status: string;
  text: string | null;
  html: string | null;
}

/** A local port that refuses connections (bound, then closed). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

describe('email log and live tokens', () => {
  let node: TestNode;
  let handle: DbHandle;

  beforeAll(async () => {
    node = await startTestNode({ SMTP_URL: `smtp://127.0.0.1:${await closedPort()}`, OUTBOX_POLL_MS: '20' });
    handle = await createDb({ kind: 'postgres', url: node.db.url, poolMax: 2 }, captureLogs().log);
  }, 60_000);
  afterAll(async () => {
    await handle?.close();
    await node?.stop();
  });

  it('lists a reset mail SMTP has not taken without its body', async () => {
    const api = httpClient(node.node.baseUrl);
    const admin = await registerUser(api);
    const adminToken = await promoteToAdmin(api, handle.db, admin, []);
    const victim = await registerUser(api);
    expect((await api.post('/v1/auth/forgot-password', { email: victim.email })).status).toBe(202);
    let reset: Mail | undefined;
    for (let i = 0; i < 200 && reset?.status !== 'pending'; i++) {
      const page = await api.get<{ data: Mail[] }>('/v1/admin/emails?limit=100', adminToken);
      reset = page.body.data.find((m) => m.template === 'reset-password' && m.to === victim.email);
      if (reset?.status !== 'pending') await new Promise((resolve) => setTimeout(resolve, 50));
    }
    // Stored and tried once (the send failed): the token in it is live.
    expect(reset?.status).toBe('pending');
    expect(reset?.text).toBeNull();
    expect(reset?.html).toBeNull();
  }, 30_000);
});
