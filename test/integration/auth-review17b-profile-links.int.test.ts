/**
 * Profile links with hostile characters (review 17b). `avatarUrl` and `portfolioLinks` were checked
 * only for parsing as http(s) URLs and stored as sent, so a link carrying a text-direction override
 * (U+202E), zero-width or other invisible characters, spaces, or a look-alike host was shown to every
 * viewer of the profile (GET /v1/users/:id, worker search) reading other than where it goes. They are
 * stored as the URL's serialisation: such characters percent-encoded, the host in its `xn--` form.
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

type Profile = { avatarUrl: string | null; workerProfile: { portfolioLinks: string[] } | null };

/** Invisible or direction-changing characters, and any space or control character. */
const HIDDEN = /[\p{Cc}\p{Cf}\p{Z}]/u;

describe('profile links', () => {
  it('are stored and shown as URLs that read as where they go', async () => {
    const owner = await registerUser(api);
    const viewer = await registerUser(api);
    const patch = await api.call<Profile>('PATCH', '/v1/me', {
      token: owner.accessToken,
      body: {
        avatarUrl: 'https://cdn.example.test/\u202Egnp.exe',
        portfolioLinks: [
          'https://evil.example.test/\u202Emoc.elgoog',
          'https://example.test/a\u200Bb c\u2066',
          // Cyrillic "о" twice: reads as google.com.
          'https://g\u043E\u043Egle.com/login',
          'https://example.test/work',
        ],
      },
    });
    expect(patch.status).toBe(200);

    const shown = await api.get<Profile>(`/v1/users/${owner.id}`, viewer.accessToken);
    expect(shown.status).toBe(200);
    const links = [shown.body.avatarUrl ?? '', ...(shown.body.workerProfile?.portfolioLinks ?? [])];
    expect(links).toEqual([
      'https://cdn.example.test/%E2%80%AEgnp.exe',
      'https://evil.example.test/%E2%80%AEmoc.elgoog',
      'https://example.test/a%E2%80%8Bb%20c%E2%81%A6',
      'https://xn--ggle-55da.com/login',
      'https://example.test/work',
    ]);
    for (const link of links) expect(HIDDEN.test(link), link).toBe(false);
    expect(patch.body.avatarUrl).toBe(shown.body.avatarUrl);

    // Clearing still clears.
    const cleared = await api.call<Profile>('PATCH', '/v1/me', {
      token: owner.accessToken,
      body: { avatarUrl: null },
    });
    expect(cleared.status).toBe(200);
    expect(cleared.body.avatarUrl).toBeNull();
  });

  it('refuses a link that is too long once percent-encoded, naming it, and changes nothing', async () => {
    const owner = await registerUser(api);
    const long = `https://example.test/${'\u202E'.repeat(700)}`;
    const refused = await api.call('PATCH', '/v1/me', {
      token: owner.accessToken,
      body: { portfolioLinks: ['https://example.test/', long] },
    });
    expect(refused.status).toBe(400);
    expect(refused.body).toMatchObject({
      code: 'VALIDATION_FAILED',
      errors: [{ path: 'body.portfolioLinks.1' }],
    });
    const me = await api.get<Profile>('/v1/me', owner.accessToken);
    expect(me.body.workerProfile?.portfolioLinks).toEqual([]);
  });
});
