/**
 * Review 25: the WebSocket client on a bad network, against a scripted fake WebSocket and fake
 * timers (as client.test.ts).
 * - A wall clock stepped back (an NTP correction, the user fixing the time) froze the rate bucket
 *   and the heartbeat for as long as the step: every request waited (and timed out) and a dead
 *   path went unnoticed. Elapsed time now counts a step back as no time.
 * - `refreshToken()` after `close()` asked `getAccessToken` for a refresh (a REST call after the
 *   user signed out) and left its timeout running; it now rejects CLOSED at once.
 * - A browser that cannot reach the socket endpoint (offline, a proxy that blocks WebSockets, a
 *   server down) sees handshake failures without a cause; the client asked `getAccessToken` for a
 *   fresh token after every third one for as long as the outage lasted: a token refresh over REST
 *   every few seconds, each a chance to lose a rotated refresh token on that same bad network. The
 *   asks now space out (after 3, 6, 12… failures in a row).
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createClient, type TokenReason } from './client.js';
import { FakeSocket } from './fake-socket.testing.js';

const latest = () => FakeSocket.instances.at(-1) as FakeSocket;

beforeEach(() => {
  vi.useFakeTimers();
  FakeSocket.instances = [];
});
afterEach(() => {
  vi.useRealTimers();
});

describe('a wall clock stepped back (review 25)', () => {
  it('does not hold the paced requests for as long as the step', async () => {
    const client = createClient({
      url: 'ws://gigwire.test/ws',
      encoding: 'json',
      WebSocket: FakeSocket,
      getAccessToken: () => 'token',
      heartbeat: false,
    });
    await vi.advanceTimersByTimeAsync(0);
    const socket = latest();
    socket.greet({ maxMessagesPerSecond: 10, maxBurst: 5 });
    // The bucket (4 of 5, paced below the server's) is spent.
    for (let i = 0; i < 4; i++) void client.request('ping').catch(() => undefined);
    await vi.advanceTimersByTimeAsync(0);
    expect(socket.sent).toHaveLength(4);

    vi.setSystemTime(Date.now() - 60_000);
    const late = client.request('ping').catch((error: unknown) => error);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(socket.sent).toHaveLength(5);
    client.close();
    await late;
  });

  it('still drops a path that went silent', async () => {
    const client = createClient({
      url: 'ws://gigwire.test/ws',
      encoding: 'json',
      WebSocket: FakeSocket,
      getAccessToken: () => 'token',
    });
    const disconnected: number[] = [];
    client.on('disconnected', ({ code }) => disconnected.push(code));
    await vi.advanceTimersByTimeAsync(0);
    const socket = latest();
    socket.greet({}, 1_000);
    vi.setSystemTime(Date.now() - 60_000);
    // Nothing arrives any more: a ping after a heartbeat of silence, dropped a heartbeat later.
    await vi.advanceTimersByTimeAsync(3_000);
    expect(socket.sent.map((frame) => frame.t)).toEqual(['ping']);
    expect(disconnected).toEqual([1006]);
    client.close();
  });
});

describe('handshakes failing without a cause (review 25)', () => {
  it('asks for a fresh token after 3, 6, 12 and 24 failures in a row, not after every third', async () => {
    const reasons: TokenReason[] = [];
    const client = createClient({
      url: 'ws://gigwire.test/ws',
      encoding: 'json',
      WebSocket: FakeSocket,
      getAccessToken: ({ reason }) => {
        reasons.push(reason);
        return `token-${reasons.length}`;
      },
      reconnect: { initialDelayMs: 10, maxDelayMs: 10 },
    });
    for (let failures = 0; failures < 30; failures++) {
      await vi.advanceTimersByTimeAsync(10);
      latest().failHidden();
    }
    expect(FakeSocket.instances).toHaveLength(30);
    const fresh = reasons.flatMap((reason, index) => (reason === 'expired' ? [index] : []));
    // The ask before attempt n + 1 follows the n-th failure.
    expect(fresh).toEqual([3, 6, 12, 24]);

    // A connection that opens starts the count over.
    await vi.advanceTimersByTimeAsync(10);
    latest().greet({});
    latest().failHidden();
    for (let failures = 0; failures < 3; failures++) {
      await vi.advanceTimersByTimeAsync(10);
      latest().failHidden();
    }
    await vi.advanceTimersByTimeAsync(10);
    expect(reasons.at(-1)).toBe('expired');
    client.close();
  });
});

describe('refreshToken after close() (review 25)', () => {
  it('rejects CLOSED at once: no getAccessToken call, no timer left', async () => {
    const reasons: TokenReason[] = [];
    const client = createClient({
      url: 'ws://gigwire.test/ws',
      encoding: 'json',
      WebSocket: FakeSocket,
      getAccessToken: ({ reason }) => {
        reasons.push(reason);
        // A refresh over REST, say after the user signed out: it must not even start.
        return reason === 'connect' ? 'token' : new Promise<string>(() => undefined);
      },
    });
    await vi.advanceTimersByTimeAsync(0);
    client.close();
    let outcome: unknown = 'still waiting';
    client.refreshToken().catch((error: unknown) => (outcome = error));
    await vi.advanceTimersByTimeAsync(0);
    expect(outcome).toMatchObject({ code: 'CLOSED' });
    expect(reasons).toEqual(['connect']);
    expect(vi.getTimerCount()).toBe(0);
  });
});
