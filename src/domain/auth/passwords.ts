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
 * so the refusal says nothing about which exists. That line is shared fairly between clients: one
 * client network holds at most PASSWORD_HASHES_PER_SOURCE_MAX (config PASSWORD_HASHES_PER_IP) of it (more is refused RATE_LIMITED,
 * 429, for that network only), and the waiting start one network at a time in turn.
 */
import { randomUUID } from 'node:crypto';
import { hash, parseOptions, verify } from '@node-rs/argon2';
import { AppError } from '../../platform/errors.js';

const PARAMETERS = { memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;

/** Hashes and verifications running at once per process (libuv's pool has 4 threads by default). */
export const PASSWORD_HASHES_AT_ONCE = 2;
/** Hashes and verifications waiting for one of those: ~1–2 s of work on this machine. */
export const PASSWORD_HASHES_WAITING_MAX = 64;
/**
 * Hashes and verifications one client network (`clientNetwork`: an IPv4 address or an IPv6 /64)
 * may have running or waiting at once: an eighth of the line, so one source flooding logins or
 * registrations (REST allows it hundreds a minute, and correct passwords are never throttled) takes
 * at most this share and the rest of the line stays open to everyone else (review 21).
 */
export const PASSWORD_HASHES_PER_SOURCE_MAX = 8;

/** The slot key of work no client asked for directly (an operator's command); never capped alone. */
const NO_SOURCE = Symbol('no source');

/**
 * Runs tasks at most `atOnce` at a time with at most `waitingMax` waiting; refuses more. A source
 * (client network) holding `perSourceMax` running or waiting is refused on its own (RATE_LIMITED)
 * while others still get in, and the waiting are started one source at a time in turn (round
 * robin), so a source with many waiting does not make a newcomer wait behind all of them.
 */
function hashSlots(atOnce: number, waitingMax: number, perSourceMax: number) {
  let running = 0;
  let waitingCount = 0;
  /** Waiting starts by source, in turn order (a Map keeps insertion order: the next turn first). */
  const waiting = new Map<string | symbol, (() => void)[]>();
  /** Running and waiting tasks by source. */
  const held = new Map<string | symbol, number>();
  const release = () => {
    const turn = waiting.entries().next();
    if (turn.done === true) {
      running -= 1;
      return;
    }
    const [source, queue] = turn.value;
    const start = queue.shift();
    waiting.delete(source);
    // To the back of the turns: every other source waiting starts one before this one's next.
    if (queue.length > 0) waiting.set(source, queue);
    waitingCount -= 1;
    start?.();
  };
  return async <T>(task: () => Promise<T>, source: string | symbol = NO_SOURCE): Promise<T> => {
    const mine = held.get(source) ?? 0;
    if (source !== NO_SOURCE && mine >= perSourceMax) {
      throw new AppError(
        'RATE_LIMITED',
        'too many sign-ins and sign-ups at once from your network; try again',
        {
          details: { retryAfterS: 1 },
        },
      );
    }
    const startNow = running < atOnce;
    if (!startNow && waitingCount >= waitingMax) {
      throw new AppError(
        'UNAVAILABLE',
        'too many sign-ins and sign-ups at once on this server; try again in a moment',
        { details: { retryAfterS: 1 } },
      );
    }
    held.set(source, mine + 1);
    try {
      if (startNow) running += 1;
      else {
        waitingCount += 1;
        // Started by `release`, which hands over the running slot it frees (never rejects).
        await new Promise<void>((start) => {
          const queue = waiting.get(source);
          if (queue === undefined) waiting.set(source, [start]);
          else queue.push(start);
        });
      }
      return await task();
    } finally {
      const left = (held.get(source) ?? 1) - 1;
      if (left > 0) held.set(source, left);
      else held.delete(source);
      release();
    }
  };
}

/**
 * `source`: the client network the work is done for (`clientNetwork` of the request's IP), which
 * may hold at most PASSWORD_HASHES_PER_SOURCE_MAX of the slots (else RATE_LIMITED); omitted for
 * work no client asks for directly (an operator's command), which is not capped on its own.
 */
export interface PasswordHasher {
  readonly hash: (password: string, source?: string) => Promise<string>;
  /** Verifies against the stored hash, or burns the same time against a dummy when there is none. */
  readonly verify: (storedHash: string | undefined, password: string, source?: string) => Promise<boolean>;
  /** True when a stored hash is weaker than today's parameters (rehashed on the next login). */
  readonly needsRehash: (storedHash: string) => boolean;
  /**
   * For a password `verify` accepted: whether the hash was made before normalisation, of this
   * password as sent (not NFC), so that only this form of it matches (rehashed on the next login:
   * then the password works from every keyboard). Costs a verification only for a password sent
   * not in NFC. Optional: a hasher without it (a test's wrapper) never asks for that rehash.
   */
  readonly isUnnormalized?: (storedHash: string, password: string, source?: string) => Promise<boolean>;
}

export function createPasswordHasher(
  limits: { readonly atOnce?: number; readonly waitingMax?: number; readonly perSourceMax?: number } = {},
): PasswordHasher {
  const inSlot = hashSlots(
    limits.atOnce ?? PASSWORD_HASHES_AT_ONCE,
    limits.waitingMax ?? PASSWORD_HASHES_WAITING_MAX,
    limits.perSourceMax ?? PASSWORD_HASHES_PER_SOURCE_MAX,
  );
  // Hash of a random password nobody knows, made at first need.
  let dummyHash: Promise<string> | undefined;
  const hashPassword = (password: string, source?: string) =>
    inSlot(() => hash(password.normalize('NFC'), PARAMETERS), source);
  const matches = (storedHash: string, password: string, source: string | undefined) =>
    inSlot(() => verify(storedHash, password).catch(() => false), source);
  return {
    hash: hashPassword,
    verify: async (storedHash, password, source) => {
      const normal = password.normalize('NFC');
      if (storedHash === undefined) {
        // Forgotten if it failed (refused while the node was busy): made again at the next need.
        dummyHash ??= hashPassword(randomUUID(), source).catch((error: unknown) => {
          dummyHash = undefined;
          throw error;
        });
        // As many verifications as an existing account's wrong password costs (below).
        await matches(await dummyHash, normal, source);
        if (normal !== password) await matches(await dummyHash, password, source);
        return false;
      }
      if (await matches(storedHash, normal, source)) return true;
      // A hash made before passwords were normalised, of a password sent not in NFC.
      return normal !== password && matches(storedHash, password, source);
    },
    isUnnormalized: async (storedHash, password, source) => {
      const normal = password.normalize('NFC');
      return normal !== password && !(await matches(storedHash, normal, source));
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
