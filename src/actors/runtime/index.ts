/** Public surface of the actor runtime; actors and composition roots import from here. */
export {
  type ActorSystem,
  type ActorSystemOptions,
  type ActorSystemStats,
  type ActorSystemStopResult,
  createActorSystem,
  DEFAULT_ASK_TIMEOUT_MS,
} from './actor-system.js';
export type { ActorContext, ActorKind, ActorRef, Behavior, Reply } from './types.js';
