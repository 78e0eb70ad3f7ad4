/**
 * Batched user-row reads for the hot REST path (GET /v1/me, profile reads): every id asked for goes
 * into the next `where id in (…)` query together with the others waiting, instead of one round trip
 * each (a round trip costs this process far more CPU than the request's own work).
 *
 * When a batch is sent (`schedule` of the per-tick batcher): at the end of the event-loop turn
 * when no read is in flight; while one is, the ids asked meanwhile wait for its answer and then go
 * in one query. So the batch grows with the load by itself — one query per turn when idle, one per
 * round trip under load — and adds at most one round trip of latency.
 *
 * Not a cache, and a read never joins a query sent before it asked: a GET that starts after a write
 * committed (a PATCH /v1/me answered) sees the write.
 */
import { createTickBatcher, type TickBatcher } from '../../platform/tick-batcher.js';

export interface BatchedReaderOptions<K, V> {
  /** Loads the rows of distinct keys; a key missing from the answer reads as undefined. */
  readonly load: (keys: readonly K[]) => Promise<ReadonlyMap<K, V>>;
  /** Most keys per query (default 500). */
  readonly maxBatch?: number;
  /** Runs a flush after the current turn (default `setImmediate`); tests pass a manual one. */
  readonly defer?: (run: () => void) => void;
}

export function createBatchedReader<K, V>(options: BatchedReaderOptions<K, V>): TickBatcher<K, V> {
  const defer = options.defer ?? ((run: () => void) => void setImmediate(run));
  let inFlight = 0;
  /** The batcher's flush of the batch collected while a load was in flight. */
  let waiting: (() => void) | undefined;

  const settled = () => {
    inFlight -= 1;
    const next = waiting;
    waiting = undefined;
    if (next !== undefined) defer(next);
  };

  return createTickBatcher<K, V>({
    ...(options.maxBatch === undefined ? {} : { maxBatch: options.maxBatch }),
    schedule: (flush) => {
      if (inFlight === 0) defer(flush);
      else waiting = flush;
    },
    load: (keys) => {
      inFlight += 1;
      let loading: Promise<ReadonlyMap<K, V>>;
      try {
        loading = options.load(keys);
      } catch (error) {
        loading = Promise.reject(error);
      }
      loading.then(settled, settled);
      return loading;
    },
  });
}
