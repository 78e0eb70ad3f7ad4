/**
 * Marketplace review 20: profile links with a user name or password. `https://www.behance.net@evil.example/`
 * parses as an http(s) URL and kept its userinfo when serialised, so a worker's portfolio link (or
 * avatar) read as behance.net to every viewer of the profile and took them to evil.example. Such a
 * link is refused (400 naming the field) and nothing of the PATCH is stored.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestNode, type TestNode } from '../support/context.js';
import { httpClient, registerUser } from '../support/http.js';

let testNode: TestNode;
let api: ReturnType<typeof httpClient>;

beforeAll(async () => {
  testNode = await startTestNode();
  api = httpClient(testNode.node.baseUrl);
});
afterAll(() => testNode?.stop());

type Profile = { bio: string | null; avatarUrl: string | null; workerProfile: { portfolioLinks: string[] } };
type Problem = { code: string; errors?: { path: string }[] };

describe('profile links with a user name or password', () => {
  it('are refused naming the field, and the rest of the change is not stored', async () => {
    const owner = await registerUser(api, { roles: ['worker'] });
    const cases: [Record<string, unknown>, string][] = [
      [
        { portfolioLinks: ['https://example.test/work', 'https://www.behance.net@evil.example/work'] },
        'body.portfolioLinks.1',
      ],
      [{ portfolioLinks: ['https://dribbble.com:secret@evil.example/'] }, 'body.portfolioLinks.0'],
      [{ avatarUrl: 'https://:pw@cdn.example.test/me.png' }, 'body.avatarUrl'],
    ];
    for (const [body, path] of cases) {
      const refused = await api.call<Problem>('PATCH', '/v1/me', {
        token: owner.accessToken,
        body: { bio: 'Changed', ...body },
      });
      expect(refused.status, JSON.stringify(body)).toBe(400);
      expect(refused.body.code).toBe('VALIDATION_FAILED');
      expect(refused.body.errors?.map((error) => error.path)).toEqual([path]);
    }
    const shown = await api.get<Profile>(`/v1/users/${owner.id}`, owner.accessToken);
    expect(shown.body).toMatchObject({ bio: null, avatarUrl: null, workerProfile: { portfolioLinks: [] } });

    // An "@" in the path is no user name: still taken.
    const fine = await api.call<Profile>('PATCH', '/v1/me', {
      token: owner.accessToken,
      body: { portfolioLinks: ['https://example.test/@owner/work'] },
    });
    expect(fine.status).toBe(200);
    expect(fine.body.workerProfile.portfolioLinks).toEqual(['https://example.test/@owner/work']);
  });
});
