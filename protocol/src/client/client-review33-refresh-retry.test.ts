/**
 * Review 33: the scheduled token refresh, failed for a passing reason (the token source's network,
 * a 429), was never tried again: the server closed the connection 4001 at `exp` and the user saw a
 * needless disconnect. Now it is retried on the same connection (the server's retry-after, else a
 * backoff) while that still comes before `exp`; a refusal (UNAUTHORIZED) is not.
 * Against the shared hand-driven WebSocket (fake-socket.testing.ts) and fake timers.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createClient, type GigwireClient, type TokenReason } from './client.js';
import { GigwireError } from './errors.js';
import { FakeSocket } from './fake-socket.testing.js';

const jwt = (claims: Record<string, unknown>) =>
  `h.${btoa(JSON.stringify(claims)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')}.s`;

let client: GigwireClient | undefined;

/** Connected with a token expiring in 600 s; `fail` says how each refresh call fails (or not). */
async function connect(fail: (call: number) => Error | undefined) {
  const reasons: TokenReason[] = [];
  const exp = Math.floor(Date.now() / 1000) + 600;
  let refreshes = 0;
  client = createClient({
    url: 'ws://gigwire.test/ws',
    encoding: 'json',
    WebSocket: FakeSocket,
    heartbeat: false,
    reconnect: { initialDelayMs: 1_000, maxDelayMs: 1_000 },
    getAccessToken: ({ reason }) => {
      reasons.push(reason);
      if (reason === 'refresh') {
        refreshes += 1;
        const error = fail(refreshes);
        if (error !== undefined) throw error;
      }
      return jwt({ sub: 'u', exp });
    },
  });
  client.on('error', () => undefined);
  await vi.advanceTimersByTimeAsync(0);
  const socket = FakeSocket.instances.at(-1) as FakeSocket;
  socket.greet();
  await vi.advanceTimersByTimeAsync(0);
  return { socket, reasons };
}

beforeEach(() => {
  vi.useFakeTimers();
  // A whole second: `exp` (seconds) then falls exactly 600 s ahead.
  vi.setSystemTime(Date.UTC(2026, 0, 1));
  FakeSocket.instances = [];
});
afterEach(() => {
  client?.close();
  client = undefined;
  vi.useRealTimers();
});

describe('the scheduled token refresh is retried before exp (review 33)', () => {
  it('asks again after a failed token fetch and sends auth.refresh on the same socket', async () => {
    const { socket, reasons } = await connect((call) => (call === 1 ? new Error('network blip') : undefined));
    // Scheduled at exp − 60 s: the first refresh fails.
    await vi.advanceTimersByTimeAsync(540_000);
    expect(reasons).toEqual(['connect', 'refresh']);
    expect(socket.sent).toEqual([]);
    // Retried within the backoff (≤ 1 s here), long before exp.
    await vi.advanceTimersByTimeAsync(1_000);
    expect(reasons).toEqual(['connect', 'refresh', 'refresh']);
    expect(socket.sent).toMatchObject([{ t: 'auth.refresh' }]);
    expect(FakeSocket.instances).toHaveLength(1);
  });

  it("waits a 429's retryAfterS, and does not retry a refusal", async () => {
    const limited = new GigwireError('RATE_LIMITED', 'slow down', { details: { retryAfterS: 5 } });
    const { socket, reasons } = await connect((call) => (call === 1 ? limited : undefined));
    await vi.advanceTimersByTimeAsync(540_000);
    await vi.advanceTimersByTimeAsync(4_900);
    expect(reasons).toEqual(['connect', 'refresh']);
    await vi.advanceTimersByTimeAsync(100);
    expect(reasons).toEqual(['connect', 'refresh', 'refresh']);
    expect(socket.sent).toMatchObject([{ t: 'auth.refresh' }]);

    client?.close();
    FakeSocket.instances = [];
    const refused = await connect(() => new GigwireError('UNAUTHORIZED', 'refresh token revoked'));
    await vi.advanceTimersByTimeAsync(540_000);
    await vi.advanceTimersByTimeAsync(59_000);
    expect(refused.reasons).toEqual(['connect', 'refresh']);
  });
});
