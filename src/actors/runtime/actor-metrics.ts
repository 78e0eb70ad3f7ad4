/**
 * Prometheus instruments of the actor runtime, labelled by `kind` only: actor ids are unbounded and
 * would explode cardinality. The two gauges are read from plain counters at scrape time (`collect`),
 * so the per-message path pays an integer increment, not a label lookup.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** What a gauge needs to know about one kind at scrape time. */
export interface KindSnapshot {
  readonly kind: string;
  /** Activated actors in memory (onStart done, onStop not begun). */
  readonly alive: number;
  /** Messages waiting in the mailboxes of that kind, summed over its actors. */
  readonly queued: number;
}

/** The instruments of one kind. */
export interface KindInstruments {
  readonly observeHandlerSeconds: (seconds: number) => void;
  readonly countRestart: () => void;
  readonly countOverflow: () => void;
}

export interface ActorMetrics {
  /** Instruments for a newly registered kind; its series start at 0 so dashboards see them at once. */
  readonly forKind: (kind: string) => KindInstruments;
}

/** Handlers range from microseconds (presence) to a database round trip (room persistence). */
const HANDLER_BUCKETS_SECONDS = [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/**
 * Registers the runtime's instruments on `registry`. A registry holds one actor system: prom-client
 * refuses a second metric with the same name.
 */
export function createActorMetrics(registry: Registry, snapshot: () => Iterable<KindSnapshot>): ActorMetrics {
  new Gauge({
    name: 'gigwire_actors_alive',
    help: 'Activated actors in memory on this node, by kind.',
    labelNames: ['kind'],
    registers: [registry],
    collect() {
      for (const entry of snapshot()) this.set({ kind: entry.kind }, entry.alive);
    },
  });
  new Gauge({
    name: 'gigwire_actor_mailbox_depth',
    help: 'Messages waiting in actor mailboxes on this node, summed over the actors of each kind.',
    labelNames: ['kind'],
    registers: [registry],
    collect() {
      for (const entry of snapshot()) this.set({ kind: entry.kind }, entry.queued);
    },
  });
  const handlerSeconds = new Histogram({
    name: 'gigwire_actor_handler_duration_seconds',
    help: 'Time an actor spent handling one message, in seconds, by kind.',
    labelNames: ['kind'],
    buckets: HANDLER_BUCKETS_SECONDS,
    registers: [registry],
  });
  const restarts = new Counter({
    name: 'gigwire_actor_restarts_total',
    help: 'Actors restarted after a handler threw, by kind.',
    labelNames: ['kind'],
    registers: [registry],
  });
  const overflows = new Counter({
    name: 'gigwire_actor_mailbox_overflows_total',
    help: 'Messages refused because the actor mailbox was full (RATE_LIMITED), by kind.',
    labelNames: ['kind'],
    registers: [registry],
  });

  return {
    forKind: (kind) => {
      const labels = { kind };
      handlerSeconds.zero(labels);
      restarts.inc(labels, 0);
      overflows.inc(labels, 0);
      const kindHandlerSeconds = handlerSeconds.labels(labels);
      const kindRestarts = restarts.labels(labels);
      const kindOverflows = overflows.labels(labels);
      return {
        observeHandlerSeconds: (seconds) => kindHandlerSeconds.observe(seconds),
        countRestart: () => kindRestarts.inc(),
        countOverflow: () => kindOverflows.inc(),
      };
    },
  };
}
