/**
 * The actor runtime every realtime part runs on: virtual actors addressed by (kind, id), activated by
 * their first message, passivated when idle, restarted after a failing handler, drained at shutdown.
 *
 * One invariant carries everything: each actor has exactly one runner, an async loop that owns the
 * actor's lifecycle and handles its mailbox one message at a time. Activation, handling, restart and
 * onStop all happen inside that loop, so no two hooks of one actor ever overlap, even across awaits,
 * and a message that arrives while onStop runs simply waits in the mailbox for the next activation.
 * A runner is started (on a microtask, never inside the sender's call) when a message arrives for an
 * actor whose runner is not running, and it ends, in the same synchronous step that finds the mailbox
 * empty, so no message can slip in between.
 *
 * Per message the runtime does a Map lookup, a ring-buffer write and read, a few integer updates and a
 * bucket increment for the duration histogram (about 0.2 µs for tell + a synchronous handle); `tell`
 * allocates nothing, and timers are per idle period, not per message.
 */
import type { Registry } from 'prom-client';
import { AppError } from '../../platform/errors.js';
import type { Logger } from '../../platform/logger.js';
import { type CancelTimer, MAX_TIMER_DELAY_MS, type Timers } from '../../platform/timers.js';
import { createActorMetrics, type KindInstruments, type KindSnapshot } from './actor-metrics.js';
import { BoundedMailbox } from './mailbox.js';
import { type OpenRequest, PendingRequest } from './pending-request.js';
import type { ActorContext, ActorKind, ActorRef, Behavior, Reply } from './types.js';

/** Milliseconds an `ask` waits for its answer when the caller names no timeout. */
export const DEFAULT_ASK_TIMEOUT_MS = 5_000;

export interface ActorSystemOptions {
  readonly log: Logger;
  /** Idle passivation, ask timeouts, the stop deadline and actors' own timers run on these. */
  readonly timers: Timers;
  /** Registry for the gigwire_actor* instruments; it may hold only one actor system. */
  readonly metrics: Registry;
  /** Default ask timeout in milliseconds (DEFAULT_ASK_TIMEOUT_MS). */
  readonly askTimeoutMs?: number;
}

export interface ActorSystemStats {
  /** Activated actors in memory, per registered kind (0 included). */
  readonly alive: Readonly<Record<string, number>>;
  /** Messages waiting in every mailbox (messages being handled not counted). */
  readonly queued: number;
}

export interface ActorSystemStopResult {
  /** True when every mailbox drained and every onStop finished before the deadline. */
  readonly completed: boolean;
  /** Actors still busy at the deadline; their queued messages were dropped (asks: UNAVAILABLE). */
  readonly unfinished: number;
}

export interface ActorSystem {
  /** Makes a kind addressable. Throws on a duplicate kind name or invalid limits. */
  readonly register: <Msg>(kind: ActorKind<Msg>) => void;
  /**
   * A typed address; activates nothing by itself. `kind` must be the registered definition object,
   * which is what ties the message type to the kind name.
   */
  readonly ref: <Msg>(kind: ActorKind<Msg>, id: string) => ActorRef<Msg>;
  /**
   * Ids of the actors of `kind` in memory (activated, or with messages queued). For placement: the
   * rooms a node hosts, to hand off those that moved elsewhere.
   */
  readonly residentIds: <Msg>(kind: ActorKind<Msg>) => string[];
  /**
   * `tell` only when the actor is in memory; false (nothing sent, nothing activated) otherwise.
   * For messages that concern an activation only (reload your members, step down).
   */
  readonly tellIfResident: <Msg>(kind: ActorKind<Msg>, id: string, message: Msg) => boolean;
  readonly stats: () => ActorSystemStats;
  /**
   * Graceful stop: from now on `tell` throws and `ask` rejects with UNAVAILABLE (actors sending to
   * each other included); every mailbox is handled to the end and every live actor's onStop runs,
   * all within `timeoutMs`. At the deadline, actors still busy lose their queued messages, and every
   * open ask is rejected with UNAVAILABLE. Never rejects for an actor's sake; repeated calls share the
   * first call's result.
   */
  readonly stop: (timeoutMs: number) => Promise<ActorSystemStopResult>;
}

type StopReason = 'idle' | 'self' | 'restart' | 'shutdown';

const doNothing = (): void => undefined;

/** State shared by every kind of one system. */
class SystemCore {
  accepting = true;
  stopping = false;
  /** Actors whose runner is scheduled or running. */
  activeRunners = 0;
  /** Set by stop() while it waits for activeRunners to reach 0. */
  onRunnersIdle: (() => void) | undefined;
  readonly openRequests = new Set<OpenRequest>();

  constructor(
    readonly log: Logger,
    readonly timers: Timers,
    readonly askTimeoutMs: number,
  ) {}

  runnerFinished(): void {
    this.activeRunners--;
    if (this.activeRunners === 0 && this.onRunnersIdle !== undefined) this.onRunnersIdle();
  }
}

/** What the system does with a kind whatever its message type. */
interface RegisteredKind extends KindSnapshot {
  readonly definition: object;
  readonly beginShutdown: () => void;
  /** Drops the queues of actors still busy at the stop deadline; returns how many there were. */
  readonly abandonUnfinished: () => number;
}

class KindRuntime<Msg> implements RegisteredKind {
  readonly kind: string;
  readonly cells = new Map<string, ActorCell<Msg>>();
  alive = 0;
  queued = 0;

  constructor(
    readonly definition: ActorKind<Msg>,
    readonly core: SystemCore,
    readonly instruments: KindInstruments,
  ) {
    this.kind = definition.kind;
  }

  isResident(id: string): boolean {
    return this.cells.has(id);
  }

  tell(id: string, message: Msg): void {
    if (!this.core.accepting) throw this.unavailable();
    const cell = this.cellFor(id);
    if (!cell.mailbox.offer(message)) throw this.overflow();
    this.queued++;
    cell.wake();
  }

  ask<R>(id: string, build: (reply: Reply<R>) => Msg, timeoutMs: number): Promise<R> {
    if (!isAskTimeout(timeoutMs)) {
      return Promise.reject(
        new RangeError(`ask timeout must be 1 to ${MAX_TIMER_DELAY_MS} ms (got ${timeoutMs})`),
      );
    }
    if (!this.core.accepting) return Promise.reject(this.unavailable());
    const request = new PendingRequest<R>(this.core.openRequests);
    let message: Msg;
    try {
      message = build(request);
    } catch (error) {
      return Promise.reject(error);
    }
    // build() is caller code: it may have sent to this actor or stopped the system meanwhile.
    if (!this.core.accepting) return Promise.reject(this.unavailable());
    const cell = this.cellFor(id);
    if (!cell.mailbox.offer(message, request)) return Promise.reject(this.overflow());
    this.queued++;
    request.open(this.core.timers, timeoutMs, `the ${this.kind} actor`);
    cell.wake();
    return request.promise;
  }

  beginShutdown(): void {
    for (const cell of this.cells.values()) cell.beginShutdown();
  }

  abandonUnfinished(): number {
    const unfinished: string[] = [];
    for (const cell of this.cells.values()) {
      if (cell.abandonIfBusy()) unfinished.push(cell.id);
    }
    if (unfinished.length > 0) {
      this.core.log.warn(
        { actorKind: this.kind, unfinished: unfinished.length, actorIds: unfinished.slice(0, 20) },
        'actors still busy at the stop deadline; their queued messages were dropped',
      );
    }
    return unfinished.length;
  }

  private cellFor(id: string): ActorCell<Msg> {
    let cell = this.cells.get(id);
    if (cell === undefined) {
      cell = new ActorCell(this, id);
      this.cells.set(id, cell);
    }
    return cell;
  }

  private unavailable(): AppError {
    return new AppError(
      'UNAVAILABLE',
      `the ${this.kind} actor is not accepting messages: the node is stopping`,
    );
  }

  private overflow(): AppError {
    this.instruments.countOverflow();
    return new AppError(
      'RATE_LIMITED',
      `the ${this.kind} actor's mailbox is full (${this.definition.mailboxCapacity} messages)`,
    );
  }
}

/** One actor: its mailbox, its current activation (if any) and its runner. */
class ActorCell<Msg> {
  readonly mailbox: BoundedMailbox<Msg, OpenRequest>;
  readonly log: Logger;
  private behavior: Behavior<Msg> | undefined;
  private activation: Activation<Msg> | undefined;
  /** The runner is queued or running; true whenever the mailbox is not empty. */
  private scheduled = false;
  private stopRequest: 'idle' | 'self' | undefined;
  /** When the runner last went quiet (ms epoch); the idle clock starts here. */
  private lastActivityAt = 0;
  private cancelIdleTimer: CancelTimer | undefined;

  constructor(
    readonly owner: KindRuntime<Msg>,
    readonly id: string,
  ) {
    this.mailbox = new BoundedMailbox(owner.definition.mailboxCapacity);
    this.log = owner.core.log.child({ actorKind: owner.kind, actorId: id });
  }

  /** Makes sure the runner will look at the mailbox; a no-op while it is queued or running. */
  wake(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    this.owner.core.activeRunners++;
    queueMicrotask(this.run);
  }

  requestSelfStop(activation: Activation<Msg>): void {
    if (this.activation !== activation) return;
    this.stopRequest = 'self';
    this.wake();
  }

  beginShutdown(): void {
    this.clearIdleTimer();
    // The runner passivates the actor once its mailbox is empty (pendingStop sees `stopping`).
    this.wake();
  }

  abandonIfBusy(): boolean {
    if (!this.scheduled) return false;
    this.dropQueued(
      () => new AppError('UNAVAILABLE', `the ${this.owner.kind} actor stopped before handling this`),
    );
    this.activation?.close();
    return true;
  }

  // Bound once per actor so that waking it allocates nothing.
  private readonly run = (): void => {
    this.drain().catch(this.onRunnerFault);
  };

  private async drain(): Promise<void> {
    const { mailbox, owner } = this;
    for (;;) {
      const stopReason = this.pendingStop();
      if (stopReason !== undefined) {
        await this.deactivate(stopReason);
        continue;
      }
      if (mailbox.isEmpty) {
        this.finishRun();
        return;
      }
      let behavior = this.behavior;
      if (behavior === undefined) {
        behavior = await this.activate();
        if (behavior === undefined) continue;
      }
      const request = mailbox.peekAttachment();
      const message = mailbox.take();
      owner.queued--;
      const startedAt = performance.now();
      try {
        const handling = behavior.handle(message);
        // Awaiting only real promises keeps synchronous handlers free of a microtask hop each.
        if (handling !== undefined) await handling;
      } catch (error) {
        await this.restartAfter(error, behavior, message, request);
        continue;
      }
      owner.instruments.observeHandlerSeconds((performance.now() - startedAt) / 1_000);
    }
  }

  /** Whether the runner should stop the current activation before anything else. */
  private pendingStop(): StopReason | undefined {
    const requested = this.stopRequest;
    this.stopRequest = undefined;
    if (this.behavior === undefined) return undefined;
    if (requested === 'self') return 'self';
    if (!this.mailbox.isEmpty) return undefined; // an idle passivation that lost the race to a message
    if (this.owner.core.stopping) return 'shutdown';
    return requested;
  }

  /** Creates a fresh activation and runs its onStart; undefined (queue dropped) when that fails. */
  private async activate(): Promise<Behavior<Msg> | undefined> {
    const activation = new Activation(this);
    this.activation = activation;
    try {
      const behavior = this.owner.definition.create(this.id, activation);
      const starting = behavior.onStart?.();
      if (starting !== undefined) await starting;
      this.behavior = behavior;
      this.owner.alive++;
      this.log.debug('actor activated');
      return behavior;
    } catch (error) {
      activation.close();
      this.activation = undefined;
      const dropped = this.dropQueued(
        () => new AppError('UNAVAILABLE', `the ${this.owner.kind} actor could not start`, { cause: error }),
      );
      this.log.error({ err: error, dropped }, 'actor activation failed; its waiting messages were dropped');
      return undefined;
    }
  }

  private async restartAfter(
    error: unknown,
    behavior: Behavior<Msg>,
    message: Msg,
    request: OpenRequest | undefined,
  ): Promise<void> {
    this.log.error({ err: error }, 'actor handler failed; the message is dropped and the actor restarted');
    request?.fail(
      new AppError('INTERNAL', `the ${this.owner.kind} actor failed to handle the request`, { cause: error }),
    );
    try {
      behavior.onError?.(error, message);
    } catch (hookError) {
      this.log.error({ err: hookError }, 'actor onError hook threw');
    }
    this.owner.instruments.countRestart();
    // The fresh activation (create + onStart) happens lazily, before the next message.
    await this.deactivate('restart');
  }

  private async deactivate(reason: StopReason): Promise<void> {
    const behavior = this.behavior;
    if (behavior === undefined) return;
    this.behavior = undefined;
    this.activation?.close();
    this.activation = undefined;
    this.owner.alive--;
    try {
      const stopping = behavior.onStop?.();
      if (stopping !== undefined) await stopping;
    } catch (error) {
      this.log.error({ err: error, reason }, 'actor onStop failed');
    }
    this.log.debug({ reason }, 'actor stopped');
  }

  /** The runner's last synchronous step: nothing can be queued between the empty check and this. */
  private finishRun(): void {
    this.scheduled = false;
    const { core } = this.owner;
    if (this.behavior === undefined) {
      this.clearIdleTimer();
      if (this.owner.cells.get(this.id) === this) this.owner.cells.delete(this.id);
    } else if (!core.stopping) {
      this.lastActivityAt = core.timers.now();
      this.armIdleTimer();
    }
    core.runnerFinished();
  }

  private armIdleTimer(): void {
    const { idleMs } = this.owner.definition;
    if (this.cancelIdleTimer !== undefined || idleMs === Number.POSITIVE_INFINITY) return;
    this.cancelIdleTimer = this.owner.core.timers.schedule(idleMs, this.onIdleTimer);
  }

  private clearIdleTimer(): void {
    this.cancelIdleTimer?.();
    this.cancelIdleTimer = undefined;
  }

  // One timer per idle period, re-armed for the remainder when activity moved the deadline, instead
  // of a reset per message.
  private readonly onIdleTimer = (): void => {
    this.cancelIdleTimer = undefined;
    const { core, definition } = this.owner;
    if (this.scheduled || this.behavior === undefined || core.stopping) return;
    const idleFor = core.timers.now() - this.lastActivityAt;
    if (idleFor < definition.idleMs) {
      // min(): a wall clock set backwards must not push the timer beyond idleMs.
      const remaining = Math.min(definition.idleMs, definition.idleMs - idleFor);
      this.cancelIdleTimer = core.timers.schedule(remaining, this.onIdleTimer);
      return;
    }
    this.stopRequest = 'idle';
    this.wake();
  };

  private dropQueued(reason: () => AppError): number {
    const dropped = this.mailbox.clear((_message, request) => request?.fail(reason()));
    this.owner.queued -= dropped;
    return dropped;
  }

  // Every hook is guarded inside drain(), so reaching this is a runtime bug; keep the node alive.
  private readonly onRunnerFault = (error: unknown): void => {
    this.log.error({ err: error }, 'actor runtime fault; the actor is reset');
    this.dropQueued(() => new AppError('INTERNAL', `the ${this.owner.kind} actor failed`, { cause: error }));
    this.activation?.close();
    this.activation = undefined;
    if (this.behavior !== undefined) {
      this.behavior = undefined;
      this.owner.alive--;
    }
    if (this.scheduled) this.finishRun();
  };
}

/** The context of one activation; closing it cancels its timers and disarms stopSelf. */
class Activation<Msg> implements ActorContext<Msg> {
  readonly kind: string;
  readonly id: string;
  readonly log: Logger;
  readonly self: ActorRef<Msg>;
  readonly timers: Timers;
  private readonly pendingTimers = new Set<CancelTimer>();
  private closed = false;

  constructor(private readonly cell: ActorCell<Msg>) {
    this.kind = cell.owner.kind;
    this.id = cell.id;
    this.log = cell.log;
    this.self = new LocalActorRef(cell.owner, cell.id);
    this.timers = { now: cell.owner.core.timers.now, schedule: this.schedule };
  }

  readonly stopSelf = (): void => this.cell.requestSelfStop(this);

  close(): void {
    this.closed = true;
    for (const cancel of [...this.pendingTimers]) cancel();
  }

  private readonly schedule = (delayMs: number, callback: () => void): CancelTimer => {
    if (this.closed) return doNothing;
    const timer: { cancelUnderlying: CancelTimer } = { cancelUnderlying: doNothing };
    const cancel: CancelTimer = () => {
      if (this.pendingTimers.delete(cancel)) timer.cancelUnderlying();
    };
    timer.cancelUnderlying = this.cell.owner.core.timers.schedule(delayMs, () => {
      if (!this.pendingTimers.delete(cancel)) return;
      try {
        callback();
      } catch (error) {
        // A throw from a timer callback would otherwise be an uncaught exception that ends the node.
        this.log.error({ err: error }, 'actor timer callback threw');
      }
    });
    this.pendingTimers.add(cancel);
    return cancel;
  };
}

/**
 * Prototype methods, so that `system.ref(kind, id).tell(msg)` costs one small object: call them on the
 * ref rather than detaching them.
 */
class LocalActorRef<Msg> implements ActorRef<Msg> {
  readonly kind: string;

  constructor(
    private readonly runtime: KindRuntime<Msg>,
    readonly id: string,
  ) {
    this.kind = runtime.kind;
  }

  tell(message: Msg): void {
    this.runtime.tell(this.id, message);
  }

  ask<R>(build: (reply: Reply<R>) => Msg, timeoutMs?: number): Promise<R> {
    return this.runtime.ask(this.id, build, timeoutMs ?? this.runtime.core.askTimeoutMs);
  }
}

const isAskTimeout = (timeoutMs: number): boolean => timeoutMs > 0 && timeoutMs <= MAX_TIMER_DELAY_MS;

function assertValidKind(kind: Pick<ActorKind<unknown>, 'kind' | 'mailboxCapacity' | 'idleMs'>): void {
  if (kind.kind.length === 0) throw new RangeError('an actor kind needs a name');
  if (!(Number.isInteger(kind.mailboxCapacity) && kind.mailboxCapacity >= 1)) {
    throw new RangeError(
      `${kind.kind}: mailboxCapacity must be a whole number ≥ 1 (got ${kind.mailboxCapacity})`,
    );
  }
  if (
    !(kind.idleMs === Number.POSITIVE_INFINITY || (kind.idleMs >= 0 && kind.idleMs <= MAX_TIMER_DELAY_MS))
  ) {
    throw new RangeError(
      `${kind.kind}: idleMs must be between 0 and ${MAX_TIMER_DELAY_MS} ms, or Infinity (got ${kind.idleMs})`,
    );
  }
}

/** Creates an actor system; nothing runs until a message is sent. */
export function createActorSystem(options: ActorSystemOptions): ActorSystem {
  const { log, timers } = options;
  const askTimeoutMs = options.askTimeoutMs ?? DEFAULT_ASK_TIMEOUT_MS;
  if (!isAskTimeout(askTimeoutMs)) throw new RangeError(`askTimeoutMs must be 1 to ${MAX_TIMER_DELAY_MS} ms`);
  const core = new SystemCore(log, timers, askTimeoutMs);
  const kinds = new Map<string, RegisteredKind>();
  const metrics = createActorMetrics(options.metrics, () => kinds.values());
  let stopped: Promise<ActorSystemStopResult> | undefined;

  const runtimeOf = <Msg>(kind: ActorKind<Msg>): KindRuntime<Msg> => {
    const registered = kinds.get(kind.kind);
    if (registered === undefined || registered.definition !== kind) {
      throw new Error(`actor kind ${kind.kind} is not registered (register the same definition object)`);
    }
    // Sound: the identity check above proves this runtime was built from this very ActorKind<Msg>.
    return registered as KindRuntime<Msg>;
  };

  const shutdown = async (timeoutMs: number): Promise<ActorSystemStopResult> => {
    const startedAt = timers.now();
    core.accepting = false;
    core.stopping = true;
    for (const kind of kinds.values()) kind.beginShutdown();
    if (core.activeRunners > 0) {
      let cancelDeadline: CancelTimer = doNothing;
      await new Promise<void>((resolve) => {
        core.onRunnersIdle = resolve;
        cancelDeadline = timers.schedule(timeoutMs, resolve);
      });
      cancelDeadline();
      core.onRunnersIdle = undefined;
    }
    let unfinished = 0;
    for (const kind of kinds.values()) unfinished += kind.abandonUnfinished();
    // Asks answered by nobody (handled without a reply, or dropped above) must not hang their callers.
    for (const request of [...core.openRequests]) {
      request.fail(new AppError('UNAVAILABLE', 'the actor system stopped before answering'));
    }
    const result = { completed: unfinished === 0, unfinished };
    log.info({ ...result, ms: timers.now() - startedAt }, 'actor system stopped');
    return result;
  };

  return {
    register: (kind) => {
      if (!core.accepting) throw new Error(`cannot register ${kind.kind}: the actor system is stopping`);
      if (kinds.has(kind.kind)) throw new Error(`actor kind ${kind.kind} is already registered`);
      assertValidKind(kind);
      kinds.set(kind.kind, new KindRuntime(kind, core, metrics.forKind(kind.kind)));
    },
    ref: <Msg>(kind: ActorKind<Msg>, id: string): ActorRef<Msg> => new LocalActorRef(runtimeOf(kind), id),
    residentIds: (kind) => [...runtimeOf(kind).cells.keys()],
    tellIfResident: (kind, id, message) => {
      const runtime = runtimeOf(kind);
      if (!runtime.isResident(id)) return false;
      runtime.tell(id, message);
      return true;
    },
    stats: () => {
      const alive: Record<string, number> = {};
      let queued = 0;
      for (const kind of kinds.values()) {
        alive[kind.kind] = kind.alive;
        queued += kind.queued;
      }
      return { alive, queued };
    },
    stop: (timeoutMs) => {
      if (!(Number.isFinite(timeoutMs) && timeoutMs >= 0)) {
        return Promise.reject(new RangeError(`stop timeout must be ≥ 0 ms (got ${timeoutMs})`));
      }
      stopped ??= shutdown(timeoutMs);
      return stopped;
    },
  };
}
