/**
 * web/src/outcome.ts in Node (review 30c): a read through the SDK's REST client that fails because
 * the session's token could not be had (its refresh got no answer: TOKEN_UNAVAILABLE) is passing,
 * as the same failure of a read made with api.ts's own `call` is (the refresh's status-0 ApiError).
 * Before, it was not: the nav's balance read (app.tsx) was not tried again, and the balance stayed
 * missing (or stale) until the next connect. A refused refresh stays final (the session ends).
 * The SDK's REST client is configured as api.ts configures it; its token source is scripted.
 */
import { describe, expect, it, vi } from 'vitest';
import { createRestClient } from '../../protocol/src/client/rest.js';
import { ApiError } from '../../web/src/errors.js';
import { isPassing } from '../../web/src/outcome.js';

/** `GET /v1/wallet` through the SDK's REST client whose token source fails with `refreshError`. */
async function walletReadWhenRefreshFails(refreshError: unknown): Promise<unknown> {
  const fetch = vi.fn(async () => Response.json({ available: 0, currency: 'EUR' }));
  const client = createRestClient({
    baseUrl: 'http://app.test',
    accessToken: async () => {
      throw refreshError;
    },
    fetch: fetch as unknown as typeof globalThis.fetch,
    retry: { maxRetryAfterMs: 5_000, baseDelayMs: 1 },
  });
  const error = await client.wallet().catch((e: unknown) => e);
  expect(fetch).not.toHaveBeenCalled();
  expect(error).toMatchObject({ code: 'TOKEN_UNAVAILABLE' });
  return error;
}

describe('a read failing because the token could not be had (review 30c)', () => {
  it('is passing when the refresh got no answer, or a 5xx / 429', async () => {
    const offline = new ApiError(0, 'DISCONNECTED', 'The server cannot be reached.', {});
    expect(isPassing(offline)).toBe(true);
    expect(isPassing(await walletReadWhenRefreshFails(offline))).toBe(true);
    expect(isPassing(await walletReadWhenRefreshFails(new ApiError(503, 'UNAVAILABLE', 'x', {})))).toBe(true);
    expect(isPassing(await walletReadWhenRefreshFails(new ApiError(429, 'RATE_LIMITED', 'x', {})))).toBe(
      true,
    );
  });

  it('is passing when the refresh did not answer within the timeout', async () => {
    const client = createRestClient({
      baseUrl: 'http://app.test',
      // A refresh over a dead network that never settles.
      accessToken: () => new Promise<string>(() => undefined),
      fetch: (async () => Response.json({})) as unknown as typeof globalThis.fetch,
      timeoutMs: 5,
    });
    const error = await client.wallet().catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'TOKEN_UNAVAILABLE' });
    expect(isPassing(error)).toBe(true);
  });

  it('is not passing when the refresh was refused or the tab is signed out', async () => {
    const refused = new ApiError(401, 'UNAUTHENTICATED', 'The session has ended.', {});
    expect(isPassing(await walletReadWhenRefreshFails(refused))).toBe(false);
    const signedOut = new ApiError(401, 'SIGNED_OUT', 'You are signed out.', {});
    expect(isPassing(await walletReadWhenRefreshFails(signedOut))).toBe(false);
  });
});
