/**
 * For unit tests of the gateway: a connection environment with the default limits and no-op
 * dependencies, and a principal for a user. Imported by `*.test.ts` files only.
 */
import type { Codec } from '../../protocol/src/codec.js';
import type { SessionId, UserId } from '../../protocol/src/ids.js';
import { Encoding } from '../../protocol/src/version.js';
import type { AuthService } from '../domain/auth/service.js';
import type { PresenceService } from '../domain/presence/service.js';
import { createLogger } from '../platform/logger.js';
import { Connection, type ConnectionEnvironment } from './connection.js';
import type { createHandlers } from './handlers.js';
import type { Hub } from './hub.js';

export function testConnectionEnvironment(
  codec: Codec,
  overrides: Partial<ConnectionEnvironment> = {},
): ConnectionEnvironment {
  return {
    codec,
    limits: {
      maxFrameBytes: 65_536,
      maxMessagesPerSecond: 50,
      maxBurst: 100,
      maxBufferedBytes: 1_000_000,
      maxStrikes: 20,
      strikeWindowMs: 10_000,
    },
    log: createLogger({ level: 'silent', pretty: false }),
    now: () => 0,
    dispatch: async () => undefined,
    describeError: () => ({ code: 'INTERNAL', message: 'internal error' }),
    onClosed: () => {},
    ...overrides,
  };
}

/** The principal of a signed-in test user, valid for a minute. */
export const testPrincipal = (userId: UserId) => ({
  userId,
  sessionId: 'e0000000-0000-4000-8000-000000000000' as SessionId,
  roles: [],
  expiresAt: Date.now() + 60_000,
  sessionExpiresAt: Date.now() + 30 * 24 * 3_600_000,
  sessionVersion: 0,
});

/**
 * A msgpack connection of `userId` whose socket takes every send and never has bytes buffered, and
 * the close codes it was given: for the hub's tests of what a catch-up holds.
 */
export function testHeldConnection(codec: Codec, userId: UserId, id: string = userId) {
  const closes: number[] = [];
  const connection = new Connection(
    id,
    testPrincipal(userId),
    Encoding.MSGPACK,
    {
      kind: 'fastify-ws',
      send: () => true,
      bufferedAmount: () => 0,
      close: (code) => void closes.push(code),
    },
    testConnectionEnvironment(codec),
  );
  return { connection, closes };
}

/**
 * A JSON connection of `userId` (id `c1`) whose socket takes every send, and the presence pushes
 * it got, as `userId:status`: for the bus bridge's tests of presence watches.
 */
export function testPresenceWatcher(codec: Codec, userId: UserId) {
  const pushed: string[] = [];
  const connection = new Connection(
    'c1',
    testPrincipal(userId),
    Encoding.JSON,
    {
      kind: 'fastify-ws',
      send: (data) => {
        const decoded = codec.decodeServer(data, Encoding.JSON);
        if (decoded.ok && decoded.frame.t === 'presence')
          pushed.push(`${decoded.frame.d.userId}:${decoded.frame.d.status}`);
        return true;
      },
      bufferedAmount: () => 0,
      close: () => {},
    },
    testConnectionEnvironment(codec),
  );
  return { connection, pushed };
}

type HandlerDeps = Parameters<typeof createHandlers>[0];

/**
 * `createHandlers`' dependencies for handler tests: no rooms (membership refused), no contacts
 * removed, no job board, auth and presence unusable; a test overrides what it exercises.
 */
export function testHandlerDeps(hub: Hub, overrides: Partial<HandlerDeps> = {}): HandlerDeps {
  return {
    auth: {} as AuthService,
    presence: {} as PresenceService,
    hub,
    now: () => 0,
    room: () => {
      throw new Error('no rooms here');
    },
    mayUseRoom: async () => false,
    contactRemovals: () => 0,
    joinRoom: async () => ({ lastSeq: 0 }),
    readHistory: async () => ({ messages: [] }),
    leaveRoom: async () => {},
    jobBoard: { watch: () => {}, unwatch: () => {} },
    ...overrides,
  };
}
