/**
 * web/src/api.ts in Node (review 32): a `POST /v1/auth/refresh` whose 200 answer was cut off midway
 * (a dropped mobile connection) was not asked again at once, though its token was spent: the next
 * refresh, later, presented a spent token past the server's reuse grace and ended the session. A
 * body that stops halfway is no answer, retried like one.
 */
import { describe, expect, it, vi } from 'vitest';
import { auth } from '../../web/src/api.js';

const PAIR = { accessToken: 'a', refreshToken: 'r2', connectToken: 'c', tokenType: 'Bearer', expiresIn: 900 };

/** A 200 whose body stops after its first bytes. */
const cutOff = () =>
  new Response(
    new ReadableStream({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('{"accessToken":"a'));
        controller.error(new TypeError('network error'));
      },
    }),
    { status: 200, headers: { 'content-type': 'application/json' } },
  );

describe('a refresh answer cut off (review 32)', () => {
  it('asks again at once with the same token and keeps the new pair', async () => {
    const bodies: unknown[] = [];
    const answers = [cutOff(), Response.json(PAIR)];
    vi.stubGlobal('fetch', async (_url: string, init: RequestInit) => {
      bodies.push(JSON.parse(String(init.body)));
      return answers.shift() as Response;
    });
    await expect(auth.refresh('r1')).resolves.toEqual(PAIR);
    expect(bodies).toEqual([{ refreshToken: 'r1' }, { refreshToken: 'r1' }]);
  });
});
