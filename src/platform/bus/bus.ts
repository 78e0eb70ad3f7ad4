/**
 * The Bus: every message between actors and between processes goes through this port, so running
 * several gateway nodes needs placement only. Topics come from the catalogue (topics.ts): each has
 * a name and a zod schema, and both ends are typed by it. Delivery is at-most-once and in publish
 * order per publisher (Redis pub/sub semantics): anything that must not be lost is made durable in
 * Postgres first and only announced here.
 *
 * Payloads are immutable values: a process's own subscribers get the very object published (no
 * copy, no parse), so neither side may change it.
 */
import type { Topic } from './topics.js';

export type { Topic };
export type BusHandler<P> = (payload: P) => void;

export interface Bus {
  /**
   * Sends to every subscriber of the topic on every node, this one included: its own subscribers
   * get it without a round trip through Redis, each message once. Resolves with how many processes
   * it reached (this one counted when it subscribes): 0 tells the sender that nobody listens — for
   * a node's own request topic, that the node is gone (its subscriber connection closed).
   */
  readonly publish: <P>(topic: Topic<P>, payload: P) => Promise<number>;
  /**
   * Returns the unsubscribe function. Handlers get payloads that passed the topic's schema
   * (anything else from another process is logged and dropped); they must not throw (errors are
   * logged and dropped).
   */
  readonly subscribe: <P>(topic: Topic<P>, handler: BusHandler<P>) => Promise<() => Promise<void>>;
  /**
   * Calls `listener` each time this process's subscriptions are active again after its connection
   * to the bus dropped: whatever was published meanwhile never reached it (state that matters is
   * read again then). Absent: the bus never drops (in-process). Returns the function that stops it.
   */
  readonly onResubscribed?: (listener: () => void) => () => void;
  readonly close: () => Promise<void>;
}

/** The in-process implementation, for unit tests and the contract test. */
export function createMemoryBus(
  onHandlerError: (error: unknown, topic: string) => void = () => undefined,
): Bus {
  const handlers = new Map<string, Set<BusHandler<never>>>();
  return {
    publish: async (topic, payload) => {
      const subscribed = handlers.get(topic.name) ?? new Set<BusHandler<never>>();
      for (const handler of subscribed) {
        queueMicrotask(() => {
          try {
            (handler as BusHandler<typeof payload>)(payload);
          } catch (error) {
            onHandlerError(error, topic.name);
          }
        });
      }
      return subscribed.size > 0 ? 1 : 0;
    },
    subscribe: async (topic, handler) => {
      let set = handlers.get(topic.name);
      if (set === undefined) {
        set = new Set();
        handlers.set(topic.name, set);
      }
      const entry = handler as BusHandler<never>;
      set.add(entry);
      return async () => {
        set?.delete(entry);
      };
    },
    close: async () => handlers.clear(),
  };
}
