/**
 * web/src in Node (review 32): the app's own calls read only an integer `Retry-After`; a
 * `Retry-After: 2.5` was ignored (the background read asked again on its own backoff). It is read
 * as the SDK reads it now: a number is seconds, rounded up.
 */
import { describe, expect, it } from 'vitest';
import { answerError } from '../../web/src/errors.js';

describe("the app's Retry-After (review 32)", () => {
  it('reads Retry-After: 2.5 as 3 s', () => {
    const body = JSON.stringify({ type: 'about:blank', title: 'x', status: 429, code: 'RATE_LIMITED' });
    expect(answerError(429, body, '2.5').retryAfterMs).toBe(3_000);
    expect(answerError(429, body, '-1').retryAfterMs).toBeUndefined();
  });
});
