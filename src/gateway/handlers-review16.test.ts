/**
 * Review 16: a `presence.subscribe` answered with an `error` subscribes nothing. Before, a snapshot
 * read that failed (Redis unreachable: UNAVAILABLE) left the watch in place: the client, told the
 * request failed, did not count the users as subscribed (nor subscribe them again after a
 * reconnect), yet got their pushes on this connection. And a failed re-check took back the
 * connection's earlier subscriptions too, not only what the request had added.
 */
import { describe, expect, it } from 'vitest';
import { createCodec } from '../../protocol/src/codec.js';
import type { UserId } from '../../protocol/src/ids.js';
import { Encoding } from '../../protocol/src/version.js';
import type { PresenceService } from '../domain/presence/service.js';
import { AppError } from '../platform/errors.js';
import { Connection } from './connection.js';
import { testConnectionEnvironment, testHandlerDeps, testPrincipal } from './connection-testing.js';
import { createHandlers } from './handlers.js';
import { createHub } from './hub.js';
import type { SocketTransport } from './transport.js';

const me = 'd0000000-0000-4000-8000-000000000160' as UserId;
const earlier = 'd0000000-0000-4000-8000-000000000161' as UserId;
const added = 'd0000000-0000-4000-8000-000000000162' as UserId;

function harness() {
  const codec = createCodec();
  const hub = createHub(codec);
  const transport: SocketTransport = {
    kind: 'fastify-ws',
    send: () => true,
    bufferedAmount: () => 0,
    close: () => {},
  };
  const connection = new Connection('c1', testPrincipal(me), Encoding.JSON, transport, {
    ...testConnectionEnvironment(codec),
  });
  hub.add(connection);
  const behaviour = { snapshotFails: false, recheckFails: false, removals: 0, rechecking: false };
  const presence = {
    assertMayWatch: async () => {
      if (behaviour.rechecking) throw new AppError('UNAVAILABLE', 'injected: contacts unreadable');
      // A contact removal heard while this check ran: the handler checks again, and that fails.
      if (behaviour.recheckFails) {
        behaviour.removals += 1;
        behaviour.rechecking = true;
      }
    },
    snapshot: async (userIds: readonly UserId[]) => {
      if (behaviour.snapshotFails) throw new AppError('UNAVAILABLE', 'injected: presence unreadable');
      return userIds.map((userId) => ({ userId, status: 'offline' as const, lastSeenAt: null }));
    },
  } as unknown as PresenceService;
  const handlers = createHandlers(
    testHandlerDeps(hub, { presence, contactRemovals: () => behaviour.removals }),
  );
  const subscribe = (userIds: UserId[]) =>
    handlers['presence.subscribe'](connection, { t: 'presence.subscribe', id: 1, d: { userIds } });
  return { hub, connection, behaviour, subscribe };
}

describe('presence.subscribe failing (review 16)', () => {
  it('takes back what a request whose snapshot failed added, and keeps what was subscribed before', async () => {
    const h = harness();
    await h.subscribe([earlier]);
    h.behaviour.snapshotFails = true;
    await expect(h.subscribe([earlier, added])).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    expect(h.hub.isWatching(h.connection, earlier)).toBe(true);
    expect(h.hub.isWatching(h.connection, added)).toBe(false);
  });

  it('takes back only what the request added when its re-check fails', async () => {
    const h = harness();
    await h.subscribe([earlier]);
    h.behaviour.recheckFails = true;
    await expect(h.subscribe([earlier, added])).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    expect(h.hub.isWatching(h.connection, earlier)).toBe(true);
    expect(h.hub.isWatching(h.connection, added)).toBe(false);
  });
});
