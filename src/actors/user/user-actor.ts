/**
 * UserActor: one per user with a personal push (notification, wallet, market event) to deliver on
 * this node, alive only while it has one to deliver. It never holds sockets: it reaches them
 * through the ClientSink port. Sockets opening and closing do not pass through it: presence is
 * counted per batch by the presence service (a connect activates no actor).
 */
import type {
  MarketEventPayload,
  NotificationPayload,
  ServerFrame,
  WalletPayload,
} from '../../../protocol/src/frames.js';
import type { UserId } from '../../../protocol/src/ids.js';
import type { ActorKind } from '../runtime/types.js';

/** How actors reach the sockets of this node. */
export interface ClientSink {
  readonly pushToUser: (userId: UserId, frame: ServerFrame) => void;
}

export type UserMessage =
  | { readonly type: 'notify'; readonly notification: NotificationPayload }
  | { readonly type: 'wallet'; readonly wallet: WalletPayload }
  | { readonly type: 'market'; readonly event: MarketEventPayload };

export const USER_ACTOR = 'user';

export function userActorKind(deps: {
  readonly sink: ClientSink;
  /** Parses an actor id back into a UserId (ids are UserIds by construction). */
  readonly toUserId: (id: string) => UserId;
}): ActorKind<UserMessage> {
  return {
    kind: USER_ACTOR,
    mailboxCapacity: 1024,
    // Stateless: an idle connection keeps no actor or timer in memory.
    idleMs: 0,
    create: (id) => {
      const userId = deps.toUserId(id);
      return {
        handle: async (message) => {
          switch (message.type) {
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
