/**
 * argon2id at OWASP's parameters (19 MiB, t=2, p=1). Verification against a dummy hash when the
 * account does not exist keeps "unknown user" and "wrong password" equally slow.
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
}

export function createPasswordHasher(): PasswordHasher {
  // Hash of a random password nobody knows, made at first need.
  let dummyHash: Promise<string> | undefined;
  const hashPassword = (password: string) => hash(password, PARAMETERS);
  return {
    hash: hashPassword,
    verify: async (storedHash, password) => {
      if (storedHash === undefined) {
        dummyHash ??= hashPassword(randomUUID());
        await verify(await dummyHash, password).catch(() => false);
        return false;
      }
      return verify(storedHash, password).catch(() => false);
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
