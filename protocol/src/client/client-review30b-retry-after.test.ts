/**
 * Review 30b: every wait the SDK takes from a server's `details.retryAfterMs` is at most 60 s
 * (MAX_RETRY_AFTER_MS, as the backoff has its ceiling). A buggy value (an hour, 1e300) held a
 * room's sends that long, up to 24.8 days (`sendMessage` did not settle: its attempt waits for
 * the pause before its timeout starts), a resumed subscription's retry as long, and the
 * connection's whole queue behind a frame refused for the rate (the flush timer, over
 * 2^31 − 1 ms, fired at once and again, every millisecond). A non-finite number never gets here:
 * the codec refuses it in a server frame.
 * Against the shared hand-driven WebSocket (fake-socket.testing.ts) and fake timers.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { MAX_RETRY_AFTER_MS, retryAfterWait } from './backoff.js';
import { createClient, type GigwireClient } from './client.js';
import { FakeSocket } from './fake-socket.testing.js';

const ROOM = '6f1d2c3b-4a59-4e68-9d7c-8b1a2f3e4d5c';
const HOUR = 3_600_000;
const flush = () => vi.advanceTimersByTimeAsync(0);

let client: GigwireClient | undefined;

async function connect() {
  client = createClient({
    url: 'ws://gigwire.test/ws',
    encoding: 'json',
    WebSocket: FakeSocket,
    getAccessToken: () => 'token',
    heartbeat: false,
    // Longer than the cap: the request must still be waiting when the capped wait ends.
    requestTimeoutMs: 120_000,
    reconnect: { initialDelayMs: 1_000, maxDelayMs: 10_000 },
  });
  await flush();
  const socket = FakeSocket.instances.at(-1) as FakeSocket;
  socket.greet();
  await flush();
  return { client, socket };
}

const refusal = (id: unknown, code: string, retryAfterMs: number) => ({
  t: 'error',
  id,
  d: { code, message: 'try again', details: { retryAfterMs } },
});

beforeEach(() => {
  vi.useFakeTimers();
  FakeSocket.instances = [];
});
afterEach(() => {
  client?.close();
  client = undefined;
  vi.useRealTimers();
});

describe("a server's retryAfterMs is waited for at most 60 s (review 30b)", () => {
  it('reads a value over the cap, or Infinity, as the cap; nothing negative or not a number', () => {
    expect(MAX_RETRY_AFTER_MS).toBe(60_000);
    expect(retryAfterWait(250)).toBe(250);
    expect(retryAfterWait(0)).toBe(0);
    expect(retryAfterWait(HOUR)).toBe(MAX_RETRY_AFTER_MS);
    expect(retryAfterWait(Number.POSITIVE_INFINITY)).toBe(MAX_RETRY_AFTER_MS);
    expect(retryAfterWait(Number.NaN)).toBeUndefined();
    expect(retryAfterWait(-1)).toBeUndefined();
    expect(retryAfterWait('60')).toBeUndefined();
    expect(retryAfterWait(undefined)).toBeUndefined();
  });

  it.each([
    ['UNAVAILABLE', HOUR],
    ['RATE_LIMITED', 1e300],
  ])('sendMessage refused %s with retryAfterMs %d goes again after 60 s', async (code, retryAfterMs) => {
    const { client, socket } = await connect();
    const sent = client.sendMessage(ROOM, 'hi', { clientMsgId: 'k1' });
    await flush();
    expect(socket.sent).toHaveLength(1);
    socket.receive(refusal(socket.sent[0]?.id, code, retryAfterMs));
    await vi.advanceTimersByTimeAsync(MAX_RETRY_AFTER_MS - 1);
    expect(socket.sent).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(socket.sent.map((frame) => (frame.d as { clientMsgId?: string }).clientMsgId)).toEqual([
      'k1',
      'k1',
    ]);
    socket.reply(1, { seq: 3, sentAt: '2026-12-07T19:00:00.000Z' });
    await expect(sent).resolves.toMatchObject({ seq: 3, clientMsgId: 'k1' });
  });

  it('sends a frame refused for the connection rate with retryAfterMs of an hour again after 60 s, and the later ones', async () => {
    const { client, socket } = await connect();
    const first = client.request('ping');
    await flush();
    socket.receive(refusal(socket.sent[0]?.id, 'RATE_LIMITED', HOUR));
    const second = client.request('ping');
    await vi.advanceTimersByTimeAsync(MAX_RETRY_AFTER_MS - 1);
    expect(socket.sent).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(socket.sent).toHaveLength(2);
    socket.reply(1, { serverTime: 1 });
    await expect(first).resolves.toEqual({ serverTime: 1 });
    await vi.advanceTimersByTimeAsync(100);
    expect(socket.sent).toHaveLength(3);
    socket.reply(2, { serverTime: 2 });
    await expect(second).resolves.toEqual({ serverTime: 2 });
  });

  it('asks again for a resumed jobs.watch refused UNAVAILABLE with retryAfterMs of an hour after 60 s', async () => {
    const { client, socket } = await connect();
    const watching = client.watchJobs({ skills: ['go'] });
    await flush();
    socket.reply(0);
    await watching;
    socket.serverClose(1012);
    await vi.advanceTimersByTimeAsync(1_000);
    const next = FakeSocket.instances.at(-1) as FakeSocket;
    expect(next).not.toBe(socket);
    next.greet();
    await flush();
    expect(next.sent.map((frame) => frame.t)).toEqual(['jobs.watch']);
    next.receive(refusal(next.sent[0]?.id, 'UNAVAILABLE', HOUR));
    await vi.advanceTimersByTimeAsync(MAX_RETRY_AFTER_MS - 1);
    expect(next.sent).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(next.sent.map((frame) => frame.t)).toEqual(['jobs.watch', 'jobs.watch']);
  });
});
