import { describe, expect, it } from 'vitest';
import { isPermanentSmtpRefusal } from './processor.js';

/** An error shaped as nodemailer makes it. */
const smtpError = (code: string, reply: string | undefined, command: string) =>
  Object.assign(new Error(`failed${reply === undefined ? '' : `: ${reply}`}`), {
    code,
    command,
    ...(reply === undefined ? {} : { response: reply, responseCode: Number(reply.slice(0, 3)) }),
  });

describe('which SMTP failures fail an email task for good', () => {
  it('a 5xx reply to the recipient or to the message', () => {
    expect(
      isPermanentSmtpRefusal(smtpError('EENVELOPE', '550 5.1.1 mailbox does not exist', 'RCPT TO')),
    ).toBe(true);
    expect(isPermanentSmtpRefusal(smtpError('EENVELOPE', '554 5.5.1 no valid recipients', 'DATA'))).toBe(
      true,
    );
    expect(isPermanentSmtpRefusal(smtpError('EMESSAGE', '552 5.3.4 message too big', 'DATA'))).toBe(true);
  });

  it('not a 4xx reply, a network error, a refused login or a refused sender (the operator fixes those)', () => {
    expect(isPermanentSmtpRefusal(smtpError('EENVELOPE', '451 4.3.0 try again later', 'RCPT TO'))).toBe(
      false,
    );
    expect(isPermanentSmtpRefusal(smtpError('EMESSAGE', '452 4.3.1 out of storage', 'DATA'))).toBe(false);
    expect(isPermanentSmtpRefusal(smtpError('EAUTH', '535 5.7.8 bad credentials', 'AUTH PLAIN'))).toBe(false);
    expect(isPermanentSmtpRefusal(smtpError('EENVELOPE', '550 5.7.1 sender rejected', 'MAIL FROM'))).toBe(
      false,
    );
    expect(isPermanentSmtpRefusal(smtpError('ECONNECTION', undefined, 'CONN'))).toBe(false);
    expect(isPermanentSmtpRefusal(smtpError('ETIMEDOUT', undefined, 'CONN'))).toBe(false);
    expect(isPermanentSmtpRefusal(smtpError('EENVELOPE', undefined, 'API'))).toBe(false);
    expect(isPermanentSmtpRefusal(new Error('boom'))).toBe(false);
  });
});
