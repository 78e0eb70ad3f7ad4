/**
 * web/src in Node (review 31): a background read (the nav's balance, the bell's unread count)
 * refused 429 or 503 with a Retry-After longer than the app's own backoff was asked again after 1,
 * 2, 4, 8 and 16 s regardless, each time refused again by the limit it was over. `retryDelay` now
 * keeps to the server's wait, read from the app's own calls (api.ts `call`: the header, through errors.ts `answerError`) and from the
 * SDK's reads (the problem's `retryAfterS`, thrown unwaited beyond the app's 5 s).
 */
import { describe, expect, it } from 'vitest';
import { createRestClient } from '../../protocol/src/client/rest.js';
import { answerError } from '../../web/src/errors.js';
import { isPassing, retryDelay } from '../../web/src/outcome.js';

const limited = () =>
  Response.json(
    {
      type: 'about:blank',
      title: 'Too many',
      status: 429,
      code: 'RATE_LIMITED',
      detail: 'slow down',
      retryAfterS: 30,
    },
    { status: 429, headers: { 'retry-after': '30' } },
  );

describe('a background read refused with a Retry-After (review 31)', () => {
  it("waits the server's 30 s after the app's own call (the bell's count)", async () => {
    // As api.ts `call` makes the error of an answer (errors.ts `answerError`, with its Retry-After).
    const answer = limited();
    const error = answerError(answer.status, await answer.text(), answer.headers.get('retry-after'));
    expect(isPassing(error)).toBe(true);
    expect(retryDelay(1, error)).toBeGreaterThanOrEqual(30_000);
    // Nothing asked: the app's own backoff.
    expect(retryDelay(1, new Error('x'))).toBeLessThanOrEqual(1_000);
  });

  it("waits the server's 30 s after the SDK's read (the nav's balance)", async () => {
    const rest = createRestClient({
      baseUrl: 'http://app.test',
      accessToken: () => 'token',
      fetch: async () => limited(),
      retry: { maxRetryAfterMs: 5_000 },
    });
    const error = await rest.wallet().catch((e: unknown) => e);
    expect(isPassing(error)).toBe(true);
    expect(retryDelay(1, error)).toBeGreaterThanOrEqual(30_000);
  });
});
