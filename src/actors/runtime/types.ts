/**
 * The contract between the actor runtime and the actors that run on it (user, room, …): how a kind
 * of actor is defined, what it may rely on, and how others talk to it.
 */
import type { AppError } from '../../platform/errors.js';
import type { Logger } from '../../platform/logger.js';
import type { Timers } from '../../platform/timers.js';

/**
 * The answer channel of a request made with `ActorRef.ask`. The first `ok` or `fail` settles the
 * request; later calls, and calls after the asker timed out, are ignored. A handler may keep it and
 * settle later (e.g. after a batched database write); the asker's timeout bounds the wait.
 */
export interface Reply<R> {
  readonly ok: (value: R) => void;
  /**
   * Answers with an expected failure (FORBIDDEN, NOT_FOUND, CONFLICT, …) without failing the actor.
   * Throwing from the handler instead means a bug: the actor restarts and the asker gets INTERNAL.
   */
  readonly fail: (error: AppError) => void;
  /** True once answered or timed out: lets a handler skip work nobody waits for any more. */
  readonly settled: boolean;
}

/**
 * A typed address of one actor: `kind` plus `id`. Cheap to create and to keep; sending to it
 * activates the actor when it is not in memory.
 */
export interface ActorRef<Msg> {
  readonly kind: string;
  readonly id: string;
  /**
   * Queues a message; never runs the handler synchronously (no re-entrancy into the caller).
   * Throws AppError RATE_LIMITED when the mailbox is full (the message is not queued) and
   * AppError UNAVAILABLE once the actor system is stopping.
   */
  readonly tell: (message: Msg) => void;
  /**
   * Request/reply: `build` receives the Reply and returns the message that carries it, e.g.
   * `ref.ask<number>((reply) => ({ type: 'count', reply }))`. Rejects with AppError RATE_LIMITED when
   * the mailbox is full, UNAVAILABLE after `timeoutMs` without an answer (default: the system's
   * askTimeoutMs) or when the system is stopping, INTERNAL when the handler of this message throws,
   * or the AppError the handler passed to `reply.fail`. A timed-out message stays queued and is still
   * handled; its late answer is dropped.
   */
  readonly ask: <R>(build: (reply: Reply<R>) => Msg, timeoutMs?: number) => Promise<R>;
}

/** What the runtime hands to one activation of an actor. */
export interface ActorContext<Msg> {
  readonly kind: string;
  readonly id: string;
  /** Child logger bound to `actorKind` and `actorId`. */
  readonly log: Logger;
  /**
   * Timers of this activation: every pending one is cancelled when the activation stops (passivation,
   * restart, shutdown), and scheduling after that does nothing. Callbacks run outside the mailbox,
   * possibly while a handler awaits: they must not touch state, only `self.tell(…)` a message.
   */
  readonly timers: Timers;
  readonly self: ActorRef<Msg>;
  /**
   * Passivates this activation after the message being handled (onStop runs); messages already queued
   * are handled by a fresh activation. No effect once this activation has stopped.
   */
  readonly stopSelf: () => void;
}

/**
 * One activation of an actor. State lives in the closure or class fields that `create` builds and is
 * touched only by these hooks, which the runtime never runs concurrently for one actor.
 */
export interface Behavior<Msg> {
  /** Activation, before the first message (load state, e.g. from PostgreSQL). A throw drops the waiting messages. */
  readonly onStart?: () => Promise<void> | void;
  /** One message; the next one waits until this returns or its promise settles. Throwing = bug → restart. */
  readonly handle: (message: Msg) => Promise<void> | void;
  /** Passivation, restart after a failure, or shutdown. Best effort: a throw is logged, nothing more. */
  readonly onStop?: () => Promise<void> | void;
  /** Told about a handler failure before the restart (runs synchronously; must not throw). */
  readonly onError?: (error: unknown, message: Msg) => void;
}

/**
 * A kind of actor (`user`, `room`): its limits and how to build an activation. Register it once with
 * `ActorSystem.register`, then address actors through `ActorSystem.ref(kind, id)`.
 */
export interface ActorKind<Msg> {
  /** Unique per system; used in logs and as the `kind` metric label (ids never become labels). */
  readonly kind: string;
  /** Most messages queued per actor, not counting the one being handled (whole number ≥ 1). */
  readonly mailboxCapacity: number;
  /**
   * Milliseconds without messages after which the actor passivates (onStop runs, it leaves memory).
   * `Number.POSITIVE_INFINITY` keeps it until shutdown. At most MAX_TIMER_DELAY_MS otherwise.
   */
  readonly idleMs: number;
  /** Builds a fresh activation. Called again after passivation and after every failure. */
  readonly create: (id: string, context: ActorContext<Msg>) => Behavior<Msg>;
}
