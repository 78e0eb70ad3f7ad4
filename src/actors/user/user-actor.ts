/**
 * UserActor: one per user with live sockets on this node. It serializes what happens to the user
 * here (sockets opening and closing, personal pushes), so presence counts in Redis change in the
 * order the sockets did. It never holds sockets: it reaches them through the ClientSink port.
 */
import type {
  MarketEventPayload,
  NotificationPayload,
  ServerFrame,
  WalletPayload,
} from '../../../protocol/src/frames.js';
import type { UserId } from '../../../protocol/src/ids.js';
import type { PresenceService } from '../../domain/presence/service.js';
import type { ActorKind } from '../runtime/types.js';

/** How actors reach the sockets of this node. */
export interface ClientSink {
  readonly pushToUser: (userId: UserId, frame: ServerFrame) => void;
}

export type UserMessage =
  | { readonly type: 'socket-opened' }
  | { readonly type: 'socket-closed' }
  | { readonly type: 'notify'; readonly notification: NotificationPayload }
  | { readonly type: 'wallet'; readonly wallet: WalletPayload }
  | { readonly type: 'market'; readonly event: MarketEventPayload };

export const USER_ACTOR = 'user';

export function userActorKind(deps: {
  readonly presence: PresenceService;
  readonly sink: ClientSink;
  /** Parses an actor id back into a UserId (ids are UserIds by construction). */
  readonly toUserId: (id: string) => UserId;
}): ActorKind<UserMessage> {
  return {
    kind: USER_ACTOR,
    mailboxCapacity: 1024,
    // Stateless (presence lives in Redis): an idle connection keeps no actor or timer in memory.
    idleMs: 0,
    create: (id) => {
      const userId = deps.toUserId(id);
      return {
        handle: async (message) => {
          switch (message.type) {
            case 'socket-opened':
              await deps.presence.connected(userId);
              return;
            case 'socket-closed':
              await deps.presence.disconnected(userId);
              return;
            case 'notify':
              deps.sink.pushToUser(userId, { t: 'notification', d: message.notification });
              return;
            case 'wallet':
              deps.sink.pushToUser(userId, { t: 'wallet', d: message.wallet });
              return;
            case 'market':
              deps.sink.pushToUser(userId, { t: 'market', d: message.event });
              return;
          }
        },
      };
    },
  };
}
