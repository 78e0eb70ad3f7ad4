/**
 * The principal of an access token carries its session's absolute end (review 32), without servers:
 * the service over a database that answers every query with one session's row, and a token service
 * that verifies any token to that session's claims. The WebSocket edge closes a connection at the
 * earlier of its token's expiry and this end (hub.ts), with no read of its own: before, a socket
 * outlived its session by up to an access token's lifetime.
 */
import { describe, expect, it } from 'vitest';
import type { SessionId, UserId } from '../../../protocol/src/ids.js';
import { answeringDb } from '../../db/answering-db.testing.js';
import { loggerToMemory } from '../../platform/logger.testing.js';
import type { WindowCounter } from '../../platform/window-counter.js';
import type { PasswordHasher } from './passwords.js';
import { createAuthService } from './service.js';
import type { AccessClaims, TokenService } from './tokens.js';

const NOW = new Date('2026-12-08T00:00:00Z');
const SESSION_END = new Date('2026-12-08T00:05:00Z');
const claims: AccessClaims = {
  sub: '00000000-0000-4000-8000-00000000a11c' as UserId,
  sid: '00000000-0000-4000-8000-000000005e55' as SessionId,
  roles: ['worker'],
  sv: 1,
  // The token outlives the session by ten minutes.
  exp: NOW.getTime() / 1000 + 900,
} as AccessClaims;
const sessionRow = {
  session_id: claims.sid,
  user_id: claims.sub,
  session_version: 1,
  locked_at: null,
  roles: ['worker'],
  revoked_at: null,
  absolute_expires_at: SESSION_END,
};

describe("an access token's principal (review 32)", () => {
  it("carries its session's absolute end beside the token's expiry", async () => {
    const auth = createAuthService({
      // Every query answers the session's row.
      db: answeringDb(() => [sessionRow]),
      clock: { now: () => NOW },
      log: loggerToMemory().log,
      tokens: { accessTtlS: 900, verify: async () => claims } as unknown as TokenService,
      passwords: {} as PasswordHasher,
      counters: {} as WindowCounter,
      settings: {
        refresh: { idleTtlS: 604_800, absoluteTtlS: 2_592_000, reuseGraceS: 10 },
        login: { maxFailures: 3, ipMaxFailures: 100, windowS: 900 },
      },
    });
    const principal = await auth.authenticate('a token');
    expect(principal.expiresAt).toBe(claims.exp * 1000);
    expect(principal.sessionExpiresAt).toBe(SESSION_END.getTime());
  });
});
