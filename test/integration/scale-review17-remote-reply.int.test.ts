/**
 * A remote ask answered by a node of a newer version, with an error code this node does not know
 * (a rolling deploy that added one): the asker gets that answer at once as an error of its own
 * (INTERNAL, the remote code named in its details), not a NO_ANSWER timeout. Before, the reply
 * envelope's schema listed this version's codes only, so the Redis bus dropped the whole reply as
 * "of the wrong shape" and the asker waited its full timeout although the answer had arrived.
 * Real Redis; the newer node is played by a raw Redis client on the wire format.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createRemoteActors, NO_ANSWER, type RemoteKind } from '../../src/actors/runtime/remote.js';
import type { Reply } from '../../src/actors/runtime/types.js';
import { createRedisBus } from '../../src/platform/bus/redis-bus.js';
import { isAppError } from '../../src/platform/errors.js';
import { closeRedisClient, createRedisClient } from '../../src/platform/redis.js';
import { systemTimers } from '../../src/platform/timers.js';
import { captureLogs, sharedRedisUrl, uniqueRedisPrefix } from '../support/context.js';

type EchoMessage = { readonly type: 'echo'; readonly text: string; readonly reply: Reply<string> };
const Wire = z.object({ type: z.literal('echo'), text: z.string() });
const echoKind: RemoteKind<EchoMessage, z.infer<typeof Wire>> = {
  kind: 'echo',
  wire: Wire,
  toWire: (message) => ({ type: 'echo', text: message.text }),
};

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

describe('remote actor replies across versions (real Redis)', () => {
  const logs = captureLogs();

  it('delivers an answer whose error code this version does not know as INTERNAL at once, naming the code', async () => {
    const prefix = uniqueRedisPrefix();
    const client = (name: string) =>
      createRedisClient({ endpoint: sharedRedisUrl(), name, log: logs.log, commandTimeoutMs: 5_000 });
    const publisher = client('asker');
    const subscriber = client('asker-bus');
    const newer = client('newer-node');
    const newerSubscriber = client('newer-node-bus');
    const bus = createRedisBus({ publisher, subscriber, prefix, log: logs.log });
    // Far longer than the test may take: the answer must come from the reply, never the timer.
    const remote = createRemoteActors({
      bus,
      nodeId: 'old-node',
      timers: systemTimers,
      log: logs.log,
      askTimeoutMs: 600_000,
    });
    cleanups.push(async () => {
      await remote.close();
      await bus.close();
      for (const c of [publisher, subscriber, newer, newerSubscriber]) await closeRedisClient(c);
    });
    await remote.start();

    // The newer node: answers each request with a code added after this version.
    newerSubscriber.on('message', (_channel: string, text: string) => {
      const request = (JSON.parse(text) as { p: { from: string; corr: string } }).p;
      const reply = {
        corr: request.corr,
        ok: false,
        error: {
          code: 'SOME_CODE_ADDED_LATER',
          message: 'refused for a new reason',
          details: { why: 'new' },
        },
      };
      void newer.publish(
        `${prefix}:bus:node.${request.from}.replies`,
        JSON.stringify({ o: 'newer-node', p: reply }),
      );
    });
    await newerSubscriber.subscribe(`${prefix}:bus:node.new-node.requests`);

    const outcome = await remote
      .ref(echoKind, 'e1', 'new-node')
      .ask<string>((reply) => ({ type: 'echo', text: 'hi', reply }))
      .then(
        () => 'answered ok',
        (error: unknown) => error,
      );
    expect(isAppError(outcome)).toBe(true);
    expect(outcome).toMatchObject({
      code: 'INTERNAL',
      details: { remoteCode: 'SOME_CODE_ADDED_LATER', why: 'new' },
    });
    expect(isAppError(outcome) && outcome.details?.reason).not.toBe(NO_ANSWER);
  }, 30_000);
});
