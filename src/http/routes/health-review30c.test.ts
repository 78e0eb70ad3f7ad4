import { Writable } from 'node:stream';
import Fastify from 'fastify';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { NOT_READY_LOG_INTERVAL_MS, READY_REUSE_MS, registerHealthRoutes } from './health.js';

describe('/health/ready logging while not ready', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('logs the transition with its reason and at most one repeat per NOT_READY_LOG_INTERVAL_MS, not one line per 503', async () => {
    vi.useFakeTimers({ toFake: ['performance'] });
    const lines: { level: number; msg: string; reason?: string }[] = [];
    const stream = new Writable({
      write(chunk, _encoding, done) {
        for (const line of String(chunk).split('\n')) if (line.trim() !== '') lines.push(JSON.parse(line));
        done();
      },
    });
    let healthy = true;
    const app = Fastify({ logger: { level: 'info', stream } });
    registerHealthRoutes(app, {
      info: () => ({}),
      checks: {
        redis: async () => {
          if (!healthy) throw new Error('connection refused');
        },
      },
      timeoutMs: 1_000,
      isDraining: () => false,
    });
    await app.ready();
    const ready = async () => (await app.inject({ method: 'GET', url: '/health/ready' })).statusCode;
    const warnings = () => lines.filter((line) => line.level === 40);

    expect(await ready()).toBe(200);
    healthy = false;
    vi.advanceTimersByTime(READY_REUSE_MS);
    // A balancer probing every second plus a client hammering it: 10 s of a dependency down.
    for (let second = 0; second < 10; second++) {
      for (let i = 0; i < 5; i++) expect(await ready()).toBe(503);
      vi.advanceTimersByTime(READY_REUSE_MS);
    }
    expect(warnings()).toHaveLength(1);
    expect(warnings()[0]).toMatchObject({
      msg: 'not ready',
      reason: 'redis unavailable: connection refused',
    });
    // Still down after the interval: one repeat, then quiet again.
    vi.advanceTimersByTime(NOT_READY_LOG_INTERVAL_MS);
    for (let i = 0; i < 5; i++) expect(await ready()).toBe(503);
    expect(warnings()).toHaveLength(2);
    expect(warnings()[1]).toMatchObject({ msg: 'still not ready' });
    // Back, then down again: a new transition is logged at once.
    healthy = true;
    vi.advanceTimersByTime(READY_REUSE_MS);
    expect(await ready()).toBe(200);
    healthy = false;
    vi.advanceTimersByTime(READY_REUSE_MS);
    expect(await ready()).toBe(503);
    expect(warnings()).toHaveLength(3);
    expect(warnings()[2]).toMatchObject({ msg: 'not ready' });
    await app.close();
  });
});
