/**
 * The web app's pure helpers of web/src/outcome.ts (no browser needed; vitest does not collect
 * web/src, so they are tested here): what a failure says, when a command's outcome is unknown, the
 * Idempotency-Key kept per form content, and amounts typed in major units.
 */
import { describe, expect, it } from 'vitest';
import { RestError } from '../../protocol/src/client/rest.js';
import { ApiError } from '../../web/src/errors.js';
import {
  AMOUNT_HINT,
  amountOf,
  FormError,
  failureOf,
  isUnreachable,
  outcomeUnknown,
  parseAmount,
  RetryKeys,
  UNREACHABLE,
} from '../../web/src/outcome.js';

const rest = (status: number | undefined, key: string | undefined = 'k1', detail?: string) =>
  new RestError(
    status === undefined ? 'DISCONNECTED' : 'UNAVAILABLE',
    'the request failed on the network (it may have been applied)',
    {
      method: 'POST',
      path: '/v1/wallet/transfers',
      attempts: 5,
      idempotencyKey: key,
      ...(status === undefined ? {} : { status }),
      ...(detail === undefined
        ? {}
        : {
            problem: {
              type: 'about:blank',
              title: 'x',
              status: status ?? 0,
              code: 'CONFLICT',
              detail,
            } as never,
          }),
    },
  );

describe('failureOf', () => {
  it("says plainly that gigwire can't be reached: status 0, no answer, 502/503/504", () => {
    for (const error of [
      new ApiError(0, 'DISCONNECTED', 'The server cannot be reached. Check your connection.', {}),
      new ApiError(502, 'HTTP_ERROR', '502 Bad Gateway', {}),
      new ApiError(503, 'UNAVAILABLE', 'down', {}),
      new ApiError(504, 'HTTP_ERROR', '504 Gateway Timeout', {}),
      rest(undefined),
      rest(503),
    ]) {
      expect(isUnreachable(error)).toBe(true);
      // A read or a search changed nothing: no "it may have been applied".
      expect(failureOf(error)).toEqual({ message: UNREACHABLE, fields: {} });
      expect(failureOf(error, 'read').message).not.toMatch(/applied/);
      // A command may have been applied.
      expect(failureOf(error, 'command').message).toMatch(/^Can't reach gigwire\..*may have been applied/);
    }
  });

  it('never shows an error class name, and keeps the server detail and field errors', () => {
    const refused = new ApiError(403, 'FORBIDDEN', 'current password is wrong', {});
    expect(failureOf(refused, 'command').message).toBe('current password is wrong');
    expect(failureOf(refused).message).not.toMatch(/ApiError/);
    expect(failureOf(new ApiError(400, 'VALIDATION_FAILED', 'bad', { title: 'too short' }))).toEqual({
      message: 'Please correct the marked fields.',
      fields: { title: 'too short' },
    });
    expect(failureOf(rest(409, 'k', 'the contract changed'), 'command').message).toBe('the contract changed');
    expect(failureOf(new FormError({ amount: AMOUNT_HINT }))).toEqual({
      message: 'Please correct the marked fields.',
      fields: { amount: AMOUNT_HINT },
    });
  });
});

describe('outcomeUnknown', () => {
  it('is true without an answer and after a 5xx, false after a refusal (4xx)', () => {
    expect(outcomeUnknown(rest(undefined))).toBe(true);
    expect(outcomeUnknown(rest(500))).toBe(true);
    expect(outcomeUnknown(new ApiError(0, 'DISCONNECTED', 'x', {}))).toBe(true);
    expect(outcomeUnknown(rest(409))).toBe(false);
    expect(outcomeUnknown(new ApiError(422, 'X', 'x', {}))).toBe(false);
    expect(outcomeUnknown(new Error('x'))).toBe(false);
  });
});

describe('RetryKeys', () => {
  it('reuses the key of an unknown outcome for the same content only, and forgets it after an answer', () => {
    const keys = new RetryKeys();
    expect(keys.keyFor('a')).toBeUndefined();
    keys.failed('a', rest(undefined, 'key-a'));
    expect(keys.keyFor('a')).toBe('key-a');
    // The form changed: another action, a fresh key (the same key would be 422 on the server).
    expect(keys.keyFor('b')).toBeUndefined();
    // A 5xx keeps it too; a refusal forgets it (nothing was done).
    keys.failed('a', rest(503, 'key-a'));
    expect(keys.keyFor('a')).toBe('key-a');
    keys.failed('a', rest(409, 'key-a'));
    expect(keys.keyFor('a')).toBeUndefined();
    keys.failed('a', rest(undefined, 'key-2'));
    keys.done();
    expect(keys.keyFor('a')).toBeUndefined();
    // An error without a key (not a keyed command) keeps nothing.
    keys.failed('a', new ApiError(0, 'DISCONNECTED', 'x', {}));
    expect(keys.keyFor('a')).toBeUndefined();
  });
});

describe('amounts', () => {
  it('reads major units into minor units and refuses anything else with a hint', () => {
    expect(parseAmount('12.50')).toBe(1250);
    expect(parseAmount(' 12 ')).toBe(1200);
    expect(parseAmount('12.5')).toBe(1250);
    expect(parseAmount('12,05')).toBe(1205);
    expect(parseAmount('0.07')).toBe(7);
    for (const bad of ['abc', '', '12.505', '-5', '1e3', '12.', '.5', '1 000']) {
      expect(parseAmount(bad), bad).toBeUndefined();
    }
    expect(amountOf('3', 'amount')).toBe(300);
    expect(() => amountOf('abc', 'amount')).toThrow(FormError);
    try {
      amountOf('abc', 'budget.amount');
    } catch (error) {
      expect((error as FormError).fields).toEqual({ 'budget.amount': AMOUNT_HINT });
    }
  });
});
