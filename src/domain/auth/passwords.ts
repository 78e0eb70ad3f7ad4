/**
 * argon2id at OWASP's parameters (19 MiB, t=2, p=1). Verification against a dummy hash when the
 * account does not exist keeps "unknown user" and "wrong password" equally slow.
 *
 * Passwords are hashed in Unicode NFC (as RFC 8265's OpaqueString profile and NIST SP 800-63B ask):
 * the same typed password arrives composed ("é", U+00E9) from one keyboard and decomposed ("e" +
 * U+0301) from another or from a paste, and without this a password set on one device was "wrong"
 * on the other. A hash made before (of the password exactly as sent) is still verified against the
 * password as sent when its NFC form does not match, so no existing account is locked out.
 */
import { randomUUID } from 'node:crypto';
import { hash, parseOptions, verify } from '@node-rs/argon2';

const PARAMETERS = { memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;

export interface PasswordHasher {
  readonly hash: (password: string) => Promise<string>;
  /** Verifies against the stored hash, or burns the same time against a dummy when there is none. */
  readonly verify: (storedHash: string | undefined, password: string) => Promise<boolean>;
  /** True when a stored hash is weaker than today's parameters (rehashed on the next login). */
  readonly needsRehash: (storedHash: string) => boolean;
  /**
   * For a password `verify` accepted: whether the hash was made before normalisation, of this
   * password as sent (not NFC), so that only this form of it matches (rehashed on the next login:
   * then the password works from every keyboard). Costs a verification only for a password sent
   * not in NFC. Optional: a hasher without it (a test's wrapper) never asks for that rehash.
   */
  readonly isUnnormalized?: (storedHash: string, password: string) => Promise<boolean>;
}

export function createPasswordHasher(): PasswordHasher {
  // Hash of a random password nobody knows, made at first need.
  let dummyHash: Promise<string> | undefined;
  const hashPassword = (password: string) => hash(password.normalize('NFC'), PARAMETERS);
  const matches = (storedHash: string, password: string) => verify(storedHash, password).catch(() => false);
  return {
    hash: hashPassword,
    verify: async (storedHash, password) => {
      const normal = password.normalize('NFC');
      if (storedHash === undefined) {
        dummyHash ??= hashPassword(randomUUID());
        // As many verifications as an existing account's wrong password costs (below).
        await matches(await dummyHash, normal);
        if (normal !== password) await matches(await dummyHash, password);
        return false;
      }
      if (await matches(storedHash, normal)) return true;
      // A hash made before passwords were normalised, of a password sent not in NFC.
      return normal !== password && matches(storedHash, password);
    },
    isUnnormalized: async (storedHash, password) => {
      const normal = password.normalize('NFC');
      return normal !== password && !(await matches(storedHash, normal));
    },
    needsRehash: (storedHash) => {
      try {
        const options = parseOptions(storedHash);
        return (
          (options.memoryCost ?? 0) < PARAMETERS.memoryCost || (options.timeCost ?? 0) < PARAMETERS.timeCost
        );
      } catch {
        return true;
      }
    },
  };
}
