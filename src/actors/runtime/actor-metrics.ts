/**
 * Prometheus instruments of the actor runtime, labelled by `kind` only: actor ids are unbounded and
 * would explode cardinality. Nothing on the per-message path touches prom-client: the gauges read
 * plain counters at scrape time (`collect`), and handler durations go into plain per-kind bucket
 * arrays that the histogram reads when scraped. prom-client's own `observe` validates and hashes the
 * labels on every call (~0.4 µs), which measured at about three quarters of the runtime's whole
 * per-message cost.
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

/** Upper bounds in seconds: handlers range from microseconds (presence) to a database round trip. */
export const HANDLER_BUCKETS_SECONDS: readonly number[] = [
  0.0001, 0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
];

interface HandlerTimings {
  readonly kind: string;
  /** Observations per bucket, not cumulative; the last slot is +Inf. */
  readonly perBucket: number[];
  sum: number;
  count: number;
}

type HistogramData = Awaited<ReturnType<Histogram<'kind'>['get']>>;

interface ExportedValue {
  readonly labels: Record<string, string | number>;
  readonly sharedLabels?: Record<string, string>;
  readonly value: number;
  readonly metricName: string;
}

const HANDLER_HISTOGRAM_NAME = 'gigwire_actor_handler_duration_seconds';
const HANDLER_HISTOGRAM_HELP = 'Time an actor spent handling one message, in seconds, by kind.';

/**
 * gigwire_actor_handler_duration_seconds{kind}: a prom-client Histogram (so any Registry accepts it)
 * whose values come from HandlerTimings instead of `observe`. Exposes exactly what prom-client would
 * for the same observations (a test compares the two).
 */
class HandlerDurationHistogram extends Histogram<'kind'> {
  private readonly timings: HandlerTimings[] = [];

  constructor(registry: Registry) {
    super({
      name: HANDLER_HISTOGRAM_NAME,
      help: HANDLER_HISTOGRAM_HELP,
      labelNames: ['kind'],
      buckets: [...HANDLER_BUCKETS_SECONDS],
      registers: [registry],
    });
  }

  recorderFor(kind: string): (seconds: number) => void {
    const timings: HandlerTimings = {
      kind,
      perBucket: new Array<number>(HANDLER_BUCKETS_SECONDS.length + 1).fill(0),
      sum: 0,
      count: 0,
    };
    this.timings.push(timings);
    const bounds = HANDLER_BUCKETS_SECONDS;
    return (seconds) => {
      let bucket = 0;
      while (bucket < bounds.length && seconds > (bounds[bucket] ?? Number.POSITIVE_INFINITY)) bucket++;
      timings.perBucket[bucket] = (timings.perBucket[bucket] ?? 0) + 1;
      timings.sum += seconds;
      timings.count++;
    };
  }

  override async get(): Promise<HistogramData> {
    return this.export(true);
  }

  /** The registry prefers this prom-client-internal method over get() when printing. */
  async getForPromString(): Promise<HistogramData> {
    return this.export(false);
  }

  /**
   * The shape prom-client's Histogram produces: `kind` as a shared label (printed after `le` and the
   * registry's default labels), merged into `labels` for get() (JSON, cluster aggregation).
   */
  private export(mergeLabels: boolean): HistogramData {
    const values: ExportedValue[] = [];
    const push = (labels: Record<string, string | number>, kind: string, value: number, suffix: string) => {
      const metricName = `${HANDLER_HISTOGRAM_NAME}${suffix}`;
      values.push(
        mergeLabels
          ? { labels: { ...labels, kind }, value, metricName }
          : { labels, sharedLabels: { kind }, value, metricName },
      );
    };
    for (const timings of this.timings) {
      let cumulative = 0;
      HANDLER_BUCKETS_SECONDS.forEach((bound, bucket) => {
        cumulative += timings.perBucket[bucket] ?? 0;
        push({ le: bound }, timings.kind, cumulative, '_bucket');
      });
      push({ le: '+Inf' }, timings.kind, timings.count, '_bucket');
      push({}, timings.kind, timings.sum, '_sum');
      push({}, timings.kind, timings.count, '_count');
    }
    const data = {
      name: HANDLER_HISTOGRAM_NAME,
      help: HANDLER_HISTOGRAM_HELP,
      type: 'histogram',
      values,
      aggregator: 'sum',
    };
    // MUST stay a cast: prom-client types `type` as a numeric enum and labels as the declared label
    // names, but the registry prints `# TYPE ${type}` (the string) and the `le` label of each bucket.
    return data as unknown as HistogramData;
  }

  override reset(): void {
    // prom-client's constructor calls reset() before the fields of this subclass exist.
    for (const timings of this.timings ?? []) {
      timings.perBucket.fill(0);
      timings.sum = 0;
      timings.count = 0;
    }
  }
}

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
  const handlerSeconds = new HandlerDurationHistogram(registry);
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
      restarts.inc(labels, 0);
      overflows.inc(labels, 0);
      const kindRestarts = restarts.labels(labels);
      const kindOverflows = overflows.labels(labels);
      return {
        observeHandlerSeconds: handlerSeconds.recorderFor(kind),
        countRestart: () => kindRestarts.inc(),
        countOverflow: () => kindOverflows.inc(),
      };
    },
  };
}
