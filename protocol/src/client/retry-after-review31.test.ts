/**
 * Review 31: a `Retry-After` given as an HTTP date was read against this device's clock. A device
 * a few minutes behind the server saw a 2 s wait as minutes (a keyed command thrown as "too long"
 * instead of retried, a refused upgrade waited for the full 60 s cap); one ahead saw none (the
 * retry went at once into the same refusal). It counts from the answer's own `Date` now.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createClient } from './client.js';
import { FakeSocket } from './fake-socket.testing.js';
import { createRestClient } from './rest.js';

const CONTRACT = '33333333-3333-4333-8333-333333333333';
const SERVER_NOW = Date.parse('2026-12-07T21:00:00Z');
const unavailable = () =>
  new Response(JSON.stringify({ type: 'about:blank', title: 'x', status: 503, code: 'UNAVAILABLE' }), {
    status: 503,
    headers: {
      'content-type': 'application/problem+json',
      date: new Date(SERVER_NOW).toUTCString(),
      'retry-after': new Date(SERVER_NOW + 2_000).toUTCString(),
    },
  });

describe('a Retry-After HTTP date on a device whose clock is off (review 31)', () => {
  for (const [name, offMs] of [
    ['10 minutes behind', -600_000],
    ['10 minutes ahead', 600_000],
  ] as const) {
    it(`REST: waits the 2 s the server meant, clock ${name}`, async () => {
      const sleeps: number[] = [];
      const steps = [unavailable(), unavailable()];
      const rest = createRestClient({
        baseUrl: 'http://api.test',
        accessToken: () => 'token',
        fetch: async () => steps.shift() as Response,
        sleep: async (ms) => {
          sleeps.push(ms);
        },
        random: () => 0,
        retry: { attempts: 2 },
        now: () => SERVER_NOW + offMs,
      });
      await expect(rest.approve(CONTRACT)).rejects.toMatchObject({ code: 'UNAVAILABLE', attempts: 2 });
      expect(sleeps).toEqual([2_000]);
    });
  }
});

class WsLikeSocket extends FakeSocket {
  private readonly listeners = new Map<string, ((...args: unknown[]) => void)[]>();
  on(event: string, listener: (...args: unknown[]) => void): this {
    this.listeners.set(event, [...(this.listeners.get(event) ?? []), listener]);
    return this;
  }
  refuse(status: number, headers: Record<string, string>): void {
    for (const listener of this.listeners.get('unexpected-response') ?? [])
      listener({}, { statusCode: status, headers });
  }
  override close(code?: number, reason?: string): void {
    super.close(code, reason);
    if (this.readyState === 0) {
      this.readyState = 2;
      queueMicrotask(() => this.fail('WebSocket was closed before the connection was established'));
    }
  }
}

describe('an upgrade refused with a Retry-After HTTP date (review 31)', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    FakeSocket.instances = [];
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('waits what the server meant with a device clock 10 minutes behind, not the 60 s cap', async () => {
    vi.setSystemTime(SERVER_NOW - 600_000);
    const client = createClient({
      url: 'ws://gigwire.test/ws',
      encoding: 'json',
      WebSocket: WsLikeSocket,
      getAccessToken: () => 'token',
      reconnect: { initialDelayMs: 1 },
    });
    await vi.advanceTimersByTimeAsync(1);
    (FakeSocket.instances.at(-1) as WsLikeSocket).refuse(503, {
      date: new Date(SERVER_NOW).toUTCString(),
      'retry-after': new Date(SERVER_NOW + 2_000).toUTCString(),
    });
    await vi.advanceTimersByTimeAsync(2_100);
    expect(FakeSocket.instances).toHaveLength(2);
    client.close();
  });
});
