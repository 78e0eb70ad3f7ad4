/**
 * A per-tick batcher (DataLoader-like): every key asked for until the scheduled flush runs goes to
 * the loader in one call, and each caller gets the value of its own key. The default flush is
 * `setImmediate`, i.e. after the event loop's poll phase, so all upgrades and REST requests whose
 * bytes arrived in one loop iteration share one query (a microtask would flush after each socket's
 * callback, batching nothing).
 *
 * Invariants: a key asked for twice in one batch is loaded once and both callers get its value; a
 * batch holds at most `maxBatch` distinct keys (a fuller one is flushed at once and a new batch
 * starts), so one query's parameter list stays bounded; a failed load rejects every caller of
 * that batch and no other.
 */

export interface TickBatcherOptions<K, V> {
  /**
   * Loads one batch. Keys are distinct. A key missing from the answer resolves to `undefined`.
   * It is called at most once per batch.
   */
  readonly load: (keys: readonly K[]) => Promise<ReadonlyMap<K, V>>;
  /** Most distinct keys per load (default 500). */
  readonly maxBatch?: number;
  /** When a batch is flushed (default `setImmediate`); tests pass a manual scheduler. */
  readonly schedule?: (flush: () => void) => void;
}

interface Waiter<V> {
  readonly resolve: (value: V | undefined) => void;
  readonly reject: (error: unknown) => void;
}

export type TickBatcher<K, V> = (key: K) => Promise<V | undefined>;

export function createTickBatcher<K, V>(options: TickBatcherOptions<K, V>): TickBatcher<K, V> {
  const maxBatch = options.maxBatch ?? 500;
  const schedule = options.schedule ?? ((flush: () => void) => void setImmediate(flush));
  let pending = new Map<K, Waiter<V>[]>();
  let scheduled = false;

  const run = (batch: Map<K, Waiter<V>[]>) => {
    let loading: Promise<ReadonlyMap<K, V>>;
    try {
      loading = options.load([...batch.keys()]);
    } catch (error) {
      loading = Promise.reject(error);
    }
    loading.then(
      (found) => {
        for (const [key, waiters] of batch) {
          const value = found.get(key);
          for (const waiter of waiters) waiter.resolve(value);
        }
      },
      (error: unknown) => {
        for (const waiters of batch.values()) for (const waiter of waiters) waiter.reject(error);
      },
    );
  };

  const flush = () => {
    scheduled = false;
    const batch = pending;
    pending = new Map();
    if (batch.size > 0) run(batch);
  };

  return (key) =>
    new Promise<V | undefined>((resolve, reject) => {
      const waiters = pending.get(key);
      if (waiters !== undefined) {
        waiters.push({ resolve, reject });
        return;
      }
      pending.set(key, [{ resolve, reject }]);
      if (pending.size >= maxBatch) {
        // Full: load it now; the scheduled flush (if any) takes whatever comes after.
        const batch = pending;
        pending = new Map();
        run(batch);
        return;
      }
      if (!scheduled) {
        scheduled = true;
        schedule(flush);
      }
    });
}
