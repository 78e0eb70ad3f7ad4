/**
 * Review 30: a keyed command whose first attempt got no answer (it may have been applied) and whose
 * call then gave up on something that settles nothing (a 429 with a long Retry-After, the token
 * source failing on the same bad network, a 409 "still in flight") ended with that last error
 * alone: nothing on it said the action may have gone through, so an app (the web app's money
 * screens) took it for a refusal, dropped the key, and the user's next press paid again under a
 * new key. `maybeApplied` now says so; a definite answer (any other 4xx) clears it.
 */
import { describe, expect, it } from 'vitest';
import { createRestClient, isRestError, type RestError } from './rest.js';

const USER = '44444444-4444-4444-8444-444444444444';

const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } });
const problem = (status: number, code: string, extra: Record<string, unknown> = {}) =>
  json(status, { type: 'about:blank', title: code, status, code, detail: `${code} happened`, ...extra });

type Step = Response | Error;

function client(steps: Step[], tokens: (() => string)[] = []) {
  const keys: (string | undefined)[] = [];
  const rest = createRestClient({
    baseUrl: 'http://api.test',
    accessToken: () => (tokens.shift() ?? (() => 'token'))(),
    fetch: async (_input, init) => {
      keys.push((init?.headers as Record<string, string> | undefined)?.['idempotency-key']);
      const step = steps.shift();
      if (step === undefined || step instanceof Error) throw step ?? new Error('script ran out');
      return step;
    },
    sleep: async () => undefined,
    random: () => 0.5,
    retry: { maxRetryAfterMs: 5_000 },
  });
  return { rest, keys };
}

const transfer = (rest: ReturnType<typeof createRestClient>) =>
  rest.transfer({ toUserId: USER, amount: 100 }).then(
    () => {
      throw new Error('expected a failure');
    },
    (error: unknown) => {
      if (!isRestError(error)) throw error;
      return error as RestError;
    },
  );

describe('maybeApplied: a keyed command that may have gone through says so (review 30)', () => {
  it('after a lost answer, then a 429 with a long Retry-After', async () => {
    // The 429's Retry-After (60 s) is over the 5 s waited for: thrown at once.
    const { rest, keys } = client([
      new TypeError('fetch failed'),
      json(429, { code: 'RATE_LIMITED', detail: 'slow down' }, { 'retry-after': '60' }),
    ]);
    const error = await transfer(rest);
    expect(error.status).toBe(429);
    expect(keys).toHaveLength(2);
    expect(error.idempotencyKey).toBe(keys[0]);
    expect(error.maybeApplied).toBe(true);
  });

  it('after a lost answer, then the token source failing', async () => {
    const { rest, keys } = client(
      [new TypeError('fetch failed')],
      [
        () => 'token',
        () => {
          throw new Error('refresh failed: offline');
        },
      ],
    );
    const error = await transfer(rest);
    expect(error.code).toBe('TOKEN_UNAVAILABLE');
    expect(error.idempotencyKey).toBe(keys[0]);
    expect(error.maybeApplied).toBe(true);
  });

  it('after a timeout, then 409 "still in flight" until the attempts run out', async () => {
    const inFlight = () => problem(409, 'CONFLICT', { idempotencyKey: 'k' });
    const { rest } = client([new TypeError('fetch failed'), inFlight(), inFlight(), inFlight(), inFlight()]);
    const error = await transfer(rest);
    expect(error.status).toBe(409);
    expect(error.maybeApplied).toBe(true);
  });

  it('not when nothing went out, nor after a definite refusal', async () => {
    const offline = client(
      [],
      [
        () => {
          throw new Error('offline');
        },
      ],
    );
    expect((await transfer(offline.rest)).maybeApplied).toBe(false);
    // The key had no stored answer (else this would be its replay): nothing was applied.
    const refused = client([new TypeError('fetch failed'), problem(422, 'INSUFFICIENT_FUNDS')]);
    expect((await transfer(refused.rest)).maybeApplied).toBe(false);
    const limited = client([json(429, { code: 'RATE_LIMITED' }, { 'retry-after': '60' })]);
    expect((await transfer(limited.rest)).maybeApplied).toBe(false);
    // No answer to the last attempt: as before, and flagged.
    const lost = client(Array.from({ length: 5 }, () => new TypeError('fetch failed')));
    const error = await transfer(lost.rest);
    expect(error.code).toBe('DISCONNECTED');
    expect(error.maybeApplied).toBe(true);
  });
});
