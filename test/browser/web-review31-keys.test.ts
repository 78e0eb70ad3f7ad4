/**
 * web/src/outcome.ts in Node (review 31): a money command whose first attempt got no answer keeps
 * its Idempotency-Key whatever stops the tries after it, unless the server refused that key itself.
 * - A 401 after the lost answer, then the session's refresh failing on the same bad network:
 *   keyedOnce401 threw the refresh's error, which carries no key, and the form dropped it.
 * - A 401 after the lost answer, the refresh working, then a 429 "retry in 30 s": the second call's
 *   error said nothing was applied (its own attempts saw none go astray), and the form dropped it.
 * - The form sent again with its kept key and stopped by a 429 or a failed refresh before anything
 *   went out: the key was dropped, and the third press paid again under a new one.
 * The SDK's REST client is configured as api.ts configures it; its fetch is scripted.
 */
import { describe, expect, it } from 'vitest';
import { ApiError } from '../../web/src/errors.js';
import { keyedOnce401, outcomeUnknown, RetryKeys, withKey } from '../../web/src/outcome.js';
import {
  lostAnswer as lost,
  problemAnswer as problem,
  scriptedRest as rest,
} from '../support/scripted-rest.js';

const USER = '44444444-4444-4444-8444-444444444444';

const offline = () => new ApiError(0, 'DISCONNECTED', 'The server cannot be reached.', {});
const form = '{"toUserId":"…","amount":100}';

describe('a money command that may have gone through keeps its key past a 401 (review 31)', () => {
  it('when the refresh after the 401 fails offline', async () => {
    const { client, keys } = rest([lost, () => problem(401, 'UNAUTHENTICATED')], async () => 'token-1');
    const retryKeys = new RetryKeys();
    const error = await keyedOnce401(
      withKey(retryKeys.keyFor(form)),
      (options) => client.transfer({ toUserId: USER, amount: 100 }, options),
      async () => {
        throw offline();
      },
    ).catch((e: unknown) => e);
    expect(keys).toHaveLength(2);
    expect(outcomeUnknown(error)).toBe(true);
    retryKeys.failed(form, error);
    expect(retryKeys.keyFor(form)).toBe(keys[0]);
  });

  it('when the call after the refresh is refused 429 with a long Retry-After', async () => {
    const { client, keys } = rest(
      [
        lost,
        () => problem(401, 'UNAUTHENTICATED'),
        () => problem(429, 'RATE_LIMITED', { 'retry-after': '30' }),
      ],
      async () => 'token',
    );
    const retryKeys = new RetryKeys();
    const error = await keyedOnce401(
      withKey(retryKeys.keyFor(form)),
      (options) => client.transfer({ toUserId: USER, amount: 100 }, options),
      async () => undefined,
    ).catch((e: unknown) => e);
    expect(keys).toHaveLength(3);
    expect(outcomeUnknown(error)).toBe(true);
    retryKeys.failed(form, error);
    expect(retryKeys.keyFor(form)).toBe(keys[0]);
  });

  it('but not after a refusal of the key itself (a 403 of the call after the refresh)', async () => {
    const { client } = rest(
      [lost, () => problem(401, 'UNAUTHENTICATED'), () => problem(403, 'FORBIDDEN')],
      async () => 'token',
    );
    const retryKeys = new RetryKeys();
    const error = await keyedOnce401(
      undefined,
      (options) => client.transfer({ toUserId: USER, amount: 100 }, options),
      async () => undefined,
    ).catch((e: unknown) => e);
    expect(outcomeUnknown(error)).toBe(false);
    retryKeys.failed(form, error);
    expect(retryKeys.keyFor(form)).toBeUndefined();
  });
});

describe('the kept key of a form sent again (review 31)', () => {
  it('stays after a 429 or a failed refresh that sent nothing; goes for other content', async () => {
    const retryKeys = new RetryKeys();
    let tokenFails = false;
    const { client, keys } = rest(
      [lost, () => problem(429, 'RATE_LIMITED', { 'retry-after': '30' })],
      async () => {
        if (tokenFails) throw offline();
        return 'token';
      },
      1,
    );
    const send = () =>
      client
        .transfer({ toUserId: USER, amount: 100 }, withKey(retryKeys.keyFor(form)))
        .catch((e: unknown) => e);
    // First press: the answer is lost.
    const first = await send();
    expect(outcomeUnknown(first)).toBe(true);
    retryKeys.failed(form, first);
    const key = retryKeys.keyFor(form);
    expect(key).toBe(keys[0]);
    // Second press: a 429 asking for 30 s, beyond what the app waits.
    retryKeys.failed(form, await send());
    expect(retryKeys.keyFor(form)).toBe(key);
    // Third press: the session's refresh fails offline, nothing is sent.
    tokenFails = true;
    retryKeys.failed(form, await send());
    expect(keys).toEqual([key, key]);
    expect(retryKeys.keyFor(form)).toBe(key);
    // Another form content is another action.
    retryKeys.failed('{"other":1}', new ApiError(0, 'DISCONNECTED', 'offline', {}));
    expect(retryKeys.keyFor(form)).toBeUndefined();
  });

  it('goes after a refusal of the key itself', async () => {
    const retryKeys = new RetryKeys();
    const { client, keys } = rest([lost, () => problem(422, 'INSUFFICIENT_FUNDS')], async () => 'token', 1);
    const send = () =>
      client
        .transfer({ toUserId: USER, amount: 100 }, withKey(retryKeys.keyFor(form)))
        .catch((e: unknown) => e);
    retryKeys.failed(form, await send());
    expect(retryKeys.keyFor(form)).toBe(keys[0]);
    retryKeys.failed(form, await send());
    expect(retryKeys.keyFor(form)).toBeUndefined();
  });
});
