/**
 * The trace id of the action being served (issue 13 §10): the REST request id, or the WebSocket
 * connection and frame id, carried implicitly through the async calls it makes, so a producer deep
 * in the domain writes it into its outbox event without every signature passing it along. From the
 * event it goes into the task payload and the worker's log lines: one id from the request to the
 * worker. An AsyncLocalStorage is process-wide by nature (it follows async context, not objects);
 * this is its one instance, and reading it is optional everywhere (undefined outside a request).
 */
import { AsyncLocalStorage } from 'node:async_hooks';

const storage = new AsyncLocalStorage<{ readonly traceId: string }>();

/** The trace id of the current request or frame, if any. */
export const currentTraceId = (): string | undefined => storage.getStore()?.traceId;

/** Runs `work` (and everything it starts) under `traceId`. */
export function withTrace<T>(traceId: string, work: () => T): T {
  return storage.run({ traceId }, work);
}
