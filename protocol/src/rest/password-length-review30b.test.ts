/**
 * A new password's 10-character minimum counts characters of the password as it is hashed (NFC,
 * passwords.ts): five accented letters sent decomposed ("e" + U+0301, 10 code points) are a
 * 5-character password and were taken. The value itself is left as sent (the hasher normalises it).
 */
import { describe, expect, it } from 'vitest';
import { NewPassword, RegisterRequest } from './auth.js';

describe('NewPassword length (review 30)', () => {
  it('counts characters in NFC, as the password is hashed', () => {
    const fiveDecomposed = 'e\u0301a\u0300o\u0302u\u0308i\u0301';
    expect([...fiveDecomposed]).toHaveLength(10);
    const short = NewPassword.safeParse(fiveDecomposed);
    expect(short.success).toBe(false);
    expect(short.error?.issues.map((issue) => issue.message)).toEqual(['must be at least 10 characters']);
    expect(
      RegisterRequest.safeParse({
        username: 'accents30',
        email: 'a30@example.test',
        password: fiveDecomposed,
      }).success,
    ).toBe(false);
    // Ten decomposed letters are ten characters, and the value stays as sent.
    const ten = fiveDecomposed.repeat(2);
    expect(NewPassword.parse(ten)).toBe(ten);
    // A short one gets one message, not two.
    expect(NewPassword.safeParse('short').error?.issues).toHaveLength(1);
  });
});
