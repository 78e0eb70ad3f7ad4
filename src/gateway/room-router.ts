/**
 * Room routing across gateway nodes: every room actor lives on exactly one node, its owner by
 * placement (rendezvous hashing over the live gateway nodes). `room(roomId)` is an ActorRef that
 * asks the local actor when this node owns the room and the owner's actor over the bus otherwise,
 * wherever the asking socket is. The owner's own fence (an epoch in the rooms row) makes that safe
 * while views disagree; the router only keeps requests flowing while a room moves:
 * - ROOM_MOVED (the node asked is not, or no longer, the owner): look at the registry again and ask
 *   the owner of the new view;
 * - NODE_GONE (the request reached nobody: the owner died): suspect that node and ask the next one.
 * Both are resent a few times within a short budget; a send keeps its clientMsgId, so a resend
 * can never store a message twice. A request that timed out is not resent here (it may be running
 * on a paused owner): the client gets UNAVAILABLE and resends it itself.
 *
 * When the view changes, actors of rooms that moved away are told to hand off: what they have not
 * written fails ROOM_MOVED and is resent to the new owner, which takes the room over (a new epoch)
 * only after the last write of the old one committed or was fenced.
 */
import { z } from 'zod';
import { RoomId, UserId } from '../../protocol/src/ids.js';
import { isRoomMoved, type RoomCommand, roomMovedError } from '../actors/room/room-actor.js';
import {
  type ActorKind,
  type ActorRef,
  type ActorSystem,
  NODE_GONE,
  type RemoteActors,
  type RemoteKind,
  type Reply,
} from '../actors/runtime/index.js';
import { AppError, isAppError } from '../platform/errors.js';
import type { Logger } from '../platform/logger.js';
import type { Placement } from '../platform/placement.js';
import type { Timers } from '../platform/timers.js';

/** Room requests as they cross the bus (a RoomCommand without its Reply). */
const RoomWire = z.discriminatedUnion('type', [
  z.object({ type: z.literal('join'), userId: UserId }),
  z.object({
    type: z.literal('send'),
    send: z.object({
      senderId: UserId,
      clientMsgId: z.string(),
      body: z.string(),
      meta: z.record(z.string(), z.unknown()).nullable(),
    }),
  }),
  z.object({ type: z.literal('typing'), userId: UserId }),
  z.object({ type: z.literal('read'), userId: UserId, seq: z.number().int() }),
]);
type RoomWire = z.infer<typeof RoomWire>;

export const roomRemoteKind: RemoteKind<RoomCommand, RoomWire> = {
  kind: 'room',
  wire: RoomWire,
  toWire: (command) => {
    switch (command.type) {
      case 'join':
      case 'typing':
        return { type: command.type, userId: command.userId };
      case 'send':
        return { type: 'send', send: { ...command.send } };
      case 'read':
        return { type: 'read', userId: command.userId, seq: command.seq };
      default:
        return undefined; // reload-members, handoff, flushed: local to the hosting node
    }
  },
};

/** The command a wire request stands for, answered through `reply`. */
function fromWire(wire: RoomWire, reply: Reply<unknown>): RoomCommand {
  switch (wire.type) {
    case 'join':
    case 'typing':
      return { type: wire.type, userId: wire.userId, reply } as RoomCommand;
    case 'send':
      return { type: 'send', send: wire.send, reply };
    case 'read':
      return { type: 'read', userId: wire.userId, seq: wire.seq, reply };
  }
}

/** Delays before each resend of a request that met a moving room (ms); their count bounds the tries. */
const RESEND_DELAYS_MS = [0, 50, 150, 400, 1_000] as const;

export interface RoomRouter {
  /** The room's actor wherever it lives. */
  readonly room: (roomId: RoomId) => ActorRef<RoomCommand>;
  /** Tells the local actor of the room, if this node hosts it (membership reloads). */
  readonly tellResident: (roomId: RoomId, command: RoomCommand) => boolean;
}

export function createRoomRouter(deps: {
  readonly nodeId: string;
  readonly placement: Placement;
  readonly actors: ActorSystem;
  readonly roomKind: ActorKind<RoomCommand>;
  readonly remote: RemoteActors;
  readonly timers: Timers;
  readonly log: Logger;
}): RoomRouter {
  const { placement, actors, roomKind, remote, timers, log } = deps;
  const local = (roomId: string) => actors.ref<RoomCommand>(roomKind, roomId);

  // Requests of other nodes for rooms this node owns. A node that does not own the room (its view
  // differs from the asker's) refuses rather than forwarding again: no request travels in circles.
  remote.serve(roomRemoteKind, (roomId, wire) => {
    if (!RoomId.safeParse(roomId).success) {
      return Promise.reject(new AppError('VALIDATION_FAILED', 'not a room id'));
    }
    if (!placement.isMine(roomId)) return Promise.reject(roomMovedError());
    return local(roomId).ask<unknown>((reply) => fromWire(wire, reply));
  });

  placement.onChange(() => {
    for (const roomId of actors.residentIds(roomKind)) {
      if (placement.isMine(roomId)) continue;
      try {
        actors.tellIfResident(roomKind, roomId, { type: 'handoff' });
      } catch (error) {
        log.warn({ err: error, roomId }, 'room actor refused a handoff');
      }
    }
  });

  const sleep = (ms: number) =>
    ms === 0 ? Promise.resolve() : new Promise<void>((resolve) => timers.schedule(ms, resolve));

  const askRouted = async <R>(
    roomId: RoomId,
    build: (reply: Reply<R>) => RoomCommand,
    timeoutMs: number | undefined,
  ): Promise<R> => {
    let lastError: unknown;
    for (const delay of RESEND_DELAYS_MS) {
      await sleep(delay);
      const owner = placement.ownerOf(roomId);
      const ref = owner === deps.nodeId ? local(roomId) : remote.ref(roomRemoteKind, roomId, owner);
      try {
        return await ref.ask<R>(build, timeoutMs);
      } catch (error) {
        lastError = error;
        if (isRoomMoved(error)) {
          await placement.refresh();
          continue;
        }
        if (isAppError(error) && error.details?.reason === NODE_GONE) {
          placement.suspect(owner);
          continue;
        }
        throw error;
      }
    }
    log.info({ roomId, err: lastError }, 'room request gave up while the room was moving');
    throw lastError;
  };

  return {
    room: (roomId) => ({
      kind: roomKind.kind,
      id: roomId,
      tell: (command) => {
        const owner = placement.ownerOf(roomId);
        if (owner === deps.nodeId) local(roomId).tell(command);
        else remote.ref(roomRemoteKind, roomId, owner).tell(command);
      },
      ask: (build, timeoutMs) => askRouted(roomId, build, timeoutMs),
    }),
    tellResident: (roomId, command) => actors.tellIfResident(roomKind, roomId, command),
  };
}
