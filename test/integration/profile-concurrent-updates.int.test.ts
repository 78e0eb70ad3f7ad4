/**
 * Partial updates that race keep both changes: PATCH /v1/me of one field and of another at the
 * same moment (two tabs), and the same for notification preferences. Before, each request read the
 * row, merged and wrote every field back, so one change was lost now and then. Real PostgreSQL.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestNode, type TestNode } from '../support/context.js';
import { httpClient, registerUser } from '../support/http.js';

const ROUNDS = 30;

describe('partial updates at the same moment', () => {
  let node: TestNode;
  let api: ReturnType<typeof httpClient>;

  beforeAll(async () => {
    node = await startTestNode({ RATE_LIMIT_PER_MINUTE: '100000' });
    api = httpClient(node.node.baseUrl);
  }, 60_000);
  afterAll(async () => {
    await node?.stop();
  });

  it('keeps both fields of two PATCH /v1/me sent together', async () => {
    const user = await registerUser(api);
    for (let round = 0; round < ROUNDS; round++) {
      const [bio, location] = await Promise.all([
        api.call('PATCH', '/v1/me', { token: user.accessToken, body: { bio: `bio ${round}` } }),
        api.call('PATCH', '/v1/me', { token: user.accessToken, body: { location: `place ${round}` } }),
      ]);
      expect([bio.status, location.status]).toEqual([200, 200]);
      const me = await api.get<{ bio: string | null; location: string | null }>('/v1/me', user.accessToken);
      expect([me.body.bio, me.body.location], `round ${round}`).toEqual([`bio ${round}`, `place ${round}`]);
    }
  });

  it('keeps both fields of two preference updates sent together', async () => {
    const user = await registerUser(api);
    const path = '/v1/me/notification-preferences';
    for (let round = 0; round < ROUNDS; round++) {
      const inApp = round % 2 === 0;
      const email = round % 2 === 0 ? 'always' : 'never';
      await Promise.all([
        api.call('PUT', path, {
          token: user.accessToken,
          body: { preferences: { 'bid.received': { inApp } } },
        }),
        api.call('PUT', path, {
          token: user.accessToken,
          body: { preferences: { 'bid.received': { email } } },
        }),
      ]);
      const prefs = await api.get<{ preferences: Record<string, { inApp: boolean; email: string }> }>(
        path,
        user.accessToken,
      );
      expect(prefs.body.preferences['bid.received'], `round ${round}`).toEqual({ inApp, email });
    }
  });
});
