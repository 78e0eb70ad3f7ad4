import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AppError, isAppError } from '../../platform/errors.js';
import { createLogger } from '../../platform/logger.js';
import { createManualTimers, type ManualTimers } from '../../platform/timers.js';
import { type ActorSystem, createActorSystem } from './actor-system.js';
import type { ActorContext, ActorKind, Reply } from './types.js';

interface LogLine {
  readonly level: number;
  readonly msg: string;
  readonly actorKind?: string;
  readonly actorId?: string;
  readonly err?: { readonly message: string };
}

const ERROR_LEVEL = 50;
const ASK_TIMEOUT_MS = 1_000;

interface Harness {
  readonly timers: ManualTimers;
  readonly registry: Registry;
  readonly system: ActorSystem;
  readonly logLines: LogLine[];
}

function createHarness(): Harness {
  const timers = createManualTimers(1_700_000_000_000);
  const logLines: LogLine[] = [];
  const log = createLogger({
    level: 'debug',
    pretty: false,
    destination: { write: (line: string) => void logLines.push(JSON.parse(line) as LogLine) },
  });
  const registry = new Registry();
  const system = createActorSystem({ log, timers, metrics: registry, askTimeoutMs: ASK_TIMEOUT_MS });
  return { timers, registry, system, logLines };
}

/** Lets every promise chain started so far run to completion (no real timers are involved). */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

interface Deferred {
  readonly promise: Promise<void>;
  readonly resolve: () => void;
}

function deferred(): Deferred {
  let resolve: () => void = () => undefined;
  const promise = new Promise<void>((done) => {
    resolve = done;
  });
  return { promise, resolve };
}

async function rejection(promise: Promise<unknown>): Promise<AppError> {
  try {
    await promise;
  } catch (error) {
    if (isAppError(error)) return error;
    throw error;
  }
  throw new Error('expected the promise to reject');
}

function thrownBy(action: () => void): AppError {
  try {
    action();
  } catch (error) {
    if (isAppError(error)) return error;
    throw error;
  }
  throw new Error('expected a throw');
}

/**
 * A counter whose state survives passivation through a fake table: onStart loads, onStop saves.
 * Records every lifecycle event so tests can assert the order of hooks.
 */
type CounterMessage =
  | { readonly type: 'add'; readonly by: number }
  | { readonly type: 'get'; readonly reply: Reply<number> }
  | { readonly type: 'wait'; readonly gate: Promise<void> }
  | { readonly type: 'boom' }
  | { readonly type: 'reject-later' }
  | { readonly type: 'leave' }
  | { readonly type: 'ignore'; readonly reply: Reply<number> }
  | { readonly type: 'forbid'; readonly reply: Reply<number> };

interface CounterWorld {
  readonly kind: ActorKind<CounterMessage>;
  readonly table: Map<string, number>;
  readonly events: string[];
  /** Contexts handed to each activation, newest last. */
  readonly contexts: ActorContext<CounterMessage>[];
  onStartGate: Promise<void> | undefined;
  onStopGate: Promise<void> | undefined;
  failNextStart: boolean;
}

function counterWorld(limits: { mailboxCapacity?: number; idleMs?: number } = {}): CounterWorld {
  const world: CounterWorld = {
    table: new Map(),
    events: [],
    contexts: [],
    onStartGate: undefined,
    onStopGate: undefined,
    failNextStart: false,
    kind: {
      kind: 'counter',
      mailboxCapacity: limits.mailboxCapacity ?? 16,
      idleMs: limits.idleMs ?? 10_000,
      create: (id, context) => {
        world.contexts.push(context);
        const generation = world.contexts.length;
        world.events.push(`create ${id}#${generation}`);
        let count = 0;
        return {
          onStart: async () => {
            world.events.push(`start ${id}#${generation}`);
            if (world.onStartGate !== undefined) await world.onStartGate;
            if (world.failNextStart) {
              world.failNextStart = false;
              throw new Error('database down');
            }
            count = world.table.get(id) ?? 0;
            world.events.push(`started ${id}#${generation} count=${count}`);
          },
          handle: async (message) => {
            world.events.push(`handle ${id}#${generation} ${message.type}`);
            switch (message.type) {
              case 'add':
                count += message.by;
                return;
              case 'get':
                message.reply.ok(count);
                return;
              case 'wait':
                await message.gate;
                return;
              case 'boom':
                throw new Error('kaput');
              case 'reject-later':
                await Promise.resolve();
                throw new Error('kaput later');
              case 'leave':
                context.stopSelf();
                return;
              case 'ignore':
                return;
              case 'forbid':
                message.reply.fail(new AppError('FORBIDDEN', 'not yours'));
                return;
            }
          },
          onStop: async () => {
            world.events.push(`stop ${id}#${generation}`);
            if (world.onStopGate !== undefined) await world.onStopGate;
            world.table.set(id, count);
            world.events.push(`stopped ${id}#${generation}`);
          },
          onError: (error, message) => {
            world.events.push(`error ${id}#${generation} ${message.type}: ${(error as Error).message}`);
          },
        };
      },
    },
  };
  return world;
}

const unhandledRejections: unknown[] = [];
const onUnhandledRejection = (reason: unknown) => unhandledRejections.push(reason);

beforeEach(() => {
  unhandledRejections.length = 0;
  process.on('unhandledRejection', onUnhandledRejection);
});

afterEach(async () => {
  await settle();
  process.off('unhandledRejection', onUnhandledRejection);
  expect(unhandledRejections).toEqual([]);
});

describe('mailbox processing', () => {
  it('handles messages in arrival order, one at a time, even when handlers await', async () => {
    const { system } = createHarness();
    const trace: string[] = [];
    let running = 0;
    let mostRunning = 0;
    const kind: ActorKind<number> = {
      kind: 'sequencer',
      mailboxCapacity: 100,
      idleMs: 60_000,
      create: () => ({
        handle: async (n) => {
          running++;
          mostRunning = Math.max(mostRunning, running);
          trace.push(`begin ${n}`);
          // A different number of turns per message: interleaving would show up as out-of-order ends.
          for (let turn = 0; turn < (n * 7) % 5; turn++) await Promise.resolve();
          trace.push(`end ${n}`);
          running--;
        },
      }),
    };
    system.register(kind);
    const ref = system.ref(kind, 'one');
    for (let n = 1; n <= 30; n++) ref.tell(n);
    await settle();
    expect(mostRunning).toBe(1);
    expect(trace).toEqual(
      Array.from({ length: 30 }, (_, index) => [`begin ${index + 1}`, `end ${index + 1}`]).flat(),
    );
  });

  it('never runs the handler inside tell()', async () => {
    const { system } = createHarness();
    const world = counterWorld();
    system.register(world.kind);
    system.ref(world.kind, 'a').tell({ type: 'add', by: 1 });
    expect(world.events).toEqual([]);
    await settle();
    expect(world.events).toContain('handle a#1 add');
  });

  it('runs different actors concurrently: one waiting actor does not hold up another', async () => {
    const { system } = createHarness();
    const world = counterWorld();
    system.register(world.kind);
    const gate = deferred();
    system.ref(world.kind, 'slow').tell({ type: 'wait', gate: gate.promise });
    system.ref(world.kind, 'slow').tell({ type: 'add', by: 1 });
    system.ref(world.kind, 'fast').tell({ type: 'add', by: 1 });
    await settle();
    expect(world.events).toContain('handle fast#2 add');
    expect(world.events).not.toContain('handle slow#1 add');
    gate.resolve();
    await settle();
    expect(world.events).toContain('handle slow#1 add');
  });
});

describe('activation', () => {
  it('is lazy, and onStart finishes before the first message; messages sent meanwhile wait in order', async () => {
    const { system } = createHarness();
    const world = counterWorld();
    system.register(world.kind);
    world.table.set('a', 40);
    const startGate = deferred();
    world.onStartGate = startGate.promise;

    const ref = system.ref(world.kind, 'a');
    await settle();
    expect(world.events).toEqual([]);
    expect(system.stats()).toEqual({ alive: { counter: 0 }, queued: 0 });

    ref.tell({ type: 'add', by: 1 });
    await settle();
    expect(world.events).toEqual(['create a#1', 'start a#1']);
    ref.tell({ type: 'add', by: 1 });
    const answer = ref.ask<number>((reply) => ({ type: 'get', reply }));
    expect(system.stats().queued).toBe(3);

    startGate.resolve();
    expect(await answer).toBe(42);
    expect(world.events).toEqual([
      'create a#1',
      'start a#1',
      'started a#1 count=40',
      'handle a#1 add',
      'handle a#1 add',
      'handle a#1 get',
    ]);
    expect(system.stats()).toEqual({ alive: { counter: 1 }, queued: 0 });
  });

  it('a failing onStart drops the waiting messages with UNAVAILABLE; the next message activates again', async () => {
    const { system, logLines } = createHarness();
    const world = counterWorld();
    system.register(world.kind);
    world.failNextStart = true;
    const ref = system.ref(world.kind, 'a');

    ref.tell({ type: 'add', by: 5 });
    const dropped = ref.ask<number>((reply) => ({ type: 'get', reply }));
    expect((await rejection(dropped)).code).toBe('UNAVAILABLE');
    expect(world.events).not.toContain('handle a#1 add');
    expect(system.stats()).toEqual({ alive: { counter: 0 }, queued: 0 });
    expect(logLines).toContainEqual(
      expect.objectContaining({
        level: ERROR_LEVEL,
        actorKind: 'counter',
        actorId: 'a',
        err: expect.anything(),
      }),
    );

    ref.tell({ type: 'add', by: 2 });
    expect(await ref.ask<number>((reply) => ({ type: 'get', reply }))).toBe(2);
    expect(world.events.filter((event) => event.startsWith('create'))).toEqual(['create a#1', 'create a#2']);
  });
});

describe('passivation', () => {
  it('stops an actor idle for idleMs; the next message reactivates it with state from onStart', async () => {
    const { system, timers } = createHarness();
    const world = counterWorld({ idleMs: 1_000 });
    system.register(world.kind);
    const ref = system.ref(world.kind, 'a');
    ref.tell({ type: 'add', by: 5 });
    await settle();

    timers.advance(999);
    await settle();
    expect(system.stats().alive).toEqual({ counter: 1 });
    expect(world.events).not.toContain('stop a#1');

    timers.advance(1);
    await settle();
    expect(world.events.slice(-2)).toEqual(['stop a#1', 'stopped a#1']);
    expect(system.stats().alive).toEqual({ counter: 0 });
    expect(world.table.get('a')).toBe(5);
    expect(timers.pending()).toBe(0);

    expect(await ref.ask<number>((reply) => ({ type: 'get', reply }))).toBe(5);
    expect(world.events.slice(-3)).toEqual(['start a#2', 'started a#2 count=5', 'handle a#2 get']);
  });

  it('measures idleness from the last message, not the first', async () => {
    const { system, timers } = createHarness();
    const world = counterWorld({ idleMs: 1_000 });
    system.register(world.kind);
    const ref = system.ref(world.kind, 'a');
    ref.tell({ type: 'add', by: 1 });
    await settle();
    timers.advance(600);
    ref.tell({ type: 'add', by: 1 });
    await settle();
    timers.advance(400);
    await settle();
    expect(system.stats().alive).toEqual({ counter: 1 });
    timers.advance(599);
    await settle();
    expect(system.stats().alive).toEqual({ counter: 1 });
    timers.advance(1);
    await settle();
    expect(system.stats().alive).toEqual({ counter: 0 });
  });

  it('does not lose a message that arrives while onStop runs: the next activation handles it', async () => {
    const { system, timers } = createHarness();
    const world = counterWorld({ idleMs: 1_000 });
    system.register(world.kind);
    const ref = system.ref(world.kind, 'a');
    ref.tell({ type: 'add', by: 1 });
    await settle();
    const stopGate = deferred();
    world.onStopGate = stopGate.promise;

    timers.advance(1_000);
    await settle();
    expect(world.events.at(-1)).toBe('stop a#1');
    ref.tell({ type: 'add', by: 10 });
    const answer = ref.ask<number>((reply) => ({ type: 'get', reply }));
    await settle();
    expect(world.events.at(-1)).toBe('stop a#1');

    world.onStopGate = undefined;
    stopGate.resolve();
    expect(await answer).toBe(11);
    expect(world.events.slice(-6)).toEqual([
      'stopped a#1',
      'create a#2',
      'start a#2',
      'started a#2 count=1',
      'handle a#2 add',
      'handle a#2 get',
    ]);
  });

  it('stopSelf passivates after the current message; the actor comes back on the next one', async () => {
    const { system } = createHarness();
    const world = counterWorld();
    system.register(world.kind);
    const ref = system.ref(world.kind, 'a');
    ref.tell({ type: 'add', by: 3 });
    ref.tell({ type: 'leave' });
    await settle();
    expect(world.events.slice(-3)).toEqual(['handle a#1 leave', 'stop a#1', 'stopped a#1']);
    expect(system.stats().alive).toEqual({ counter: 0 });
    expect(await ref.ask<number>((reply) => ({ type: 'get', reply }))).toBe(3);
  });

  it("cancels the activation's own timers when it stops and contains a throwing timer callback", async () => {
    const { system, timers, logLines } = createHarness();
    const world = counterWorld({ idleMs: 5_000 });
    system.register(world.kind);
    const ref = system.ref(world.kind, 'a');
    ref.tell({ type: 'add', by: 1 });
    await settle();
    const context = world.contexts[0];
    if (context === undefined) throw new Error('no activation');
    const fired: string[] = [];
    context.timers.schedule(100, () => {
      fired.push('throwing');
      throw new Error('timer bug');
    });
    context.timers.schedule(10_000, () => fired.push('too late'));
    timers.advance(100);
    expect(fired).toEqual(['throwing']);
    expect(logLines).toContainEqual(
      expect.objectContaining({ level: ERROR_LEVEL, msg: 'actor timer callback threw' }),
    );

    timers.advance(4_900);
    await settle();
    expect(system.stats().alive).toEqual({ counter: 0 });
    expect(timers.pending()).toBe(0);
    timers.advance(10_000);
    expect(fired).toEqual(['throwing']);
    context.timers.schedule(1, () => fired.push('after stop'));
    expect(timers.pending()).toBe(0);
  });
});

describe('bounded mailbox', () => {
  it('refuses messages beyond capacity with RATE_LIMITED and never queues more than capacity', async () => {
    const { system } = createHarness();
    const world = counterWorld({ mailboxCapacity: 3 });
    system.register(world.kind);
    const ref = system.ref(world.kind, 'a');
    const gate = deferred();
    ref.tell({ type: 'wait', gate: gate.promise });
    await settle(); // the first message is now being handled and no longer counts as queued

    const outcomes: string[] = [];
    for (let index = 0; index < 10; index++) {
      try {
        ref.tell({ type: 'add', by: 1 });
        outcomes.push('queued');
      } catch (error) {
        outcomes.push(isAppError(error) ? error.code : 'other');
      }
      expect(system.stats().queued).toBeLessThanOrEqual(3);
    }
    expect(outcomes).toEqual(['queued', 'queued', 'queued', ...Array(7).fill('RATE_LIMITED')]);
    const refused = ref.ask<number>((reply) => ({ type: 'get', reply }));
    expect((await rejection(refused)).code).toBe('RATE_LIMITED');
    expect(system.stats().queued).toBe(3);

    gate.resolve();
    await settle();
    expect(await ref.ask<number>((reply) => ({ type: 'get', reply }))).toBe(3);
  });
});

describe('supervision', () => {
  it('logs a throwing handler, drops its message, restarts the actor and serves the next message from a fresh instance', async () => {
    const { system, logLines } = createHarness();
    const world = counterWorld();
    system.register(world.kind);
    const ref = system.ref(world.kind, 'a');
    ref.tell({ type: 'add', by: 1 });
    ref.tell({ type: 'boom' });
    ref.tell({ type: 'add', by: 2 });
    const answer = ref.ask<number>((reply) => ({ type: 'get', reply }));
    // The failed instance saved count=1 in onStop (best effort); the fresh one loads it.
    expect(await answer).toBe(3);
    expect(world.events).toEqual([
      'create a#1',
      'start a#1',
      'started a#1 count=0',
      'handle a#1 add',
      'handle a#1 boom',
      'error a#1 boom: kaput',
      'stop a#1',
      'stopped a#1',
      'create a#2',
      'start a#2',
      'started a#2 count=1',
      'handle a#2 add',
      'handle a#2 get',
    ]);
    expect(logLines).toContainEqual(
      expect.objectContaining({
        level: ERROR_LEVEL,
        actorKind: 'counter',
        actorId: 'a',
        err: expect.objectContaining({ message: 'kaput' }),
      }),
    );
  });

  it('treats a rejected promise like a throw and answers the failed ask with INTERNAL', async () => {
    const { system } = createHarness();
    const world = counterWorld();
    system.register(world.kind);
    const ref = system.ref(world.kind, 'a');
    const failed = ref.ask<number>(() => ({ type: 'reject-later' }));
    const error = await rejection(failed);
    expect(error.code).toBe('INTERNAL');
    expect(error.message).not.toContain('kaput'); // the cause stays in the log, not in the client message
    expect(await ref.ask<number>((reply) => ({ type: 'get', reply }))).toBe(0);
    expect(world.events.filter((event) => event.startsWith('create'))).toEqual(['create a#1', 'create a#2']);
  });

  it('keeps going when onStop and onError throw too, and raises no unhandled rejection', async () => {
    const { system, logLines } = createHarness();
    const kind: ActorKind<'boom' | 'ok'> = {
      kind: 'fragile',
      mailboxCapacity: 4,
      idleMs: 1_000,
      create: () => ({
        handle: (message) => {
          if (message === 'boom') throw new Error('handler');
        },
        onStop: () => Promise.reject(new Error('stop')),
        onError: () => {
          throw new Error('onError');
        },
      }),
    };
    system.register(kind);
    const ref = system.ref(kind, 'x');
    ref.tell('boom');
    ref.tell('ok');
    await settle();
    expect(system.stats().alive).toEqual({ fragile: 1 });
    const errors = logLines.filter((line) => line.level === ERROR_LEVEL).map((line) => line.err?.message);
    expect(errors).toEqual(['handler', 'onError', 'stop']);
  });
});

describe('ask', () => {
  it('answers with the value passed to reply.ok and with the AppError passed to reply.fail', async () => {
    const { system } = createHarness();
    const world = counterWorld();
    system.register(world.kind);
    const ref = system.ref(world.kind, 'a');
    ref.tell({ type: 'add', by: 7 });
    expect(await ref.ask<number>((reply) => ({ type: 'get', reply }))).toBe(7);
    const refused = await rejection(ref.ask<number>((reply) => ({ type: 'forbid', reply })));
    expect(refused.code).toBe('FORBIDDEN');
    // An expected failure is an answer, not a crash: no restart.
    expect(world.events.filter((event) => event.startsWith('create'))).toEqual(['create a#1']);
  });

  it('rejects with UNAVAILABLE after the timeout and ignores a late answer', async () => {
    const { system, timers } = createHarness();
    const world = counterWorld();
    system.register(world.kind);
    const ref = system.ref(world.kind, 'a');
    let kept: Reply<number> | undefined;
    const unanswered = ref.ask<number>((reply) => {
      kept = reply;
      return { type: 'ignore', reply };
    }, 250);
    await settle();
    timers.advance(249);
    await settle();
    expect(kept?.settled).toBe(false);
    timers.advance(1);
    expect((await rejection(unanswered)).code).toBe('UNAVAILABLE');
    expect(kept?.settled).toBe(true);
    kept?.ok(1);

    const defaultTimeout = ref.ask<number>((reply) => ({ type: 'ignore', reply }));
    await settle();
    timers.advance(ASK_TIMEOUT_MS);
    expect((await rejection(defaultTimeout)).code).toBe('UNAVAILABLE');
  });
});

describe('stop', () => {
  it('drains every mailbox, runs onStop of every live actor, then refuses messages', async () => {
    const { system, timers } = createHarness();
    const world = counterWorld();
    system.register(world.kind);
    const first = system.ref(world.kind, 'a');
    const second = system.ref(world.kind, 'b');
    const idle = system.ref(world.kind, 'c');
    idle.tell({ type: 'add', by: 100 });
    await settle();
    for (let index = 0; index < 3; index++) {
      first.tell({ type: 'add', by: 1 });
      second.tell({ type: 'add', by: 2 });
    }
    const answered = first.ask<number>((reply) => ({ type: 'get', reply }));
    const neverAnswered = second.ask<number>((reply) => ({ type: 'ignore', reply }));

    const stopping = system.stop(5_000);
    expect(thrownBy(() => first.tell({ type: 'add', by: 1 })).code).toBe('UNAVAILABLE');
    expect((await rejection(idle.ask<number>((reply) => ({ type: 'get', reply })))).code).toBe('UNAVAILABLE');

    expect(await stopping).toEqual({ completed: true, unfinished: 0 });
    expect(await answered).toBe(3);
    expect((await rejection(neverAnswered)).code).toBe('UNAVAILABLE');
    expect(Object.fromEntries(world.table)).toEqual({ a: 3, b: 6, c: 100 });
    expect(system.stats()).toEqual({ alive: { counter: 0 }, queued: 0 });
    expect(timers.pending()).toBe(0);
    expect(await system.stop(5_000)).toEqual({ completed: true, unfinished: 0 });
  });

  it('gives up on a stuck actor at the deadline and rejects what it still had queued', async () => {
    const { system, timers } = createHarness();
    const world = counterWorld();
    system.register(world.kind);
    const ref = system.ref(world.kind, 'stuck');
    ref.tell({ type: 'wait', gate: new Promise<void>(() => undefined) });
    const queued = ref.ask<number>((reply) => ({ type: 'get', reply }));
    await settle();

    const stopping = system.stop(500);
    await settle();
    timers.advance(500);
    expect(await stopping).toEqual({ completed: false, unfinished: 1 });
    expect((await rejection(queued)).code).toBe('UNAVAILABLE');
    expect(timers.pending()).toBe(0);
  });
});

describe('metrics', () => {
  it('exports alive actors, mailbox depth, handler durations, restarts and overflows by kind only', async () => {
    const { system, registry } = createHarness();
    const world = counterWorld({ mailboxCapacity: 2 });
    system.register(world.kind);
    const gate = deferred();
    const busy = system.ref(world.kind, 'busy');
    busy.tell({ type: 'wait', gate: gate.promise });
    await settle();
    busy.tell({ type: 'add', by: 1 });
    busy.tell({ type: 'add', by: 1 });
    expect(() => busy.tell({ type: 'add', by: 1 })).toThrow(AppError);
    const other = system.ref(world.kind, 'other');
    other.tell({ type: 'boom' });
    other.tell({ type: 'add', by: 1 });
    await settle();

    expect(await registry.getSingleMetricAsString('gigwire_actors_alive')).toContain(
      'gigwire_actors_alive{kind="counter"} 2',
    );
    expect(await registry.getSingleMetricAsString('gigwire_actor_mailbox_depth')).toContain(
      'gigwire_actor_mailbox_depth{kind="counter"} 2',
    );
    expect(await registry.getSingleMetricAsString('gigwire_actor_restarts_total')).toContain(
      'gigwire_actor_restarts_total{kind="counter"} 1',
    );
    expect(await registry.getSingleMetricAsString('gigwire_actor_mailbox_overflows_total')).toContain(
      'gigwire_actor_mailbox_overflows_total{kind="counter"} 1',
    );

    gate.resolve();
    await settle();
    // Handled: wait + 2 adds on "busy", 1 add on "other"; the failed "boom" is not observed.
    expect(await registry.getSingleMetricAsString('gigwire_actor_handler_duration_seconds')).toContain(
      'gigwire_actor_handler_duration_seconds_count{kind="counter"} 4',
    );
    expect(await registry.getSingleMetricAsString('gigwire_actor_mailbox_depth')).toContain(
      'gigwire_actor_mailbox_depth{kind="counter"} 0',
    );
    const exposition = await registry.metrics();
    expect(exposition).not.toMatch(/busy|other|actorId/);
  });
});

describe('registration', () => {
  it('refuses duplicate kinds, invalid limits and refs to unregistered definitions', () => {
    const { system } = createHarness();
    const world = counterWorld();
    system.register(world.kind);
    expect(() => system.register(world.kind)).toThrow(/already registered/);
    expect(() => system.register({ ...world.kind, kind: 'bad-capacity', mailboxCapacity: 0 })).toThrow(
      RangeError,
    );
    expect(() => system.register({ ...world.kind, kind: 'bad-idle', idleMs: -1 })).toThrow(RangeError);
    expect(() => system.ref({ ...world.kind }, 'a')).toThrow(/not registered/);
  });
});
