/** Public surface of the actor runtime; actors and composition roots import from here. */
export {
  type ActorSystem,
  type ActorSystemOptions,
  type ActorSystemStats,
  type ActorSystemStopResult,
  createActorSystem,
  DEFAULT_ASK_TIMEOUT_MS,
} from './actor-system.js';
export {
  createRemoteActors,
  NO_ANSWER,
  NODE_GONE,
  type RemoteActors,
  type RemoteHandler,
  type RemoteKind,
} from './remote.js';
export type { ActorContext, ActorKind, ActorRef, Behavior, Reply } from './types.js';
