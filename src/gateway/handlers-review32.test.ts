/**
 * Review 32, the authenticated WebSocket edge:
 * - `auth.refresh` took an access token of ANOTHER session of the same user: the connection then
 *   lived on under that session, so revoking the session it opened with no longer closed it.
 * - A connection lived on past its session's absolute end (30 days) for up to an access token's
 *   lifetime: it expired with its token only, while REST refuses that token from the session's end.
 */
import { describe, expect, it } from 'vitest';
import { createCodec } from '../../protocol/src/codec.js';
import { CloseCode } from '../../protocol/src/codes.js';
import type { SessionId, UserId } from '../../protocol/src/ids.js';
import { Encoding } from '../../protocol/src/version.js';
import type { AuthService, Principal } from '../domain/auth/service.js';
import type { AppError } from '../platform/errors.js';
import { Connection } from './connection.js';
import { testConnectionEnvironment, testHandlerDeps, testPrincipal } from './connection-testing.js';
import { createHandlers } from './handlers.js';
import { createHub } from './hub.js';

const me = 'd0000000-0000-4000-8000-000000000320' as UserId;
const otherSession = 'e0000000-0000-4000-8000-000000000321' as SessionId;

/** A connection of `me` opened with `principal`, whose `auth.refresh` authenticates to `refreshed`. */
function harness(principal: Principal, refreshed: Principal) {
  const codec = createCodec();
  const hub = createHub(codec);
  const closes: { code: number; reason: string }[] = [];
  const connection = new Connection(
    'c1',
    principal,
    Encoding.JSON,
    {
      kind: 'fastify-ws',
      send: () => true,
      bufferedAmount: () => 0,
      close: (code, reason) => void closes.push({ code, reason }),
    },
    testConnectionEnvironment(codec),
  );
  hub.add(connection);
  const auth = { authenticate: async () => refreshed } as unknown as AuthService;
  const handlers = createHandlers(testHandlerDeps(hub, { auth }));
  const refresh = () =>
    handlers['auth.refresh'](connection, { t: 'auth.refresh', id: 1, d: { accessToken: 'token' } }).then(
      (reply) => reply,
      (error: AppError) => error.code,
    );
  return { hub, connection, closes, refresh };
}

describe('auth.refresh over WebSocket (review 32)', () => {
  it('refuses a token of another session of the same user and keeps the connection in its own', async () => {
    const opened = testPrincipal(me);
    const h = harness(opened, { ...opened, sessionId: otherSession, expiresAt: opened.expiresAt + 900_000 });
    expect(await h.refresh()).toBe('FORBIDDEN');
    expect(h.connection.principal).toBe(opened);
    // Revoking the session it opened with still closes it.
    expect(h.hub.closeUser(me, opened.sessionId, CloseCode.AUTH_EXPIRED, 'session revoked')).toBe(1);
    expect(h.closes.map((close) => close.code)).toEqual([CloseCode.AUTH_EXPIRED]);
  });

  it('still extends the connection with a newer token of its own session', async () => {
    const opened = testPrincipal(me);
    const newer = { ...opened, expiresAt: opened.expiresAt + 900_000 };
    const h = harness(opened, newer);
    expect(await h.refresh()).toEqual({ expiresAt: newer.expiresAt });
    expect(h.connection.principal).toBe(newer);
  });
});

describe("a connection at its session's absolute end (review 32)", () => {
  const session = (expiresAt: number, sessionExpiresAt: number): Principal => ({
    ...testPrincipal(me),
    expiresAt,
    sessionExpiresAt,
  });

  it('is closed 4001 when the session ends, before its access token expires', () => {
    const now = Date.now();
    const h = harness(session(now + 900_000, now + 60_000), testPrincipal(me));
    h.hub.sweepExpired(now + 61_000);
    expect(h.closes).toEqual([{ code: CloseCode.AUTH_EXPIRED, reason: 'session expired' }]);
  });

  it('is not extended past the session end by auth.refresh, whose reply says when it ends', async () => {
    const now = Date.now();
    const opened = session(now + 30_000, now + 60_000);
    const h = harness(opened, session(now + 900_000, now + 60_000));
    expect(await h.refresh()).toEqual({ expiresAt: now + 60_000 });
    h.hub.sweepExpired(now + 59_000);
    expect(h.closes).toEqual([]);
    h.hub.sweepExpired(now + 61_000);
    expect(h.closes.map((close) => close.code)).toEqual([CloseCode.AUTH_EXPIRED]);
  });
});
