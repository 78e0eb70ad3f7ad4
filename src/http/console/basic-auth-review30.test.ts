/**
 * Review 30: an operator who puts HTTP Basic auth in front of /admin/ (a proxy's htpasswd) makes the
 * browser send `Authorization: Basic …` with every console request, cross-site form posts included.
 * Only a Bearer header is a credential of the console: the Basic one hid the admin's cookie (the
 * console redirected a signed-in admin to the sign-in form forever) and waived the same-site check.
 */
import { describe, expect, it } from 'vitest';
import { restAppWithStubs } from '../app.testing.js';

const COOKIE_VALUE = 'a'.repeat(43);
const BASIC = 'Basic b3BlcmF0b3I6aHVudGVyMg==';

const consoleApp = () =>
  restAppWithStubs({
    console: {
      sessions: {
        check: async (token: string | undefined) =>
          token === COOKIE_VALUE ? { kind: 'admin', userId: 'u', sessionId: 's' } : { kind: 'none' },
        signIn: async () => ({ token: COOKIE_VALUE, maxAgeS: 60 }),
        signOut: async () => undefined,
      },
      auth: {
        authenticate: async () => {
          throw new Error('no Bearer token is sent here');
        },
      },
      queues: [],
    },
  });

describe('the console behind a proxy with HTTP Basic auth (review 30)', () => {
  it("answers a signed-in admin's page and API by the cookie, not with the sign-in form", async () => {
    const app = await consoleApp();
    try {
      const headers = { cookie: `gigwire_console=${COOKIE_VALUE}`, authorization: BASIC };
      const page = await app.inject({ method: 'GET', url: '/admin/queues', headers });
      expect(page.statusCode).toBe(200);
      expect(page.headers.location).toBeUndefined();
      const api = await app.inject({ method: 'GET', url: '/admin/queues/api/queues', headers });
      expect(api.statusCode).toBe(200);
    } finally {
      await app.close();
    }
  });

  it('refuses a cross-site sign-in post although the browser attached the Basic credentials', async () => {
    const app = await consoleApp();
    try {
      const refused = await app.inject({
        method: 'POST',
        url: '/admin/sign-in',
        payload: 'login=admin&password=secret',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          authorization: BASIC,
          'sec-fetch-site': 'cross-site',
        },
      });
      expect(refused.statusCode).toBe(403);
      expect(refused.json()).toMatchObject({ code: 'FORBIDDEN' });
      expect(refused.headers['set-cookie']).toBeUndefined();
    } finally {
      await app.close();
    }
  });
});
