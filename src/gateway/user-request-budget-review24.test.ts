/**
 * Review 24: `presence.subscribe`, `notifications.read` and `auth.refresh` each cost the node a
 * database or Redis round trip (or a signature check) and were bounded only by each socket's frame
 * rate: 50 a second on each of a user's 20 sockets. They now take from one budget per user per node.
 */
import { describe, expect, it } from 'vitest';
import { createCodec } from '../../protocol/src/codec.js';
import type { UserId } from '../../protocol/src/ids.js';
import { Encoding } from '../../protocol/src/version.js';
import type { AuthService } from '../domain/auth/service.js';
import type { PresenceService } from '../domain/presence/service.js';
import { isAppError } from '../platform/errors.js';
import { Connection } from './connection.js';
import { testConnectionEnvironment, testHandlerDeps, testPrincipal } from './connection-testing.js';
import { createHandlers } from './handlers.js';
import { createHub } from './hub.js';
import { createUserRequestBudget } from './user-request-budget.js';

const alice = 'd0000000-0000-4000-8000-000000000301' as UserId;
const bob = 'd0000000-0000-4000-8000-000000000302' as UserId;

async function refusal(work: () => unknown): Promise<unknown> {
  try {
    await work();
  } catch (error) {
    return error;
  }
  return undefined;
}

describe('the per-user budget of presence, notification and token requests', () => {
  it('passes a burst, then refuses RATE_LIMITED with the wait until it refills, per user', async () => {
    let now = 0;
    const spend = createUserRequestBudget({ burst: 3, perSecond: 2, now: () => now });
    for (let i = 0; i < 3; i++) spend(alice);
    const refused = await refusal(() => spend(alice));
    expect(isAppError(refused) && refused.code).toBe('RATE_LIMITED');
    expect(isAppError(refused) && refused.details?.retryAfterMs).toBe(500);
    // Another user has a budget of their own.
    spend(bob);
    now = 500;
    spend(alice);
    expect(isAppError(await refusal(() => spend(alice)))).toBe(true);
  });

  it('is spent by presence.subscribe, notifications.read and auth.refresh of one user, across sockets', async () => {
    const codec = createCodec();
    const hub = createHub(codec);
    const socket = (id: string) =>
      new Connection(
        id,
        testPrincipal(alice),
        Encoding.JSON,
        { kind: 'fastify-ws', send: () => true, bufferedAmount: () => 0, close: () => {} },
        testConnectionEnvironment(codec),
      );
    const [first, second] = [socket('c1'), socket('c2')];
    hub.add(first);
    hub.add(second);
    const handlers = createHandlers(
      testHandlerDeps(hub, {
        auth: { authenticate: async () => testPrincipal(alice) } as unknown as AuthService,
        presence: { assertMayWatch: async () => {}, snapshot: async () => [] } as unknown as PresenceService,
        readNotifications: async () => ({ updated: 0, unreadCount: 0 }),
        spendUserRequest: createUserRequestBudget({ burst: 3, perSecond: 1, now: () => 0 }),
      }),
    );
    await handlers['presence.subscribe'](first, { t: 'presence.subscribe', id: 1, d: { userIds: [bob] } });
    await handlers['notifications.read'](second, { t: 'notifications.read', id: 2, d: { all: true } });
    await handlers['auth.refresh'](first, { t: 'auth.refresh', id: 3, d: { accessToken: 'x' } });
    for (const request of [
      () => handlers['presence.subscribe'](second, { t: 'presence.subscribe', id: 4, d: { userIds: [bob] } }),
      () => handlers['notifications.read'](first, { t: 'notifications.read', id: 5, d: { all: true } }),
      () => handlers['auth.refresh'](second, { t: 'auth.refresh', id: 6, d: { accessToken: 'x' } }),
    ]) {
      const refused = await refusal(request);
      expect(isAppError(refused) && refused.code).toBe('RATE_LIMITED');
    }
    // Other requests are not counted here (room requests have their own bounds).
    await handlers.ping(first, { t: 'ping', id: 7 });
  });
});
