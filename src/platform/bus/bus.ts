/**
 * The Bus: every message between actors and between processes goes through this port, so running
 * several gateway nodes needs placement only. Topics are plain names; payloads are JSON values.
 * Delivery is at-most-once and in publish order per publisher (Redis pub/sub semantics): anything
 * that must not be lost is made durable in Postgres first and only announced here.
 */
export type BusPayload = Readonly<Record<string, unknown>>;
export type BusHandler = (payload: BusPayload) => void;

export interface Bus {
  /**
   * Sends to every subscriber of the topic on every node, this one included: its own subscribers
   * get it without a round trip through Redis, each message once. Resolves with how many processes
   * it reached (this one counted when it subscribes): 0 tells the sender that nobody listens — for
   * a node's own request topic, that the node is gone (its subscriber connection closed).
   */
  readonly publish: (topic: string, payload: BusPayload) => Promise<number>;
  /** Returns the unsubscribe function. Handlers must not throw (errors are logged and dropped). */
  readonly subscribe: (topic: string, handler: BusHandler) => Promise<() => Promise<void>>;
  readonly close: () => Promise<void>;
}

/** The in-process implementation, for unit tests and the contract test. */
export function createMemoryBus(
  onHandlerError: (error: unknown, topic: string) => void = () => undefined,
): Bus {
  const handlers = new Map<string, Set<BusHandler>>();
  return {
    publish: async (topic, payload) => {
      // A copy through JSON, as Redis would deliver it: no shared mutable objects between actors.
      const copy = JSON.parse(JSON.stringify(payload)) as BusPayload;
      const subscribed = handlers.get(topic) ?? new Set<BusHandler>();
      for (const handler of subscribed) {
        queueMicrotask(() => {
          try {
            handler(copy);
          } catch (error) {
            onHandlerError(error, topic);
          }
        });
      }
      return subscribed.size > 0 ? 1 : 0;
    },
    subscribe: async (topic, handler) => {
      let set = handlers.get(topic);
      if (set === undefined) {
        set = new Set();
        handlers.set(topic, set);
      }
      set.add(handler);
      return async () => {
        set?.delete(handler);
      };
    },
    close: async () => handlers.clear(),
  };
}
