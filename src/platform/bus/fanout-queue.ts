/**
 * A bounded queue in front of `Bus.publish` for fan-out that nobody waits for (room messages,
 * typing, read marks): callers enqueue and return at once, so a slow or frozen Redis never holds
 * a room actor's turn or an acknowledgement.
 *
 * Publishes are issued in enqueue order (one connection keeps that order through Redis), at most
 * `maxInFlight` unanswered at a time; each gives up after `publishTimeoutMs` (the Redis client's
 * own command timeout normally answers first). Beyond that, up to `capacity` wait here. When the
 * queue is full the OLDEST waiting one is dropped, counted in gigwire_bus_fanout_dropped_total and
 * logged: a receiver sees a seq jump and fills it from history (PROTOCOL.md, "Gap rule"), so a
 * drop costs a history read, never a message. Durable state is in PostgreSQL before anything is
 * enqueued here.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Logger } from '../logger.js';
import type { Timers } from '../timers.js';
import type { Bus } from './bus.js';
import type { Topic } from './topics.js';

export interface FanOutQueueOptions {
  readonly bus: Bus;
  readonly log: Logger;
  readonly timers: Timers;
  readonly metrics: Registry;
  /** Most publishes waiting to be issued; more drops the oldest waiting one. */
  readonly capacity: number;
  /** Most publishes issued and not answered yet. */
  readonly maxInFlight: number;
  /** Milliseconds after which an unanswered publish counts as failed and frees its slot. */
  readonly publishTimeoutMs: number;
}

export interface FanOutQueue {
  /** Queues one publish. Never throws, never waits. */
  readonly enqueue: <P>(topic: Topic<P>, payload: P) => void;
  /** Publishes waiting plus in flight. */
  readonly size: () => number;
  /** Resolves once everything enqueued so far was answered (or failed), or after `timeoutMs`. */
  readonly drain: (timeoutMs: number) => Promise<void>;
}

const LOG_EVERY_MS = 10_000;

interface Item {
  readonly topic: Topic<unknown>;
  readonly payload: unknown;
}

export function createFanOutQueue(options: FanOutQueueOptions): FanOutQueue {
  const { bus, log, timers } = options;
  if (!(options.capacity >= 1 && options.maxInFlight >= 1)) {
    throw new RangeError('fan-out queue capacity and maxInFlight must be at least 1');
  }
  // A deque as an array with a moving head: shift() would copy the whole array per item.
  let waiting: (Item | undefined)[] = [];
  let head = 0;
  let inFlight = 0;
  let idle: (() => void)[] = [];
  let droppedSinceLog = 0;
  let failedSinceLog = 0;
  let lastLoggedAt = Number.NEGATIVE_INFINITY;

  const dropped = new Counter({
    name: 'gigwire_bus_fanout_dropped_total',
    help: 'Fan-out publishes dropped because the queue was full (receivers fill the gap from history).',
    registers: [options.metrics],
  });
  const failed = new Counter({
    name: 'gigwire_bus_fanout_failed_total',
    help: 'Fan-out publishes that failed or timed out (Redis unreachable or stalled).',
    registers: [options.metrics],
  });
  new Gauge({
    name: 'gigwire_bus_fanout_queued',
    help: 'Fan-out publishes waiting or in flight.',
    registers: [options.metrics],
    collect() {
      this.set(waiting.length - head + inFlight);
    },
  });

  const waitingCount = () => waiting.length - head;

  const report = () => {
    const now = timers.now();
    if (now - lastLoggedAt < LOG_EVERY_MS) return;
    lastLoggedAt = now;
    log.warn(
      { dropped: droppedSinceLog, failed: failedSinceLog, queued: waitingCount(), inFlight },
      'bus fan-out degraded: publishes dropped or failed; receivers fill gaps from history',
    );
    droppedSinceLog = 0;
    failedSinceLog = 0;
  };

  const settleIdle = () => {
    if (inFlight > 0 || waitingCount() > 0 || idle.length === 0) return;
    const waiters = idle;
    idle = [];
    for (const resolve of waiters) resolve();
  };

  const issue = (item: Item) => {
    inFlight += 1;
    let done = false;
    const finish = (ok: boolean, error?: unknown) => {
      if (done) return;
      done = true;
      cancel();
      inFlight -= 1;
      if (!ok) {
        failed.inc();
        failedSinceLog += 1;
        if (error !== undefined) log.debug({ err: error, topic: item.topic.name }, 'fan-out publish failed');
        report();
      }
      pump();
      settleIdle();
    };
    const cancel = timers.schedule(options.publishTimeoutMs, () => finish(false));
    let publishing: Promise<unknown>;
    try {
      publishing = bus.publish(item.topic, item.payload);
    } catch (error) {
      publishing = Promise.reject(error);
    }
    publishing.then(
      () => finish(true),
      (error: unknown) => finish(false, error),
    );
  };

  const pump = () => {
    while (inFlight < options.maxInFlight && waitingCount() > 0) {
      const item = waiting[head];
      waiting[head] = undefined;
      head += 1;
      if (item !== undefined) issue(item);
    }
    if (head > 1024 && head * 2 > waiting.length) {
      waiting = waiting.slice(head);
      head = 0;
    }
  };

  return {
    enqueue: (topic, payload) => {
      if (waitingCount() >= options.capacity) {
        waiting[head] = undefined;
        head += 1;
        dropped.inc();
        droppedSinceLog += 1;
        report();
      }
      waiting.push({ topic: topic as Topic<unknown>, payload });
      pump();
    },
    size: () => waitingCount() + inFlight,
    drain: (timeoutMs) =>
      new Promise<void>((resolve) => {
        if (inFlight === 0 && waitingCount() === 0) return resolve();
        const cancel = timers.schedule(timeoutMs, resolve);
        idle.push(() => {
          cancel();
          resolve();
        });
      }),
  };
}
