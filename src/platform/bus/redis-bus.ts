/**
 * The Redis implementation of the Bus: one subscriber connection per process (pub/sub needs its
 * own), publishes on the shared client. Channel names carry the deployment's REDIS_PREFIX.
 */
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

  subscriber.on('message', (name: string, message: string) => {
    const set = handlers.get(name);
    if (set === undefined || set.size === 0) return;
    let payload: BusPayload;
    try {
      payload = JSON.parse(message) as BusPayload;
    } catch (error) {
      log.warn({ err: error, channel: name }, 'undecodable bus message dropped');
      return;
    }
    for (const handler of set) {
      try {
        handler(payload);
      } catch (error) {
        log.error({ err: error, channel: name }, 'bus handler failed');
      }
    }
  });

  return {
    publish: async (topic, payload) => {
      await publisher.publish(channel(topic), JSON.stringify(payload));
    },
    subscribe: async (topic, handler) => {
      const name = channel(topic);
      let set = handlers.get(name);
      if (set === undefined) {
        set = new Set();
        handlers.set(name, set);
        await subscriber.subscribe(name);
      }
      set.add(handler);
      return async () => {
        set?.delete(handler);
        if (set?.size === 0) {
          handlers.delete(name);
          await subscriber.unsubscribe(name).catch(() => undefined);
        }
      };
    },
    close: async () => {
      handlers.clear();
      await subscriber.unsubscribe().catch(() => undefined);
    },
  };
}
