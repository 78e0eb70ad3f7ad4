/**
 * The Redis implementation of the Bus: one subscriber connection per process (pub/sub needs its
 * own), publishes on the shared client. Channel names carry the deployment's REDIS_PREFIX.
 *
 * Each message carries its process's origin id: this process's own subscribers get it at once (in
 * a microtask, as a copy, like the memory bus) and skip it when Redis echoes it back, so local
 * delivery never waits for the round trip. Wire format: `{"o": origin, "p": payload}`.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from '../logger.js';
import type { Bus, BusHandler, BusPayload } from './bus.js';

export function createRedisBus(options: {
  readonly publisher: Redis;
  /** A dedicated connection: in subscriber mode it can do nothing else. */
  readonly subscriber: Redis;
  readonly prefix: string;
  readonly log: Logger;
}): Bus {
  const { publisher, subscriber, log } = options;
  const channel = (topic: string) => `${options.prefix}:bus:${topic}`;
  const handlers = new Map<string, Set<BusHandler>>();
  /** The SUBSCRIBE of each channel in `handlers`, settled or not. */
  const subscribing = new Map<string, Promise<void>>();
  const origin = randomUUID();

  const deliver = (name: string, payload: BusPayload) => {
    for (const handler of handlers.get(name) ?? []) {
      try {
        handler(payload);
      } catch (error) {
        log.error({ err: error, channel: name }, 'bus handler failed');
      }
    }
  };

  subscriber.on('message', (name: string, message: string) => {
    if (!handlers.has(name)) return;
    let envelope: { o?: unknown; p?: BusPayload };
    try {
      envelope = JSON.parse(message) as { o?: unknown; p?: BusPayload };
    } catch (error) {
      log.warn({ err: error, channel: name }, 'undecodable bus message dropped');
      return;
    }
    if (envelope.o === origin || envelope.p === undefined) return;
    deliver(name, envelope.p);
  });

  return {
    publish: async (topic, payload) => {
      const name = channel(topic);
      const message = JSON.stringify({ o: origin, p: payload });
      const local = handlers.has(name);
      if (local) {
        const copy = (JSON.parse(message) as { p: BusPayload }).p;
        queueMicrotask(() => deliver(name, copy));
      }
      // Redis counts this process's own subscriber connection too (it skips the echo): not twice.
      const reached = await publisher.publish(name, message);
      return local ? Math.max(reached, 1) : reached;
    },
    subscribe: async (topic, handler) => {
      const name = channel(topic);
      let set = handlers.get(name);
      if (set === undefined) {
        set = new Set();
        handlers.set(name, set);
        // Concurrent subscribers of a new channel wait for the same SUBSCRIBE.
        subscribing.set(
          name,
          subscriber.subscribe(name).then(() => undefined),
        );
      }
      set.add(handler);
      try {
        // A stalled Redis fails this after the subscriber client's command timeout instead of
        // hanging the caller; the channel is then forgotten, so the next subscribe tries again.
        await subscribing.get(name);
      } catch (error) {
        set.delete(handler);
        if (set.size === 0 && handlers.get(name) === set) {
          handlers.delete(name);
          subscribing.delete(name);
          subscriber.unsubscribe(name).catch(() => undefined);
        }
        throw error;
      }
      const subscribed = set;
      return async () => {
        subscribed.delete(handler);
        if (subscribed.size === 0 && handlers.get(name) === subscribed) {
          handlers.delete(name);
          subscribing.delete(name);
          await subscriber.unsubscribe(name).catch(() => undefined);
        }
      };
    },
    close: async () => {
      handlers.clear();
      subscribing.clear();
      await subscriber.unsubscribe().catch(() => undefined);
    },
  };
}
