/**
 * web/src/outcome.ts and web/src/errors.ts in Node (review 20b):
 * - a command answered 2xx with a body that cannot be read (the SDK's BAD_REPLY: a captive portal's
 *   or a proxy's page, a server newer than the open page) may have been applied: its outcome is
 *   unknown and its Idempotency-Key is kept, so the same form again replays it instead of paying
 *   twice, and the message is the app's, not the SDK's developer text ("the answer is not JSON");
 * - an error of one entry of a list (`body.skills.1`) also marks the list's field (`skills`), saying
 *   which entry, and a socket request refused as invalid has its errors by field too.
 */
import { describe, expect, it } from 'vitest';
import { GigwireError } from '../../protocol/src/client/errors.js';
import { RestError } from '../../protocol/src/client/rest.js';
import { fieldErrors } from '../../web/src/errors.js';
import { failureOf, outcomeUnknown, RetryKeys, UNREACHABLE } from '../../web/src/outcome.js';

const unreadable = new RestError('BAD_REPLY', 'the answer is not JSON', {
  method: 'POST',
  path: '/v1/wallet/transfers',
  attempts: 1,
  idempotencyKey: 'key-1',
  status: 200,
});

describe('a command whose 2xx answer cannot be read', () => {
  it('may have been applied: the key is kept for the same form, and the app says so', () => {
    expect(outcomeUnknown(unreadable)).toBe(true);
    const keys = new RetryKeys();
    keys.failed('{"amount":500}', unreadable);
    expect(keys.keyFor('{"amount":500}')).toBe('key-1');
    const failure = failureOf(unreadable, 'command');
    expect(failure.message.startsWith(UNREACHABLE)).toBe(true);
    expect(failure.message).toContain('may have been applied');
    expect(failure.message).not.toContain('JSON');
    expect(failureOf(unreadable, 'read').message).toBe(UNREACHABLE);
  });
});

describe('field errors of list entries', () => {
  it('mark the list field too, saying which entry', () => {
    expect(
      fieldErrors([
        { path: 'body.title', message: 'must not be empty' },
        { path: 'body.skills.1', message: 'must be at most 50 characters' },
        { path: 'body.skills.3', message: 'must not be blank' },
      ]),
    ).toEqual({
      title: 'must not be empty',
      'skills.1': 'must be at most 50 characters',
      'skills.3': 'must not be blank',
      // The first wrong entry: the field shows one message.
      skills: 'entry 2: must be at most 50 characters',
    });
    // A whole-list error (too many) is the field's own, before any entry's.
    expect(
      fieldErrors([
        { path: 'body.skills', message: 'at most 30' },
        { path: 'body.skills.0', message: 'too long' },
      ]).skills,
    ).toBe('at most 30');
  });

  it('of a socket request refused as invalid are by field as well', () => {
    const refused = new GigwireError(
      'VALIDATION_FAILED',
      'invalid "jobs.watch" request: d.skills.0: too long',
      {
        details: {
          errors: [
            { path: 'd.skills.0', message: 'too long' },
            { path: 3, message: null },
          ],
        },
        requestType: 'jobs.watch',
      },
    );
    expect(failureOf(refused)).toEqual({
      message: 'Please correct the marked fields.',
      fields: { 'skills.0': 'too long', skills: 'entry 1: too long' },
    });
  });
});
