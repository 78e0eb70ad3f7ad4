/**
 * argon2id at OWASP's parameters (19 MiB, t=2, p=1). Verification against a dummy hash when the
 * account does not exist keeps "unknown user" and "wrong password" equally slow.
 *
 * Passwords are hashed in Unicode NFC (as RFC 8265's OpaqueString profile and NIST SP 800-63B ask):
 * the same typed password arrives composed ("é", U+00E9) from one keyboard and decomposed ("e" +
 * U+0301) from another or from a paste, and without this a password set on one device was "wrong"
 * on the other. A hash made before (of the password exactly as sent) is still verified against the
 * password as sent when its NFC form does not match, so no existing account is locked out.
 *
 * Each hash or verification costs ~20–40 ms of a core and 19 MiB while it runs, on libuv's thread
 * pool (which also serves compression, DNS and file work). Register and login are limited per IP,
 * but a few addresses at that limit could keep the pool busy and every request behind it waiting: so
 * at most `atOnce` run per process, at most `waitingMax` wait in line, and beyond that the request
 * is refused UNAVAILABLE (503 with Retry-After) at once — for a known and an unknown account alike,
 * so the refusal says nothing about which exists.
 */
import { randomUUID } from 'node:crypto';
import { hash, parseOptions, verify } from '@node-rs/argon2';
import { AppError } from '../../platform/errors.js';

const PARAMETERS = { memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;

/** Hashes and verifications running at once per process (libuv's pool has 4 threads by default). */
export const PASSWORD_HASHES_AT_ONCE = 2;
/** Hashes and verifications waiting for one of those: ~1–2 s of work on this machine. */
export const PASSWORD_HASHES_WAITING_MAX = 64;

/** Runs tasks at most `atOnce` at a time with at most `waitingMax` waiting; refuses more. */
function hashSlots(atOnce: number, waitingMax: number) {
  let running = 0;
  const waiting: (() => void)[] = [];
  const release = () => {
    const next = waiting.shift();
    if (next === undefined) running -= 1;
    else next();
  };
  return async <T>(task: () => Promise<T>): Promise<T> => {
    if (running < atOnce) running += 1;
    else if (waiting.length >= waitingMax) {
      throw new AppError(
        'UNAVAILABLE',
        'too many sign-ins and sign-ups at once on this server; try again in a moment',
        { details: { retryAfterS: 1 } },
      );
    } else await new Promise<void>((start) => waiting.push(start));
    try {
      return await task();
    } finally {
      release();
    }
  };
}

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

export function createPasswordHasher(
  limits: { readonly atOnce?: number; readonly waitingMax?: number } = {},
): PasswordHasher {
  const inSlot = hashSlots(
    limits.atOnce ?? PASSWORD_HASHES_AT_ONCE,
    limits.waitingMax ?? PASSWORD_HASHES_WAITING_MAX,
  );
  // Hash of a random password nobody knows, made at first need.
  let dummyHash: Promise<string> | undefined;
  const hashPassword = (password: string) => inSlot(() => hash(password.normalize('NFC'), PARAMETERS));
  const matches = (storedHash: string, password: string) =>
    inSlot(() => verify(storedHash, password).catch(() => false));
  return {
    hash: hashPassword,
    verify: async (storedHash, password) => {
      const normal = password.normalize('NFC');
      if (storedHash === undefined) {
        // Forgotten if it failed (refused while the node was busy): made again at the next need.
        dummyHash ??= hashPassword(randomUUID()).catch((error: unknown) => {
          dummyHash = undefined;
          throw error;
        });
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
