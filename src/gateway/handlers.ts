/**
 * What each request frame does: one exhaustive table keyed by the frame type, so a new request
 * type does not compile until it has a handler. Handlers return the `ok` payload or throw AppError.
 */
import type { ClientFrameOf, ClientFrameType, ReplyPayload } from '../../protocol/src/frames.js';
import type { RoomId, UserId } from '../../protocol/src/ids.js';
import type { Encoding } from '../../protocol/src/version.js';
import type { RoomCommand } from '../actors/room/room-actor.js';
import type { ActorRef } from '../actors/runtime/index.js';
import type { AuthService } from '../domain/auth/service.js';
import type { PresenceService } from '../domain/presence/service.js';
import { AppError } from '../platform/errors.js';
import type { Connection } from './connection.js';
import type { Hub, PendingJoin } from './hub.js';
import { type JobBoard, toJobWatch } from './job-board.js';
import { createUserRequestBudget, type UserRequestBudget } from './user-request-budget.js';

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
  readonly room: (roomId: RoomId) => ActorRef<RoomCommand>;
  /**
   * Whether the user is a member of the room (false for unknown rooms too). Checked before
   * `room` is asked, so a request for a room one is not in never activates its actor.
   */
  readonly mayUseRoom: (userId: UserId, roomId: RoomId) => Promise<boolean>;
  /**
   * Counts contact removals heard on this node. A presence subscription checked against the
   * database is re-checked when a removal arrived meanwhile, so it cannot outlive the contact.
   */
  readonly contactRemovals: () => number;
  /**
   * Joins the connection to the room: the room actor answers membership and its last seq, the
   * backlog after `sinceSeq` is paged from the database outside the actor's turn, then live.
   * `pending` is the join begun before the membership check: a leave or a removal that cancels it
   * first keeps the connection out of the room.
   */
  readonly joinRoom: (
    connection: Connection,
    roomId: RoomId,
    sinceSeq: number | undefined,
    pending: PendingJoin,
  ) => Promise<{ lastSeq: number }>;
  /**
   * A page of the room's history, older than `beforeSeq`, newest first: read from the database
   * outside the room actor's turn, within the node's bounds on room reads (room-reads.ts).
   */
  readonly readHistory: (
    userId: UserId,
    roomId: RoomId,
    beforeSeq: number | undefined,
    limit: number,
    wanted: () => boolean,
    /** The asker's encoding: the page is cut at a byte budget of it (send-budget.ts). */
    encoding: Encoding,
  ) => Promise<ReplyPayload<'room.history'>>;
  /** Drops the connection from the room (and the node's bus subscription when it was the last). */
  readonly leaveRoom: (roomId: RoomId, connection: Connection) => Promise<void>;
  /**
   * Marks the user's notifications read and tells their other sockets (every node); absent on a
   * node without the notifications service: the request fails UNAVAILABLE.
   */
  readonly readNotifications?: (
    connection: Connection,
    request: ClientFrameOf<'notifications.read'>['d'],
  ) => Promise<ReplyPayload<'notifications.read'>>;
  /** The node's live job board (`jobs.watch`): one watch per connection. */
  readonly jobBoard: Pick<JobBoard<Connection>, 'watch' | 'unwatch'>;
  /**
   * Takes a presence, notification or token request from the user's budget on this node, or
   * throws RATE_LIMITED (user-request-budget.ts). Default: a budget of this table's own.
   */
  readonly spendUserRequest?: UserRequestBudget;
}): HandlerTable {
  const { auth, presence, hub } = deps;
  const spendUserRequest = deps.spendUserRequest ?? createUserRequestBudget();
  /** The actor of a room the connection's user is a member of; FORBIDDEN (the same for unknown rooms) otherwise. */
  const assertMember = async (connection: Connection, roomId: RoomId) => {
    if (!(await deps.mayUseRoom(connection.userId, roomId))) {
      throw new AppError('FORBIDDEN', 'not a member of this room');
    }
  };
  const memberRoom = async (connection: Connection, roomId: RoomId) => {
    await assertMember(connection, roomId);
    return deps.room(roomId);
  };
  return {
    ping: async (connection, frame) => {
      const serverTime = deps.now();
      // Without an id there is no reply to carry the answer: push a pong instead.
      if (frame.id === undefined) connection.sendFrame({ t: 'pong', d: { serverTime } });
      return { serverTime };
    },
    'auth.refresh': async (connection, frame) => {
      spendUserRequest(connection.userId);
      const principal = await auth.authenticate(frame.d.accessToken);
      if (principal.userId !== connection.userId) {
        throw new AppError('FORBIDDEN', 'the token belongs to another user');
      }
      // The connection stays in the session it opened with: a revocation of that session must
      // close it (hub.closeUser matches the session), and another session cannot extend it.
      if (principal.sessionId !== connection.principal.sessionId) {
        throw new AppError('FORBIDDEN', 'the token belongs to another session');
      }
      connection.principal = principal;
      hub.rescheduleExpiry(connection);
      return { expiresAt: connection.authExpiresAt };
    },
    'presence.subscribe': async (connection, frame) => {
      spendUserRequest(connection.userId);
      const userIds = [...new Set(frame.d.userIds)];
      // Pending from now on: a presence.unsubscribe of the connection handled while this one
      // checks withdraws its ids, so it is not undone by this subscribe finishing after it.
      const pending = hub.beginWatch(connection, userIds);
      let answeredOk = false;
      try {
        const removalsBefore = deps.contactRemovals();
        await presence.assertMayWatch(connection.userId, userIds);
        // Watch first, then read: a transition between the two is pushed, never missed. What this
        // request adds (`pending.added`) is taken back if it fails: an `error` reply means nothing
        // subscribed (a client does not resubscribe what it was told failed, yet would get its
        // pushes here).
        hub.watch(connection, userIds, pending);
        // A removal heard while checking may have found no watch to drop: check once more, now that
        // the watch exists (a later removal drops it). Bounded: at most two checks per request.
        if (deps.contactRemovals() !== removalsBefore) {
          await presence.assertMayWatch(connection.userId, userIds);
        }
        const states = await presence.snapshot(userIds);
        // A removal (or a lock of the user) heard while the state was read ended the watch: that
        // state was read after the two stopped being contacts, and is not told. An unsubscribe of
        // this connection meanwhile (`withdrawn`) is no refusal.
        const ended = userIds.filter((id) => !pending.withdrawn.has(id) && !hub.isWatching(connection, id));
        if (ended.length > 0) {
          throw new AppError('FORBIDDEN', 'presence is visible for mutual contacts only', {
            details: { userIds: ended },
          });
        }
        answeredOk = true;
        // A push of one of these users sent to this connection while the state was read went out
        // before this reply: the reply must not take the client back to an older state.
        return { presence: states.map((state) => pending.pushed.get(state.userId) ?? state) };
      } catch (error) {
        // Also when the first check failed: a request failing before it could take a watch over.
        hub.takeBackWatch(connection, pending);
        throw error;
      } finally {
        hub.endWatch(connection, pending, answeredOk);
      }
    },
    'presence.unsubscribe': async (connection, frame) => {
      hub.unsubscribe(connection, frame.d.userIds);
      return undefined;
    },
    'room.join': async (connection, frame) => {
      const { roomId, sinceSeq } = frame.d;
      // Pending from the first await on: a room.leave (or the user's removal) handled while the
      // join checks membership or waits for the room's actor wins, instead of finding nothing.
      const pending = hub.beginJoin(roomId, connection);
      try {
        await memberRoom(connection, roomId);
      } catch (error) {
        hub.endJoin(roomId, connection, pending);
        throw error;
      }
      return deps.joinRoom(connection, roomId, sinceSeq, pending);
    },
    'room.leave': async (connection, frame) => {
      await deps.leaveRoom(frame.d.roomId, connection);
      return undefined;
    },
    'room.send': async (connection, frame) =>
      (await memberRoom(connection, frame.d.roomId)).ask((reply) => ({
        type: 'send',
        send: {
          senderId: connection.userId,
          clientMsgId: frame.d.clientMsgId,
          body: frame.d.body,
          meta: frame.d.meta ?? null,
        },
        reply,
      })),
    'room.history': async (connection, frame) => {
      await assertMember(connection, frame.d.roomId);
      return deps.readHistory(
        connection.userId,
        frame.d.roomId,
        frame.d.beforeSeq,
        frame.d.limit,
        () => connection.isOpen,
        connection.encoding,
      );
    },
    'room.typing': async (connection, frame) =>
      (await memberRoom(connection, frame.d.roomId)).ask<undefined>((reply) => ({
        type: 'typing',
        userId: connection.userId,
        reply,
      })),
    'room.read': async (connection, frame) =>
      (await memberRoom(connection, frame.d.roomId)).ask((reply) => ({
        type: 'read',
        userId: connection.userId,
        seq: frame.d.seq,
        reply,
      })),
    'notifications.read': async (connection, frame) => {
      if (deps.readNotifications === undefined) {
        throw new AppError('UNAVAILABLE', 'notifications are not served here');
      }
      spendUserRequest(connection.userId);
      return deps.readNotifications(connection, frame.d);
    },
    // Jobs are public to every signed-in user (REST GET /v1/jobs): no role is required to watch.
    'jobs.watch': async (connection, frame) => {
      deps.jobBoard.watch(connection, toJobWatch(frame.d));
      return undefined;
    },
    'jobs.unwatch': async (connection) => {
      deps.jobBoard.unwatch(connection);
      return undefined;
    },
  };
}

/** Runs a frame through the table; the cast is the one place the union meets its handler. */
export function dispatchThrough(table: HandlerTable) {
  return (connection: Connection, frame: ClientFrameOf<ClientFrameType>) =>
    (table[frame.t] as Handler<ClientFrameType>)(connection, frame);
}
