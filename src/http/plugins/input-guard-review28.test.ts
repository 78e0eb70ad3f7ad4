import { afterEach, describe, expect, it } from 'vitest';
import { signedInRestApp } from '../app.testing.js';

const USER = '00000000-0000-4000-8000-000000000001';
const restApp = () => signedInRestApp(USER);

let app: Awaited<ReturnType<typeof restApp>> | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

const patchMe = (contentType: string, payload: string | Buffer) =>
  app?.inject({
    method: 'PATCH',
    url: '/v1/me',
    headers: { authorization: 'Bearer token', 'content-type': contentType },
    payload,
  });

describe('a JSON body labelled with a charset', () => {
  it('is 415 UNSUPPORTED_MEDIA_TYPE naming the charset when it is not UTF-8', async () => {
    app = await restApp();
    const cases: [string, string, Buffer][] = [
      ['application/json; charset=utf-16', 'utf-16', Buffer.from('{"displayName":"x"}', 'utf16le')],
      ['application/json;charset="UTF-16LE"', 'utf-16le', Buffer.from('{"displayName":"x"}', 'utf16le')],
      ['application/json; charset=iso-8859-1', 'iso-8859-1', Buffer.from('{"displayName":"é"}', 'latin1')],
    ];
    for (const [contentType, charset, payload] of cases) {
      const answer = await patchMe(contentType, payload);
      expect(answer?.statusCode, contentType).toBe(415);
      expect(answer?.headers['content-type'], contentType).toMatch(/^application\/problem\+json/);
      expect(answer?.json(), contentType).toMatchObject({ code: 'UNSUPPORTED_MEDIA_TYPE', charset });
    }
  });

  it('is read as before when the charset is UTF-8 or US-ASCII', async () => {
    app = await restApp();
    for (const contentType of [
      'application/json; charset=utf-8',
      'application/json; charset="UTF-8"',
      'application/json;charset=us-ascii',
    ]) {
      const answer = await patchMe(contentType, '{"displayName":"x"}');
      // Past the parser: the (empty) users service is reached, not a 4xx about the body.
      expect(answer?.statusCode, contentType).not.toBe(415);
      expect(answer?.statusCode, contentType).not.toBe(400);
    }
  });
});
