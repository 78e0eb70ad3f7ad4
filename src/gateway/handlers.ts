/**
 * What each request frame does: one exhaustive table keyed by the frame type, so a new request
 * type does not compile until it has a handler. Handlers return the `ok` payload or throw AppError.
 */
import type { ClientFrameOf, ClientFrameType, ReplyPayload } from '../../protocol/src/frames.js';
import type { AuthService } from '../domain/auth/service.js';
import type { PresenceService } from '../domain/presence/service.js';
import { AppError } from '../platform/errors.js';
import type { Connection } from './connection.js';
import type { Hub } from './hub.js';

type Handler<T extends ClientFrameType> = (
  connection: Connection,
  frame: ClientFrameOf<T>,
) => Promise<ReplyPayload<T> | undefined>;

export type HandlerTable = { readonly [T in ClientFrameType]: Handler<T> };

export function createHandlers(deps: {
  readonly auth: AuthService;
  readonly presence: PresenceService;
  readonly hub: Hub;
  readonly now: () => number;
}): HandlerTable {
  const { auth, presence, hub } = deps;
  return {
    ping: async (connection, frame) => {
      const serverTime = deps.now();
      // Without an id there is no reply to carry the answer: push a pong instead.
      if (frame.id === undefined) connection.sendFrame({ t: 'pong', d: { serverTime } });
      return { serverTime };
    },
    'auth.refresh': async (connection, frame) => {
      const principal = await auth.authenticate(frame.d.accessToken);
      if (principal.userId !== connection.userId) {
        throw new AppError('FORBIDDEN', 'the token belongs to another user');
      }
      connection.principal = principal;
      hub.rescheduleExpiry(connection);
      return { expiresAt: principal.expiresAt };
    },
    'presence.subscribe': async (connection, frame) => {
      const userIds = [...new Set(frame.d.userIds)];
      await presence.assertMayWatch(connection.userId, userIds);
      // Watch first, then read: a transition between the two is pushed, never missed.
      hub.watch(connection, userIds);
      return { presence: await presence.snapshot(userIds) };
    },
    'presence.unsubscribe': async (connection, frame) => {
      hub.unwatch(connection, frame.d.userIds);
      return undefined;
    },
  };
}

/** Runs a frame through the table; the cast is the one place the union meets its handler. */
export function dispatchThrough(table: HandlerTable) {
  return (connection: Connection, frame: ClientFrameOf<ClientFrameType>) =>
    (table[frame.t] as Handler<ClientFrameType>)(connection, frame);
}
