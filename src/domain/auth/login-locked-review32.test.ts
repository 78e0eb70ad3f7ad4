/**
 * A login of an account an operator locked (review 32), without servers: the service over a
 * database that answers every query with the locked user's row, in-memory window counters and a
 * password "hasher" that knows one password. The right password is refused with the same 401 as a
 * wrong one, but is not counted as a failed login (neither for the login name and network pair nor
 * for the network): counted, an owner trying while locked met 429 once unlocked.
 */
import { describe, expect, it } from 'vitest';
import type { UserId } from '../../../protocol/src/ids.js';
import { answeringDb } from '../../db/answering-db.testing.js';
import type { UserRow } from '../../db/repositories/users.repo.js';
import { AppError } from '../../platform/errors.js';
import { loggerToMemory } from '../../platform/logger.testing.js';
import type { WindowCounter } from '../../platform/window-counter.js';
import type { PasswordHasher } from './passwords.js';
import { createAuthService } from './service.js';
import type { TokenService } from './tokens.js';

const RIGHT = 'Right-Horse-Battery-92';
const lockedUser: UserRow = {
  id: '00000000-0000-4000-8000-00000000a11c' as UserId,
  username: 'alice',
  email: 'alice@example.com',
  email_verified_at: null,
  password_hash: 'hash-of-the-right-password',
  roles: ['worker'],
  display_name: null,
  bio: null,
  avatar_url: null,
  location: null,
  skills: [],
  hourly_rate_amount: null,
  hourly_rate_currency: null,
  availability: null,
  portfolio_links: [],
  search_document: 'alice',
  session_version: 1,
  locked_at: new Date('2026-12-01T00:00:00Z'),
  created_at: new Date('2026-11-01T00:00:00Z'),
  updated_at: new Date('2026-12-01T00:00:00Z'),
};

function memoryCounters(): WindowCounter & { readonly counts: Map<string, number> } {
  const counts = new Map<string, number>();
  return {
    counts,
    peek: async (key) => ({ count: counts.get(key) ?? 0, resetInMs: 0 }),
    hit: async (key) => {
      const count = (counts.get(key) ?? 0) + 1;
      counts.set(key, count);
      return { count, resetInMs: 60_000 };
    },
    clear: async (key) => void counts.delete(key),
    release: async (key) => void counts.set(key, Math.max(0, (counts.get(key) ?? 0) - 1)),
  };
}

const passwords: PasswordHasher = {
  hash: async (password) => `hash-of-${password}`,
  verify: async (stored, password) => stored === lockedUser.password_hash && password === RIGHT,
  needsRehash: () => false,
};

function service() {
  const counters = memoryCounters();
  const auth = createAuthService({
    // Every query answers the locked user's row.
    db: answeringDb(() => [lockedUser]),
    clock: { now: () => new Date('2026-12-08T00:00:00Z') },
    log: loggerToMemory().log,
    tokens: { accessTtlS: 900 } as TokenService,
    passwords,
    counters,
    settings: {
      refresh: { idleTtlS: 604_800, absoluteTtlS: 2_592_000, reuseGraceS: 10 },
      login: { maxFailures: 3, ipMaxFailures: 100, windowS: 900 },
    },
  });
  return { auth, counters };
}

const meta = { ip: '203.0.113.7', userAgent: 'test' };
const refusal = async (attempt: Promise<unknown>) => {
  const error = await attempt.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(AppError);
  return { code: (error as AppError).code, message: (error as AppError).message };
};

describe('login of a locked account (review 32)', () => {
  it('refuses the right password as a wrong one, without counting it as a failed login', async () => {
    const { auth, counters } = service();
    const wrong = await refusal(auth.login('alice', 'Wrong-Guess-0001', meta));
    expect(wrong).toEqual({ code: 'UNAUTHORIZED', message: 'invalid login or password' });
    const counted = [...counters.counts.values()];
    expect(counted).toEqual([1, 1]);
    // Far more tries with the right password than the budget: never 429, the same 401 each time,
    // and the counters stay where the one wrong password left them (nothing forgiven either).
    for (let i = 0; i < 6; i++) {
      expect(await refusal(auth.login('Alice', RIGHT, meta))).toEqual(wrong);
    }
    expect([...counters.counts.values()]).toEqual(counted);
  });
});
