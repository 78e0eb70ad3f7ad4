/**
 * Review 33: a contact removal (or a lock of the watched user) heard on the node while a
 * `presence.subscribe` reads the current state. The bus bridge ended the watch, but the request
 * still answered `ok` with the state it read: the presence of a user who had stopped being a
 * contact before it was read, and a client told it was subscribed to someone it no longer watches.
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

const me = 'd0000000-0000-4000-8000-000000000330' as UserId;
const contact = 'd0000000-0000-4000-8000-000000000331' as UserId;
const other = 'd0000000-0000-4000-8000-000000000332' as UserId;

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
  const hooks: { duringSnapshot?: () => void } = {};
  const presence = {
    assertMayWatch: async () => {},
    snapshot: async (userIds: readonly UserId[]): Promise<PresenceState[]> => {
      await Promise.resolve();
      hooks.duringSnapshot?.();
      return userIds.map((userId) => ({ userId, status: 'online' as const, lastSeenAt: null }));
    },
  } as unknown as PresenceService;
  const handlers = createHandlers(testHandlerDeps(hub, { presence }));
  const subscribe = (userIds: UserId[]) =>
    handlers['presence.subscribe'](connection, { t: 'presence.subscribe', id: 1, d: { userIds } });
  const unsubscribe = (userIds: UserId[]) =>
    handlers['presence.unsubscribe'](connection, { t: 'presence.unsubscribe', id: 2, d: { userIds } });
  return { hub, connection, hooks, subscribe, unsubscribe };
}

describe('presence.subscribe and a contact removal heard while it reads the state (review 33)', () => {
  it('refuses the request instead of answering the state of the removed contact', async () => {
    const h = harness();
    // What the bus bridge does on CONTACT_REMOVED_TOPIC (and on a lock of the watched user).
    h.hooks.duringSnapshot = () => h.hub.unwatch(h.connection, [contact]);
    await expect(h.subscribe([contact, other])).rejects.toMatchObject({
      code: 'FORBIDDEN',
      details: { userIds: [contact] },
    });
    // An error reply subscribes nothing.
    expect(h.hub.isWatching(h.connection, other)).toBe(false);
  });

  it('still answers ok when only an unsubscribe of the connection ended a watch meanwhile', async () => {
    const h = harness();
    h.hooks.duringSnapshot = () => void h.unsubscribe([contact]);
    const reply = await h.subscribe([contact, other]);
    expect(reply?.presence.map((state) => state.userId)).toEqual([contact, other]);
    expect(h.hub.isWatching(h.connection, contact)).toBe(false);
    expect(h.hub.isWatching(h.connection, other)).toBe(true);
  });
});
