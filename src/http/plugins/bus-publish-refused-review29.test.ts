/**
 * Review 29: a PUBLISH that Redis answers with an error reply (an ACL refusal, NOPERM) on a REST
 * request's path. The publisher is a stand-in rejecting as ioredis does (a ReplyError); the REST
 * side is Fastify with our error handling. A refusal by ACL is a deployment's fault, not an outage:
 * a logged error and a 500 INTERNAL problem+json (as for ERR/WRONGTYPE, errors-review17b.test.ts),
 * never a crash; a Redis that cannot serve now stays 503 UNAVAILABLE.
 */
import Fastify, { type FastifyBaseLogger } from 'fastify';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createRedisBus } from '../../platform/bus/redis-bus.js';
import type { Topic } from '../../platform/bus/topics.js';
import { createLogger } from '../../platform/logger.js';
import { registerErrorHandling } from './errors.js';

describe('a bus PUBLISH refused by Redis on a REST request', () => {
  it('rejects the publish with the reply and is answered problem+json with a logged error, the process untouched', async () => {
    const lines: string[] = [];
    const log = createLogger({
      level: 'info',
      pretty: false,
      destination: { write: (line) => lines.push(line) },
    });
    const answers = [
      [
        Object.assign(new Error("NOPERM User gigwire has no permissions to access the 'x:bus:r29' channel"), {
          name: 'ReplyError',
        }),
        500,
        'INTERNAL',
      ],
      [
        Object.assign(new Error('Reached the max retries per request limit'), {
          name: 'MaxRetriesPerRequestError',
        }),
        503,
        'UNAVAILABLE',
      ],
    ] as const;
    for (const [refusal, status, code] of answers) {
      const publisher = { publish: async () => Promise.reject(refusal) } as unknown as Parameters<
        typeof createRedisBus
      >[0]['publisher'];
      const subscriber = { on: () => undefined, subscribe: async () => 1 } as unknown as Parameters<
        typeof createRedisBus
      >[0]['publisher'];
      const bus = createRedisBus({ publisher, subscriber, prefix: 'x', log });
      const topic: Topic<{ n: number }> = { name: 'r29', payload: z.object({ n: z.number() }) };
      // A local subscriber too: its delivery must not turn the refusal into an unhandled rejection.
      const heard: unknown[] = [];
      await bus.subscribe(topic, (payload) => heard.push(payload));
      await expect(bus.publish(topic, { n: 1 })).rejects.toBe(refusal);

      const app = Fastify({ loggerInstance: log as FastifyBaseLogger });
      registerErrorHandling(app);
      app.post('/publish', async () => {
        await bus.publish(topic, { n: 2 });
        return { ok: true };
      });
      const answer = await app.inject({ method: 'POST', url: '/publish' });
      await app.close();
      expect(answer.statusCode).toBe(status);
      expect(answer.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(answer.json()).toMatchObject({ code });
      expect(heard).toEqual([{ n: 1 }, { n: 2 }]);
    }
    expect(lines.some((line) => line.includes('"level":50') && line.includes('NOPERM'))).toBe(true);
  });
});
