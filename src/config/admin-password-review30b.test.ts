/**
 * Review 30: ADMIN_PASSWORD's 10-character minimum counted the value as given, not as it is hashed
 * (NFC, passwords.ts): five accented letters written decomposed were a 5-character admin password.
 */
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './index.js';

const load = (password: string) =>
  loadConfig(
    { ADMIN_EMAIL: 'admin@example.test', ADMIN_PASSWORD: password },
    { cwd: '/srv/gigwire', isRoot: false, stdoutIsTty: false, pid: 1 },
  );

describe('ADMIN_PASSWORD length (review 30)', () => {
  it('counts characters in NFC, as the password is hashed', () => {
    const fiveDecomposed = 'e\u0301a\u0300o\u0302u\u0308i\u0301';
    expect(() => load(fiveDecomposed)).toThrow(ConfigError);
    expect(() => load(fiveDecomposed)).toThrow(/ADMIN_PASSWORD must be 10 to 128 characters/);
    expect(() => load(fiveDecomposed.repeat(2))).not.toThrow();
  });
});
