/**
 * `/metrics` under GATEWAY_PROCESSES: node:cluster hands each HTTP connection to one copy, so a
 * scrape (over keep-alive, every scrape) reached one copy and the others' series were never seen
 * (review 24). A copy asked for /metrics asks the supervisor, which collects every serving copy's
 * series over IPC and merges them into one exposition (each series keeps its `node` label, so none
 * is summed with another copy's). A copy that does not answer within COPY_ANSWER_MS is left out;
 * without the supervisor's answer a copy serves its own series, as a single process does.
 */
import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry, type Registry } from 'prom-client';
import type { Logger } from '../platform/logger.js';

/** How long the supervisor waits for each copy's series. */
const COPY_ANSWER_MS = 2_000;
/** How long a copy waits for the supervisor's merged exposition (more than COPY_ANSWER_MS). */
const SUPERVISOR_ANSWER_MS = 3_000;

type MetricsJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;

/** Copy → supervisor: the exposition of every copy, please. */
interface AllRequest {
  readonly t: 'gigwire.metrics-all';
  readonly id: number;
}
/** Supervisor → copy: the merged exposition (absent: none could be made). */
interface AllReply {
  readonly t: 'gigwire.metrics-all-reply';
  readonly id: number;
  readonly text?: string;
}
/** Supervisor → copy: your own series, please. */
interface OwnRequest {
  readonly t: 'gigwire.metrics-own';
  readonly id: number;
}
/** Copy → supervisor: its series. */
interface OwnReply {
  readonly t: 'gigwire.metrics-own-reply';
  readonly id: number;
  readonly metrics: MetricsJson;
}

const typeOf = (message: unknown): unknown =>
  typeof message === 'object' && message !== null ? (message as { t?: unknown }).t : undefined;
const idOf = (message: unknown): number => Number((message as { id?: unknown }).id);

/**
 * In a supervised copy: answers the supervisor's requests for this copy's series, and returns what
 * /metrics serves (every copy's series). Outside one: undefined (serve the registry itself).
 */
export function copyMetricsExposition(registry: Registry): (() => Promise<string>) | undefined {
  const send = process.send?.bind(process);
  if (!cluster.isWorker || send === undefined) return undefined;
  const waiting = new Map<number, (text: string | undefined) => void>();
  let nextId = 0;
  process.on('message', (message: unknown) => {
    const type = typeOf(message);
    if (type === 'gigwire.metrics-own') {
      void registry.getMetricsAsJSON().then(
        (metrics) => {
          const reply: OwnReply = { t: 'gigwire.metrics-own-reply', id: idOf(message), metrics };
          if (process.connected) send(reply);
        },
        () => undefined,
      );
    } else if (type === 'gigwire.metrics-all-reply') {
      waiting.get(idOf(message))?.((message as AllReply).text);
    }
  });
  return async () => {
    const id = nextId++;
    const merged = await new Promise<string | undefined>((settle) => {
      const timer = setTimeout(() => settle(undefined), SUPERVISOR_ANSWER_MS);
      waiting.set(id, (text) => {
        clearTimeout(timer);
        settle(text);
      });
      const request: AllRequest = { t: 'gigwire.metrics-all', id };
      try {
        send(request);
      } catch {
        settle(undefined);
      }
    });
    waiting.delete(id);
    return merged ?? registry.metrics();
  };
}

/**
 * In the supervisor: `serve(copy)` answers that copy's requests for every copy's series. `copies`
 * are the copies serving now (one still starting answers nothing and would only be waited for).
 */
export function createMetricsMerger(copies: () => readonly Worker[], log: Logger) {
  let nextId = 0;
  /**
   * The merge in flight: every request that arrives meanwhile is answered from it. /metrics takes
   * no credential and no rate limit, and a merge per request made K requests at once cost every
   * copy K serializations of its registry (their event loops, WebSockets included, stalled) and
   * the supervisor K listeners on each copy, each reply run past all of them (review 26).
   */
  let merging: Promise<string | undefined> | undefined;
  const merged = (): Promise<string | undefined> => {
    merging ??= collect(copies(), () => nextId++)
      .then(async (series) =>
        series.length === 0 ? undefined : await AggregatorRegistry.aggregate(series.map(keepEvery)).metrics(),
      )
      .finally(() => {
        merging = undefined;
      });
    return merging;
  };
  return {
    serve: (asker: Worker) => {
      asker.on('message', (message: unknown) => {
        if (typeOf(message) !== 'gigwire.metrics-all') return;
        const requestId = idOf(message);
        void merged()
          .then((text) => {
            const reply: AllReply = {
              t: 'gigwire.metrics-all-reply',
              id: requestId,
              ...(text === undefined ? {} : { text }),
            };
            if (asker.isConnected()) asker.send(reply);
          })
          .catch((error: unknown) => log.warn({ err: error }, "could not merge the copies' metrics"));
      });
    },
  };
}

/**
 * A copy's series as the merge must take them: every one kept. prom-client's aggregation is made
 * for copies that share one set of labels, so some default metrics say how to combine them, and
 * `process_start_time_seconds` says `omit`: it was missing from the merged /metrics altogether, so
 * under GATEWAY_PROCESSES nobody could see a copy restart (`changes(process_start_time_seconds…)`)
 * nor its uptime. Here every series carries its copy's `node` label, so no two copies' values are
 * ever combined and each metric's own aggregator only has one value to pass on (review 31).
 */
function keepEvery(metrics: MetricsJson): MetricsJson {
  return metrics.map((metric) =>
    metric.aggregator === 'omit' ? { ...metric, aggregator: 'first' } : metric,
  );
}

/** Each copy's series, from those that answer within COPY_ANSWER_MS. */
async function collect(copies: readonly Worker[], newId: () => number): Promise<MetricsJson[]> {
  const answers = await Promise.all(
    copies.map(
      (copy) =>
        new Promise<MetricsJson | undefined>((settle) => {
          const id = newId();
          const onMessage = (message: unknown) => {
            if (typeOf(message) !== 'gigwire.metrics-own-reply' || idOf(message) !== id) return;
            done((message as OwnReply).metrics);
          };
          const done = (metrics: MetricsJson | undefined) => {
            clearTimeout(timer);
            copy.off('message', onMessage);
            settle(metrics);
          };
          const timer = setTimeout(() => done(undefined), COPY_ANSWER_MS);
          copy.on('message', onMessage);
          const request: OwnRequest = { t: 'gigwire.metrics-own', id };
          try {
            if (copy.isConnected()) copy.send(request);
            else done(undefined);
          } catch {
            done(undefined);
          }
        }),
    ),
  );
  return answers.filter((metrics): metrics is MetricsJson => metrics !== undefined);
}
