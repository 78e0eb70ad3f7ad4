/**
 * Review 20 (a user on a bad network): `options.signal` ends a REST call while its `accessToken()`
 * is still pending. A token source refreshing over a dead network may take minutes or never
 * settle; before, an abort then did nothing until it did (a Cancel button that stayed busy),
 * although the README promises that an abort ends the call, its waits included.
 */
import { describe, expect, it } from 'vitest';
import { createRestClient } from './rest.js';

const BID = '22222222-2222-4222-8222-222222222222';

function client(accessToken: () => Promise<string> | string) {
  const sent: string[] = [];
  const rest = createRestClient({
    baseUrl: 'http://api.test',
    accessToken,
    fetch: (async (input: string | URL | Request) => {
      sent.push(String(input));
      throw new TypeError('fetch failed');
    }) as typeof fetch,
    sleep: async () => undefined,
    newIdempotencyKey: () => 'key-1',
    retry: { attempts: 1 },
  });
  return { rest, sent };
}

/** The call's outcome, or 'pending' when it has not settled after a few turns of the loop. */
async function outcome(call: Promise<unknown>): Promise<unknown> {
  const settled = call.then(
    () => 'resolved',
    (error: unknown) => error,
  );
  return Promise.race([settled, new Promise((resolve) => setTimeout(() => resolve('pending'), 50))]);
}

describe('REST abort while the token is awaited (review 20)', () => {
  it('rejects with the abort reason at once, even if accessToken() never settles, and sends nothing', async () => {
    const { rest, sent } = client(() => new Promise<string>(() => undefined));
    const controller = new AbortController();
    const reason = new Error('user cancelled');
    const accepted = rest.acceptBid(BID, { ifMatch: 1, signal: controller.signal });
    await new Promise((resolve) => setTimeout(resolve, 5));
    controller.abort(reason);
    expect(await outcome(accepted)).toBe(reason);
    expect(sent).toEqual([]);
  });

  it('a read aborted during a slow token wait rejects too; a token source that throws is still TOKEN_UNAVAILABLE', async () => {
    const { rest } = client(() => new Promise<string>(() => undefined));
    const controller = new AbortController();
    const wallet = rest.wallet({ signal: controller.signal });
    controller.abort(new Error('left the page'));
    expect(await outcome(wallet)).toMatchObject({ message: 'left the page' });

    const throwing = client(() => {
      throw new Error('no session');
    });
    expect(await outcome(throwing.rest.wallet())).toMatchObject({ code: 'TOKEN_UNAVAILABLE' });
  });
});
