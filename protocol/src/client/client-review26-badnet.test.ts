/**
 * Review 26: the WebSocket client on a bad network, against a scripted fake WebSocket and fake
 * timers (as client.test.ts).
 * - An upgrade refused 429 with `Retry-After` (the per-address upgrade limit of a reconnect storm)
 *   was retried on the client's own backoff (a few hundred ms), to be refused again. Where the
 *   socket shows the response (`ws`: `unexpected-response`), the next attempt now waits for it.
 * - Pushes of a room still on the way when the app left it were emitted as `room.message` as if it
 *   were still in the room, and so were the messages held for a first join answered after the leave.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createClient, type TokenReason } from './client.js';
import type { GigwireError } from './errors.js';
import { FakeSocket } from './fake-socket.testing.js';

const ROOM = 'c7d4e2a1-5b3f-4e6a-9c8d-1f2e3a4b5c6d';
const latest = () => FakeSocket.instances.at(-1) as FakeSocket;

/** As the `ws` package: `unexpected-response` for a refused upgrade, aborted by close() while connecting. */
class WsLikeSocket extends FakeSocket {
  private readonly listeners = new Map<string, ((...args: unknown[]) => void)[]>();
  on(event: string, listener: (...args: unknown[]) => void): this {
    this.listeners.set(event, [...(this.listeners.get(event) ?? []), listener]);
    return this;
  }
  /** The server answers the upgrade with `status` instead of 101. */
  refuse(status: number, headers: Record<string, string> = {}): void {
    const listeners = this.listeners.get('unexpected-response') ?? [];
    if (listeners.length === 0) {
      this.fail(`Unexpected server response: ${status}`);
      return;
    }
    for (const listener of listeners) listener({}, { statusCode: status, headers });
  }
  override close(code?: number, reason?: string): void {
    super.close(code, reason);
    if (this.readyState === 0) {
      this.readyState = 2;
      queueMicrotask(() => this.fail('WebSocket was closed before the connection was established'));
    }
  }
}

beforeEach(() => {
  vi.useFakeTimers();
  FakeSocket.instances = [];
});
afterEach(() => {
  vi.useRealTimers();
});

function wsClient() {
  const reasons: TokenReason[] = [];
  const errors: GigwireError[] = [];
  const client = createClient({
    url: 'ws://gigwire.test/ws',
    encoding: 'json',
    WebSocket: WsLikeSocket,
    getAccessToken: ({ reason }) => {
      reasons.push(reason);
      return 'token';
    },
  });
  client.on('error', (error) => errors.push(error));
  return { client, reasons, errors };
}

describe('an upgrade refused with Retry-After (review 26)', () => {
  it('waits for the Retry-After before the next attempt', async () => {
    const { client, errors } = wsClient();
    await vi.advanceTimersByTimeAsync(0);
    expect(FakeSocket.instances).toHaveLength(1);
    (latest() as WsLikeSocket).refuse(429, { 'retry-after': '5' });
    await vi.advanceTimersByTimeAsync(0);
    expect(errors.at(-1)?.code).toBe('CONNECT_FAILED');
    expect(errors.at(-1)?.message).toContain('429');
    // Before: the next attempt after at most 250 ms (the first backoff ceiling).
    await vi.advanceTimersByTimeAsync(4_999);
    expect(FakeSocket.instances).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(300);
    expect(FakeSocket.instances).toHaveLength(2);
    expect(errors.at(-1)?.details).toEqual({ retryAfterMs: 5_000 });
    client.close();
  });

  it('bounds a Retry-After of hours to a minute, and an HTTP date counts too', async () => {
    const { client } = wsClient();
    await vi.advanceTimersByTimeAsync(0);
    (latest() as WsLikeSocket).refuse(429, { 'retry-after': '7200' });
    await vi.advanceTimersByTimeAsync(60_000 + 250);
    expect(FakeSocket.instances).toHaveLength(2);
    (latest() as WsLikeSocket).refuse(503, { 'retry-after': new Date(Date.now() + 20_000).toUTCString() });
    await vi.advanceTimersByTimeAsync(19_000);
    expect(FakeSocket.instances).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1_000 + 500);
    expect(FakeSocket.instances).toHaveLength(3);
    client.close();
  });

  it('still reads a 401 seen this way as an expired token', async () => {
    const { client, reasons } = wsClient();
    await vi.advanceTimersByTimeAsync(0);
    (latest() as WsLikeSocket).refuse(401);
    await vi.advanceTimersByTimeAsync(300);
    expect(FakeSocket.instances).toHaveLength(2);
    expect(reasons).toEqual(['connect', 'expired']);
    client.close();
  });
});

describe('pushes of a room the app left (review 26)', () => {
  const message = (seq: number) => ({
    t: 'room.message',
    d: {
      roomId: ROOM,
      seq,
      senderId: '5d2c8f3a-9b1e-4c7d-8a6f-2e4b9c1d7a35',
      clientMsgId: `m${seq}`,
      body: `hello ${seq}`,
      sentAt: new Date(1_700_000_000_000 + seq).toISOString(),
    },
  });

  async function joined() {
    const client = createClient({
      url: 'ws://gigwire.test/ws',
      encoding: 'json',
      WebSocket: FakeSocket,
      getAccessToken: () => 'token',
      heartbeat: false,
    });
    const seqs: number[] = [];
    client.on('room.message', (m) => seqs.push(m.seq));
    await vi.advanceTimersByTimeAsync(0);
    const socket = latest();
    socket.greet();
    return { client, seqs, socket };
  }

  it('drops those still on the way until the leave is answered', async () => {
    const { client, seqs, socket } = await joined();
    const join = client.joinRoom(ROOM);
    await vi.advanceTimersByTimeAsync(0);
    socket.reply(0, { lastSeq: 4 });
    await join;
    socket.receive(message(5));
    expect(seqs).toEqual([5]);

    const left = client.leaveRoom(ROOM);
    await vi.advanceTimersByTimeAsync(0);
    expect(socket.sent[1]).toMatchObject({ t: 'room.leave', d: { roomId: ROOM } });
    socket.receive(message(6));
    socket.receive(message(7));
    expect(seqs).toEqual([5]);
    socket.reply(1);
    await left;
    client.close();
  });

  it('emits nothing of a gap fill answered after the leave', async () => {
    const { client, seqs, socket } = await joined();
    const join = client.joinRoom(ROOM);
    await vi.advanceTimersByTimeAsync(0);
    socket.reply(0, { lastSeq: 4 });
    await join;
    socket.receive(message(7));
    await vi.advanceTimersByTimeAsync(0);
    expect(socket.sent[1]).toMatchObject({ t: 'room.history', d: { roomId: ROOM, beforeSeq: 7 } });
    const left = client.leaveRoom(ROOM);
    await vi.advanceTimersByTimeAsync(0);
    socket.reply(1, { messages: [message(6).d, message(5).d] });
    socket.reply(2);
    await left;
    await vi.advanceTimersByTimeAsync(0);
    expect(seqs).toEqual([]);
    client.close();
  });

  it('emits nothing held for a first join answered after the leave', async () => {
    const { client, seqs, socket } = await joined();
    const join = client.joinRoom(ROOM);
    await vi.advanceTimersByTimeAsync(0);
    // The join's catch-up overtakes its ok; the app leaves before the ok arrives.
    socket.receive(message(1));
    socket.receive(message(2));
    const left = client.leaveRoom(ROOM);
    await vi.advanceTimersByTimeAsync(0);
    socket.reply(0, { lastSeq: 0 });
    await join;
    socket.reply(1);
    await left;
    await vi.advanceTimersByTimeAsync(0);
    expect(seqs).toEqual([]);
    // Nothing of the room was fetched for it either.
    expect(socket.sent.map((frame) => frame.t)).toEqual(['room.join', 'room.leave']);
    client.close();
  });
});

describe('a hello later than requestTimeoutMs (review 26)', () => {
  it('ignores the late hello of the attempt given up and gives the next one longer', async () => {
    const client = createClient({
      url: 'ws://gigwire.test/ws',
      encoding: 'json',
      WebSocket: FakeSocket,
      getAccessToken: () => 'token',
    });
    const connected: unknown[] = [];
    client.on('connected', (event) => connected.push(event));
    await vi.advanceTimersByTimeAsync(0);
    const first = latest();
    first.open();
    await vi.advanceTimersByTimeAsync(10_000);
    // Given up at 10 s: closed, and its hello at 11 s changes nothing.
    expect(first.closedWith).toBeDefined();
    await vi.advanceTimersByTimeAsync(250);
    first.hello();
    expect(connected).toEqual([]);
    expect(first.sent).toEqual([]);
    expect(FakeSocket.instances).toHaveLength(2);

    // The path still needs about 11 s: before, this attempt was given up at 10 s too, and so was
    // every later one.
    const second = latest();
    second.open();
    await vi.advanceTimersByTimeAsync(10_900);
    second.hello();
    await vi.advanceTimersByTimeAsync(0);
    expect(client.state).toBe('open');
    expect(connected).toHaveLength(1);
    expect(FakeSocket.instances).toHaveLength(2);
    client.close();
  });
});

describe('a leave, unsubscribe or unwatch cut off by a drop (review 26)', () => {
  it('resolves: the server forgot it with the connection, and it is not restored', async () => {
    const CONTACT = '5d2c8f3a-9b1e-4c7d-8a6f-2e4b9c1d7a35';
    const client = createClient({
      url: 'ws://gigwire.test/ws',
      encoding: 'json',
      WebSocket: FakeSocket,
      getAccessToken: () => 'token',
      heartbeat: false,
    });
    await vi.advanceTimersByTimeAsync(0);
    const socket = latest();
    socket.greet();
    const join = client.joinRoom(ROOM);
    const subscribe = client.subscribePresence([CONTACT]);
    const watch = client.watchJobs({});
    await vi.advanceTimersByTimeAsync(0);
    socket.reply(0, { lastSeq: 0 });
    socket.reply(1, { presence: [{ userId: CONTACT, status: 'offline', lastSeenAt: null }] });
    socket.reply(2);
    await Promise.all([join, subscribe, watch]);

    const outcomes = [
      client.leaveRoom(ROOM),
      client.unsubscribePresence([CONTACT]),
      client.unwatchJobs(),
    ].map((call) =>
      call.then(
        () => 'ok',
        (error: GigwireError) => error.code,
      ),
    );
    await vi.advanceTimersByTimeAsync(0);
    expect(socket.sent.slice(3).map((frame) => frame.t)).toEqual([
      'room.leave',
      'presence.unsubscribe',
      'jobs.unwatch',
    ]);
    socket.serverClose(1006);
    // Before: DISCONNECTED, as if the room, the subscription or the watch might still stand.
    expect(await Promise.all(outcomes)).toEqual(['ok', 'ok', 'ok']);
    await vi.advanceTimersByTimeAsync(250);
    latest().greet();
    await vi.advanceTimersByTimeAsync(0);
    expect(latest().sent).toEqual([]);
    client.close();
  });
});
