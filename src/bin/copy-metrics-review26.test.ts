/**
 * Review 26 (/metrics as an attacker sees it): under GATEWAY_PROCESSES a copy asked for /metrics
 * asks the supervisor, which asks every serving copy for its series. /metrics takes no credential
 * and no rate limit (nginx keeps it internal, but a process's PORT may be reached without it), and
 * each request started a collection of its own: K requests at once made every copy serialize its
 * registry K times (every copy's event loop, WebSockets included, stalled for all of them) and
 * the supervisor held K listeners on each copy, every reply run past all K (K² work). Requests that
 * arrive while a merge is in flight now share it.
 */

import type { Worker } from 'node:cluster';
import { EventEmitter } from 'node:events';
import pino from 'pino';
import { Counter, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createMetricsMerger } from './copy-metrics.js';

/** A serving copy: answers the supervisor's requests for its series with its registry's. */
function fakeCopy(node: string) {
  const registry = new Registry();
  registry.setDefaultLabels({ node });
  new Counter({ name: 'review26_total', help: 'x', registers: [registry] }).inc();
  const copy = new EventEmitter() as EventEmitter & { asked: number };
  copy.asked = 0;
  Object.assign(copy, {
    isConnected: () => true,
    send: (message: { t: string; id: number }) => {
      copy.asked += 1;
      void registry
        .getMetricsAsJSON()
        .then((metrics) =>
          setImmediate(() =>
            copy.emit('message', { t: 'gigwire.metrics-own-reply', id: message.id, metrics }),
          ),
        );
      return true;
    },
  });
  return copy;
}

describe("the supervisor's merge of every copy's /metrics", () => {
  it("answers requests that arrive together from one collection, each with every copy's series", async () => {
    const copies = [fakeCopy('a'), fakeCopy('b')];
    const merger = createMetricsMerger(() => copies as unknown as Worker[], pino({ level: 'silent' }));
    const replies = new Map<number, string | undefined>();
    const asker = new EventEmitter();
    const answered = new Promise<void>((resolve) => {
      Object.assign(asker, {
        isConnected: () => true,
        send: (reply: { id: number; text?: string }) => {
          replies.set(reply.id, reply.text);
          if (replies.size === 50) resolve();
          return true;
        },
      });
    });
    merger.serve(asker as unknown as Worker);
    for (let id = 0; id < 50; id++) asker.emit('message', { t: 'gigwire.metrics-all', id });
    await answered;

    expect(copies.map((copy) => copy.asked)).toEqual([1, 1]);
    expect([...replies.keys()].sort((x, y) => x - y)).toEqual([...Array(50).keys()]);
    for (const text of replies.values()) {
      expect(text).toContain('review26_total{node="a"} 1');
      expect(text).toContain('review26_total{node="b"} 1');
    }
    // A request after that merge settled is answered from a new one (no stale series kept).
    const next = new Promise<string | undefined>((resolve) => {
      Object.assign(asker, { send: (reply: { text?: string }) => resolve(reply.text) });
    });
    asker.emit('message', { t: 'gigwire.metrics-all', id: 50 });
    expect(await next).toContain('review26_total{node="a"} 1');
    expect(copies.map((copy) => copy.asked)).toEqual([2, 2]);
  });
});
