import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createMemoryBus } from '../../platform/bus/bus.js';
import { actorRepliesTopic, actorRequestsTopic } from '../../platform/bus/topics.js';
import { AppError } from '../../platform/errors.js';
import { createLogger } from '../../platform/logger.js';
import { createManualTimers } from '../../platform/timers.js';
import { createRemoteActors, NO_ANSWER, NODE_GONE, type RemoteKind } from './remote.js';
import type { Reply } from './types.js';

type CounterMessage =
  | { readonly type: 'add'; readonly by: number; readonly reply: Reply<{ total: number }> }
  | { readonly type: 'local-only' };
const Wire = z.object({ type: z.literal('add'), by: z.number().int() });
const counterKind: RemoteKind<CounterMessage, z.infer<typeof Wire>> = {
  kind: 'counter',
  wire: Wire,
  toWire: (message) => (message.type === 'add' ? { type: 'add', by: message.by } : undefined),
};
const log = createLogger({ level: 'silent', pretty: false, destination: { write: () => undefined } });
const settle = () => new Promise((resolve) => setImmediate(resolve));

function twoNodes() {
  const bus = createMemoryBus();
  const timers = createManualTimers(0);
  const make = (nodeId: string) => createRemoteActors({ bus, nodeId, timers, log, askTimeoutMs: 1_000 });
  return { bus, timers, a: make('node-a'), b: make('node-b') };
}

describe('remote actors over the bus', () => {
  it('asks an actor hosted on another node and gets its answer, or its AppError with code and details', async () => {
    const { a, b } = twoNodes();
    const totals = new Map<string, number>();
    b.serve(counterKind, async (id, message) => {
      if (id === 'locked') throw new AppError('FORBIDDEN', 'not yours', { details: { id } });
      const total = (totals.get(id) ?? 0) + message.by;
      totals.set(id, total);
      return { total };
    });
    await a.start();
    await b.start();
    const ref = a.ref(counterKind, 'c1', 'node-b');
    await expect(ref.ask<{ total: number }>((reply) => ({ type: 'add', by: 2, reply }))).resolves.toEqual({
      total: 2,
    });
    await expect(ref.ask<{ total: number }>((reply) => ({ type: 'add', by: 3, reply }))).resolves.toEqual({
      total: 5,
    });
    const refused = a
      .ref(counterKind, 'locked', 'node-b')
      .ask((reply) => ({ type: 'add', by: 1, reply }))
      .catch((error: unknown) => error);
    expect(await refused).toMatchObject({
      code: 'FORBIDDEN',
      message: 'not yours',
      details: { id: 'locked' },
    });
    expect(await refused).toBeInstanceOf(AppError);
  });

  it('fails NODE_GONE at once when the request reaches nobody, and NO_ANSWER after the timeout', async () => {
    const { a, b, timers } = twoNodes();
    await a.start();
    const gone = a.ref(counterKind, 'c1', 'node-b').ask((reply) => ({ type: 'add', by: 1, reply }));
    await expect(gone).rejects.toMatchObject({ code: 'UNAVAILABLE', details: { reason: NODE_GONE } });

    b.serve(counterKind, () => new Promise(() => undefined)); // never answers
    await b.start();
    const silent = a
      .ref(counterKind, 'c1', 'node-b')
      .ask((reply) => ({ type: 'add', by: 1, reply }))
      .catch((error: unknown) => error);
    await settle();
    timers.advance(1_000);
    expect(await silent).toMatchObject({ code: 'UNAVAILABLE', details: { reason: NO_ANSWER } });
  });

  it('answers a request with a malformed message or of an unserved kind VALIDATION_FAILED, never runs it, and keeps local messages local', async () => {
    const { bus, a, b } = twoNodes();
    let ran = 0;
    b.serve(counterKind, async () => {
      ran++;
      return { total: 0 };
    });
    await a.start();
    await b.start();
    const replies: unknown[] = [];
    await bus.subscribe(actorRepliesTopic('spy'), (payload) => replies.push(payload));
    await bus.publish(actorRequestsTopic('node-b'), {
      from: 'spy',
      corr: 'x1',
      kind: 'counter',
      id: 'c',
      message: { type: 'add', by: 'two' },
    });
    await bus.publish(actorRequestsTopic('node-b'), {
      from: 'spy',
      corr: 'x2',
      kind: 'nope',
      id: 'c',
      message: {},
    });
    await settle();
    expect(ran).toBe(0);
    expect(replies).toEqual([
      expect.objectContaining({
        corr: 'x1',
        ok: false,
        error: expect.objectContaining({ code: 'VALIDATION_FAILED' }),
      }),
      expect.objectContaining({
        corr: 'x2',
        ok: false,
        error: expect.objectContaining({ code: 'VALIDATION_FAILED' }),
      }),
    ]);
    await expect(a.ref(counterKind, 'c', 'node-b').ask(() => ({ type: 'local-only' }))).rejects.toMatchObject(
      { code: 'INTERNAL' },
    );
  });

  it('fails open requests UNAVAILABLE when the node closes', async () => {
    const { a, b } = twoNodes();
    b.serve(counterKind, () => new Promise(() => undefined));
    await a.start();
    await b.start();
    const open = a.ref(counterKind, 'c1', 'node-b').ask((reply) => ({ type: 'add', by: 1, reply }));
    await settle();
    await a.close();
    await expect(open).rejects.toMatchObject({ code: 'UNAVAILABLE' });
  });
});
