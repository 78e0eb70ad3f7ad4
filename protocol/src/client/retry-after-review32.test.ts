/**
 * Review 32: a `Retry-After: 2.5` (a decimal: not delay-seconds, but plainly seconds) fell through
 * to `Date.parse`, which reads "2.5" as 5 February 2001: long past, so no wait at all, the retry
 * going at once into the same refusal. A number is now always seconds (rounded up), never a date.
 */
import { describe, expect, it } from 'vitest';
import { retryAfterHeaderMs } from './backoff.js';
import { createRestClient } from './rest.js';
import { type WebSocketLike, watchRefusedUpgrade } from './socket.js';

const CONTRACT = '33333333-3333-4333-8333-333333333333';
const unavailable = (retryAfter: string) =>
  new Response(JSON.stringify({ type: 'about:blank', title: 'x', status: 503, code: 'UNAVAILABLE' }), {
    status: 503,
    headers: { 'content-type': 'application/problem+json', 'retry-after': retryAfter },
  });

describe('a numeric Retry-After that is not delay-seconds (review 32)', () => {
  it('reads a decimal as seconds rounded up, and never a number as a date', () => {
    const now = Date.parse('2026-12-08T00:00:00Z');
    expect(retryAfterHeaderMs('2.5', now)).toBe(3_000);
    expect(retryAfterHeaderMs(' 0.1 ', now)).toBe(1_000);
    expect(retryAfterHeaderMs('7', now)).toBe(7_000);
    expect(retryAfterHeaderMs('-1', now)).toBeUndefined();
    expect(retryAfterHeaderMs('1.2.3', now)).toBeUndefined();
    expect(retryAfterHeaderMs('12 30', now)).toBeUndefined();
    expect(retryAfterHeaderMs(new Date(now + 4_000).toUTCString(), now)).toBe(4_000);
  });

  it('REST: waits 3 s after a 503 with Retry-After: 2.5', async () => {
    const sleeps: number[] = [];
    const steps = [unavailable('2.5'), unavailable('2.5')];
    const rest = createRestClient({
      baseUrl: 'http://api.test',
      accessToken: () => 'token',
      fetch: async () => steps.shift() as Response,
      sleep: async (ms) => {
        sleeps.push(ms);
      },
      random: () => 0,
      retry: { attempts: 2 },
    });
    await expect(rest.approve(CONTRACT)).rejects.toMatchObject({ code: 'UNAVAILABLE', attempts: 2 });
    expect(sleeps).toEqual([3_000]);
  });

  it('WebSocket: a refused upgrade with Retry-After: 2.5 asks for 3 s', () => {
    let listener: ((request: unknown, response: unknown) => void) | undefined;
    const socket = {
      on: (_event: string, l: typeof listener) => {
        listener = l;
      },
      close: () => {},
    } as unknown as WebSocketLike;
    const seen: (number | undefined)[] = [];
    watchRefusedUpgrade(socket, (_status, retryAfterMs) => seen.push(retryAfterMs));
    listener?.({}, { statusCode: 503, headers: { 'retry-after': '2.5' } });
    expect(seen).toEqual([3_000]);
  });
});
