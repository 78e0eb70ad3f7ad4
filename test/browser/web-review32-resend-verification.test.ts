/**
 * web/src in Node (review 32): the app had no way to ask for a new confirmation link
 * (POST /v1/auth/resend-verification). The profile's notice of an unconfirmed address now has one;
 * what it says after a 202, a 429 and a failure is `verificationResendNote`.
 */
import { describe, expect, it } from 'vitest';
import { answerError } from '../../web/src/errors.js';
import { UNREACHABLE, verificationResendNote } from '../../web/src/outcome.js';

const problem = (status: number, code: string) =>
  JSON.stringify({ type: 'about:blank', title: 'x', status, code, detail: 'raw server text' });

describe('"Send a new confirmation link" (review 32)', () => {
  it('says a link is on its way after the 202, without promising a mail', () => {
    const note = verificationResendNote('ann@example.test');
    expect(note.sent).toBe(true);
    expect(note.message).toContain('ann@example.test');
    expect(note.message).toContain('one a day');
  });

  it('says how long to wait after a 429', () => {
    const note = verificationResendNote('a@b.test', answerError(429, problem(429, 'RATE_LIMITED'), '42'));
    expect(note).toEqual({ sent: false, message: 'Too many requests: try again in 42 s.' });
  });

  it('says the connection is the problem when no answer came', () => {
    const note = verificationResendNote('a@b.test', answerError(0, ''));
    expect(note).toEqual({ sent: false, message: UNREACHABLE });
  });
});
