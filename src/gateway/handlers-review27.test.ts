/**
 * Review 27: two `presence.subscribe` of the same user on one connection at once (an app calling
 * subscribePresence from two screens; the SDK's resume beside the app's own request). One failed
 * (its state read timed out) after the other had started: the failed one took back a watch the
 * other one's `ok` had just promised, and the client, told it was subscribed, got no push of that
 * user until it reconnected.
 */
import { describe, expect, it } from 'vitest';
import { createCodec } from '../../protocol/src/codec.js';
import type { PresenceState } from '../../protocol/src/frames.js';
import type { UserId } from '../../protocol/src/ids.js';
import { Encoding } from '../../protocol/src/version.js';
import type { PresenceService } from '../domain/presence/service.js';
import { AppError } from '../platform/errors.js';
import { Connection } from './connection.js';
import { testConnectionEnvironment, testHandlerDeps, testPrincipal } from './connection-testing.js';
import { createHandlers } from './handlers.js';
import { createHub } from './hub.js';
import type { SocketTransport } from './transport.js';

const me = 'd0000000-0000-4000-8000-000000000270' as UserId;
const contact = 'd0000000-0000-4000-8000-000000000271' as UserId;
const other = 'd0000000-0000-4000-8000-000000000272' as UserId;

/** A promise settled from outside. */
function gate() {
  let open: () => void = () => undefined;
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { opened, open };
}

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
  /** Each snapshot waits for its gate, then fails or answers as told. */
  const snapshots: { gate: ReturnType<typeof gate>; fail: boolean }[] = [];
  const presence = {
    assertMayWatch: async () => undefined,
    snapshot: async (userIds: readonly UserId[]): Promise<PresenceState[]> => {
      const step = snapshots.shift();
      if (step !== undefined) {
        await step.gate.opened;
        if (step.fail) throw new AppError('UNAVAILABLE', 'presence store timed out');
      }
      return userIds.map((userId) => ({ userId, status: 'offline' as const, lastSeenAt: null }));
    },
  } as unknown as PresenceService;
  const handlers = createHandlers(testHandlerDeps(hub, { presence }));
  const subscribe = (userIds: UserId[]) =>
    handlers['presence.subscribe'](connection, { t: 'presence.subscribe', id: 1, d: { userIds } }).then(
      () => 'ok',
      (error: AppError) => error.code,
    );
  return { hub, connection, snapshots, subscribe };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('presence.subscribe of one user twice at once (review 27)', () => {
  it('keeps the watch an ok promised when the other request fails after it', async () => {
    const h = harness();
    const first = { gate: gate(), fail: true };
    const second = { gate: gate(), fail: false };
    h.snapshots.push(first, second);
    const a = h.subscribe([contact]);
    await settle();
    const b = h.subscribe([contact]);
    await settle();
    second.gate.open();
    expect(await b).toBe('ok');
    first.gate.open();
    expect(await a).toBe('UNAVAILABLE');
    // Before: false — the failed request took back the watch it had made, which `b` relied on.
    expect(h.hub.isWatching(h.connection, contact)).toBe(true);
  });

  it('keeps it while the other request still waits, and takes it back once that one fails too', async () => {
    const h = harness();
    const first = { gate: gate(), fail: true };
    const second = { gate: gate(), fail: true };
    h.snapshots.push(first, second);
    const a = h.subscribe([contact, other]);
    await settle();
    const b = h.subscribe([contact]);
    await settle();
    first.gate.open();
    expect(await a).toBe('UNAVAILABLE');
    // `other` was asked by the failed request alone; `contact` waits for the answer of `b`.
    expect(h.hub.isWatching(h.connection, other)).toBe(false);
    expect(h.hub.isWatching(h.connection, contact)).toBe(true);
    second.gate.open();
    expect(await b).toBe('UNAVAILABLE');
    // Both failed: nothing subscribed, as each error reply says.
    expect(h.hub.isWatching(h.connection, contact)).toBe(false);
  });

  it('still takes back only what a lone failed request added', async () => {
    const h = harness();
    expect(await h.subscribe([contact])).toBe('ok');
    h.snapshots.push({ gate: gate(), fail: true });
    h.snapshots[0]?.gate.open();
    expect(await h.subscribe([contact, other])).toBe('UNAVAILABLE');
    expect(h.hub.isWatching(h.connection, contact)).toBe(true);
    expect(h.hub.isWatching(h.connection, other)).toBe(false);
  });
});
