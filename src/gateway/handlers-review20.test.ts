/**
 * Review 20: a `presence.subscribe` and what reaches its connection while it waits.
 * - A `presence.unsubscribe` of the same users handled while the subscribe checks contacts: the
 *   subscribe, finishing later, watched them anyway (the unsubscribe had found nothing to end).
 * - A `presence` push of a requested user sent while the subscribe reads the current state: the
 *   state read before the transition went out in the reply after the push, and the client, applying
 *   the reply and then the pushes in arrival order (PROTOCOL.md, Presence), stayed on the old state.
 */
import { describe, expect, it } from 'vitest';
import { createCodec } from '../../protocol/src/codec.js';
import type { PresenceState } from '../../protocol/src/frames.js';
import type { UserId } from '../../protocol/src/ids.js';
import { Encoding } from '../../protocol/src/version.js';
import type { PresenceService } from '../domain/presence/service.js';
import { Connection } from './connection.js';
import { testConnectionEnvironment, testHandlerDeps, testPrincipal } from './connection-testing.js';
import { createHandlers } from './handlers.js';
import { createHub } from './hub.js';
import type { SocketTransport } from './transport.js';

const me = 'd0000000-0000-4000-8000-000000000200' as UserId;
const contact = 'd0000000-0000-4000-8000-000000000201' as UserId;

function harness() {
  const codec = createCodec();
  const hub = createHub(codec);
  const sent: string[] = [];
  const transport: SocketTransport = {
    kind: 'fastify-ws',
    send: (data) => {
      sent.push(String(data));
      return true;
    },
    bufferedAmount: () => 0,
    close: () => {},
  };
  const connection = new Connection('c1', testPrincipal(me), Encoding.JSON, transport, {
    ...testConnectionEnvironment(codec),
  });
  hub.add(connection);
  const hooks: { duringCheck?: () => void; duringSnapshot?: () => void } = {};
  const presence = {
    assertMayWatch: async () => {
      await Promise.resolve();
      hooks.duringCheck?.();
    },
    // The state as read before whatever `duringSnapshot` does.
    snapshot: async (userIds: readonly UserId[]): Promise<PresenceState[]> => {
      const states = userIds.map((userId) => ({ userId, status: 'offline' as const, lastSeenAt: null }));
      await Promise.resolve();
      hooks.duringSnapshot?.();
      return states;
    },
  } as unknown as PresenceService;
  const handlers = createHandlers(testHandlerDeps(hub, { presence }));
  const subscribe = (userIds: UserId[]) =>
    handlers['presence.subscribe'](connection, { t: 'presence.subscribe', id: 1, d: { userIds } });
  const unsubscribe = (userIds: UserId[]) =>
    handlers['presence.unsubscribe'](connection, { t: 'presence.unsubscribe', id: 2, d: { userIds } });
  return { hub, connection, hooks, sent, subscribe, unsubscribe };
}

describe('presence.subscribe while it waits (review 20)', () => {
  it('does not watch a user a presence.unsubscribe handled meanwhile withdrew', async () => {
    const h = harness();
    h.hooks.duringCheck = () => void h.unsubscribe([contact]);
    await h.subscribe([contact]);
    expect(h.hub.isWatching(h.connection, contact)).toBe(false);
    // Without a withdrawal the same request watches as before.
    h.hooks.duringCheck = undefined;
    await h.subscribe([contact]);
    expect(h.hub.isWatching(h.connection, contact)).toBe(true);
  });

  it('answers no older state than a push of the user sent to the connection before the reply', async () => {
    const h = harness();
    const online: PresenceState = { userId: contact, status: 'online', lastSeenAt: null };
    h.hooks.duringSnapshot = () => h.hub.pushToWatchers(contact, { t: 'presence', d: online });
    const reply = await h.subscribe([contact]);
    // The push went out first (the connection watched already while the state was read) ...
    expect(h.sent.map((data) => JSON.parse(data) as unknown)).toEqual([{ t: 'presence', d: online }]);
    // ... so the reply sent after it says what it said.
    expect(reply).toEqual({ presence: [online] });
    // Once answered, pushes are no longer folded into anything.
    h.hooks.duringSnapshot = undefined;
    expect(await h.subscribe([contact])).toEqual({
      presence: [{ userId: contact, status: 'offline', lastSeenAt: null }],
    });
  });
});
