/**
 * Review 30c: a locked account's presence is shown to nobody (its profile is 404, and
 * presence.subscribe refuses it as a non-contact). A watch taken before the lock went on: the
 * watcher was pushed the locked user's `offline` with `lastSeenAt` when the lock closed their
 * sockets. Now the lock's revocation ends every watch of that user first, as a contact removal does.
 */
import { describe, expect, it } from 'vitest';
import { createCodec } from '../../protocol/src/codec.js';
import type { SessionId, UserId } from '../../protocol/src/ids.js';
import { createMemoryBus } from '../platform/bus/bus.js';
import { PRESENCE_BATCH_TOPIC, SESSIONS_REVOKED_TOPIC } from '../platform/bus/topics.js';
import { createLogger } from '../platform/logger.js';
import { subscribeBusBridge } from './bus-bridge.js';
import { testPresenceWatcher } from './connection-testing.js';
import { createHub } from './hub.js';

const codec = createCodec();
const watcher = 'd0000000-0000-4000-8000-000000003001' as UserId;
const locked = 'd0000000-0000-4000-8000-000000003002' as UserId;
const other = 'd0000000-0000-4000-8000-000000003003' as UserId;

describe('an admin lock and the presence watches of the locked user (review30c)', () => {
  it('ends every watch of the locked user before their offline is pushed; other watches and other revocations are kept', async () => {
    const hub = createHub(codec);
    const bus = createMemoryBus();
    const { connection, pushed } = testPresenceWatcher(codec, watcher);
    hub.add(connection);
    hub.watch(connection, [locked, other]);
    let removals = 0;
    await subscribeBusBridge({
      bus,
      hub,
      jobBoard: { watchersOf: () => [] },
      log: createLogger({ level: 'silent', pretty: false }),
      tellUser: () => undefined,
      onMembershipChanged: () => undefined,
      onContactRemoved: () => {
        removals += 1;
      },
    });

    // A logout of one session of the user is no reason to stop watching them.
    await bus.publish(SESSIONS_REVOKED_TOPIC, {
      userId: locked,
      sessionId: 'e0000000-0000-4000-8000-000000003004' as SessionId,
      reason: 'logout',
    });
    expect(hub.isWatching(connection, locked)).toBe(true);

    await bus.publish(SESSIONS_REVOKED_TOPIC, { userId: locked, reason: 'locked' });
    expect(hub.isWatching(connection, locked)).toBe(false);
    expect(hub.isWatching(connection, other)).toBe(true);
    // A presence.subscribe checked just before the lock checks again (handlers.ts).
    expect(removals).toBe(1);

    await bus.publish(PRESENCE_BATCH_TOPIC, {
      states: [
        { userId: locked, status: 'offline', lastSeenAt: '2026-01-01T00:00:00.000Z' },
        { userId: other, status: 'online', lastSeenAt: null },
      ],
    });
    expect(pushed).toEqual([`${other}:online`]);
  });
});
