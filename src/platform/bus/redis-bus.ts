/**
 * The Redis implementation of the Bus: one subscriber connection per process (pub/sub needs its
 * own), publishes on the shared client. Channel names carry the deployment's REDIS_PREFIX.
 *
 * Each message carries its process's origin id: this process's own subscribers get the published
 * object at once (in a microtask) and skip it when Redis echoes it back, so local delivery never
 * waits for the round trip nor parses anything. A message from another process is parsed once,
 * with the topic's schema, for all the handlers of its channel; one that does not match is logged
 * and dropped. Wire format: `{"o": origin, "p": payload}`.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from '../logger.js';
import type { Bus, BusHandler } from './bus.js';
import type { Topic } from './topics.js';

/** The handlers of one channel, and the schema its messages are parsed with. */
interface Channel {
  readonly topic: Topic<unknown>;
  readonly handlers: Set<BusHandler<unknown>>;
}

export function createRedisBus(options: {
  readonly publisher: Redis;
  /** A dedicated connection: in subscriber mode it can do nothing else. */
  readonly subscriber: Redis;
  readonly prefix: string;
  readonly log: Logger;
}): Bus {
  const { publisher, subscriber, log } = options;
  const channel = (topic: string) => `${options.prefix}:bus:${topic}`;
  const channels = new Map<string, Channel>();
  /** The SUBSCRIBE of each channel in `handlers`, settled or not. */
  const subscribing = new Map<string, Promise<void>>();
  const origin = randomUUID();

  const deliver = (name: string, payload: unknown) => {
    for (const handler of channels.get(name)?.handlers ?? []) {
      try {
        handler(payload);
      } catch (error) {
        log.error({ err: error, channel: name }, 'bus handler failed');
      }
    }
  };

  // Publishes start with exactly this text (see `publish`): Redis's echo of our own is recognised
  // without parsing it (every room message of a busy node comes back once).
  const ownPrefix = `{"o":${JSON.stringify(origin)},`;

  subscriber.on('message', (name: string, message: string) => {
    if (message.startsWith(ownPrefix)) return;
    const channel = channels.get(name);
    if (channel === undefined) return;
    let envelope: { o?: unknown; p?: unknown };
    try {
      envelope = JSON.parse(message) as { o?: unknown; p?: unknown };
    } catch (error) {
      log.warn({ err: error, channel: name }, 'undecodable bus message dropped');
      return;
    }
    if (envelope.o === origin || envelope.p === undefined) return;
    const payload = channel.topic.payload.safeParse(envelope.p);
    if (!payload.success) {
      log.warn(
        { channel: name, issues: payload.error.issues.slice(0, 3) },
        'bus message of the wrong shape dropped',
      );
      return;
    }
    deliver(name, payload.data);
  });

  // A dropped subscriber connection hears nothing until it is back: ioredis subscribes its
  // channels again right after 'ready' (autoResubscribe), and a PING sent after those SUBSCRIBEs
  // is answered after them, so its answer says the subscriptions are active again.
  const resubscribed = new Set<() => void>();
  let dropped = false;
  subscriber.on('close', () => {
    dropped = true;
  });
  subscriber.on('ready', () => {
    if (!dropped) return;
    dropped = false;
    setImmediate(() => {
      subscriber.ping().then(
        () => {
          log.info('bus subscriptions active again; what was published meanwhile is read again');
          for (const listener of resubscribed) {
            try {
              listener();
            } catch (error) {
              log.error({ err: error }, 'bus resubscribe listener failed');
            }
          }
        },
        // Dropped again before it answered: the next 'ready' tries again.
        () => {
          dropped = true;
        },
      );
    });
  });

  return {
    onResubscribed: (listener) => {
      resubscribed.add(listener);
      return () => resubscribed.delete(listener);
    },
    publish: async (topic, payload) => {
      const name = channel(topic.name);
      const message = `${ownPrefix}"p":${JSON.stringify(payload)}}`;
      const local = channels.has(name);
      if (local) queueMicrotask(() => deliver(name, payload));
      // Redis counts this process's own subscriber connection too (it skips the echo): not twice.
      const reached = await publisher.publish(name, message);
      return local ? Math.max(reached, 1) : reached;
    },
    subscribe: async (topic, handler) => {
      const name = channel(topic.name);
      let set = channels.get(name)?.handlers;
      if (set === undefined) {
        set = new Set();
        channels.set(name, { topic: topic as Topic<unknown>, handlers: set });
        // Concurrent subscribers of a new channel wait for the same SUBSCRIBE.
        subscribing.set(
          name,
          subscriber.subscribe(name).then(() => undefined),
        );
      }
      const entry = handler as BusHandler<unknown>;
      set.add(entry);
      try {
        // A stalled Redis fails this after the subscriber client's command timeout instead of
        // hanging the caller; the channel is then forgotten, so the next subscribe tries again.
        await subscribing.get(name);
      } catch (error) {
        set.delete(entry);
        if (set.size === 0 && channels.get(name)?.handlers === set) {
          channels.delete(name);
          subscribing.delete(name);
          subscriber.unsubscribe(name).catch(() => undefined);
        }
        throw error;
      }
      const subscribed = set;
      return async () => {
        subscribed.delete(entry);
        if (subscribed.size === 0 && channels.get(name)?.handlers === subscribed) {
          channels.delete(name);
          subscribing.delete(name);
          await subscriber.unsubscribe(name).catch(() => undefined);
        }
      };
    },
    close: async () => {
      resubscribed.clear();
      channels.clear();
      subscribing.clear();
      await subscriber.unsubscribe().catch(() => undefined);
    },
  };
}
