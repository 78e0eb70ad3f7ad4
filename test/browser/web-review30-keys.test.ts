/**
 * web/src/outcome.ts in Node (review 30): a money command whose first attempt got no answer (it may
 * have been applied) keeps its Idempotency-Key for the same form whatever ends the call afterwards.
 * - The session's refresh failing on the same bad network (the SDK's TOKEN_UNAVAILABLE) read as
 *   "nothing sent": the key was dropped, and pressing "Send money" again paid twice under a new key.
 * - A 401 on a later attempt: api.ts refreshed and called again with a new key (the same result).
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
const transferred = { transaction: { id: '42', toUserId: USER, amount: 100, note: null } };

describe('a money command that may have gone through keeps its key (review 30)', () => {
  it("after a lost answer and the session's refresh failing offline", async () => {
    let asked = 0;
    const { client, keys } = rest([lost], async () => {
      asked += 1;
      // The token was about to expire: the refresh of the second attempt finds no network.
      if (asked > 1) throw new ApiError(0, 'DISCONNECTED', 'The server cannot be reached.', {});
      return 'token-1';
    });
    const form = '{"toUserId":"…","amount":100}';
    const retryKeys = new RetryKeys();
    const error = await client
      .transfer({ toUserId: USER, amount: 100 }, withKey(retryKeys.keyFor(form)))
      .catch((e: unknown) => e);
    expect(keys).toHaveLength(1);
    expect(outcomeUnknown(error)).toBe(true);
    retryKeys.failed(form, error);
    // The same form again: the same key, so the server replays the first transfer if it happened.
    expect(retryKeys.keyFor(form)).toBe(keys[0]);
  });

  it('after a lost answer and a 401: the call made after the refresh sends the same key', async () => {
    let token = 'token-1';
    const { client, keys } = rest(
      [lost, () => problem(401, 'UNAUTHENTICATED'), () => Response.json(transferred, { status: 201 })],
      async () => token,
    );
    const sent = await keyedOnce401(
      undefined,
      (options) => client.transfer({ toUserId: USER, amount: 100 }, options),
      async () => {
        token = 'token-2';
      },
    );
    expect(sent.transaction.id).toBe('42');
    expect(token).toBe('token-2');
    expect(keys).toHaveLength(3);
    expect(new Set(keys).size).toBe(1);
  });
});
