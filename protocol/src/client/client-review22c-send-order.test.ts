/**
 * Review 22c: `sendMessage` keeps a sender's messages to one room in call order when the room
 * refuses them for a passing reason (UNAVAILABLE: room failover, read-only database; RATE_LIMITED
 * without `retryAfterMs`: a busy room). Before, each refused message waited its own random backoff
 * and was resent (and stored) in whatever order those delays ran out, and a message sent after the
 * refusal went ahead of the refused one. Now the room's sends pause together and resend in their
 * original order after one shared backoff, with the same clientMsgId; other rooms go on.
 * Against the shared hand-driven WebSocket (fake-socket.testing.ts) and fake timers, as client.test.ts.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createClient, type GigwireClient } from './client.js';
import { FakeSocket as SharedFakeSocket } from './fake-socket.testing.js';

type SendFrame = { t: string; id?: number; d: { roomId: string; clientMsgId: string } };

/** The shared hand-driven socket, with the room sends this file answers one by one. */
class FakeSocket extends SharedFakeSocket {
  private sends(): SendFrame[] {
    return (this.sent as unknown as SendFrame[]).filter((f) => f.t === 'room.send');
  }
  /** The clientMsgIds of the room.send frames sent so far, in order. */
  keys(roomId = ROOM): string[] {
    return this.sends()
      .filter((f) => f.d.roomId === roomId)
      .map((f) => f.d.clientMsgId);
  }
  /** Answers the last frame sent with this clientMsgId. */
  answer(clientMsgId: string, outcome: 'ok' | 'UNAVAILABLE' | 'RATE_LIMITED', seq = 1): void {
    const frame = this.sends().findLast((f) => f.d.clientMsgId === clientMsgId);
    this.receive(
      outcome === 'ok'
        ? { t: 'ok', id: frame?.id, d: { seq, sentAt: '2026-12-07T01:00:00.000Z' } }
        : { t: 'error', id: frame?.id, d: { code: outcome, message: 'try again' } },
    );
  }
}

const ROOM = '6f1d2c3b-4a59-4e68-9d7c-8b1a2f3e4d5c';
const OTHER_ROOM = 'a3e1f9b2-6c4d-4e8a-b7f1-9d2c5e8a3b60';
const flush = () => vi.advanceTimersByTimeAsync(0);

let client: GigwireClient | undefined;

async function connect(options: { limits?: Record<string, number>; initialDelayMs?: number } = {}) {
  client = createClient({
    url: 'ws://gigwire.test/ws',
    encoding: 'json',
    WebSocket: FakeSocket,
    getAccessToken: () => 'token',
    heartbeat: false,
    requestTimeoutMs: 30_000,
    reconnect: { initialDelayMs: options.initialDelayMs ?? 1_000, maxDelayMs: 10_000 },
  });
  await flush();
  const socket = SharedFakeSocket.instances.at(-1) as FakeSocket;
  socket.greet(options.limits ?? {});
  await flush();
  return { client, socket };
}

/** Each backoff draw takes the next of these fractions of its ceiling. */
function randomDraws(...draws: number[]) {
  let i = 0;
  vi.spyOn(Math, 'random').mockImplementation(() => draws[i++ % draws.length] as number);
}

beforeEach(() => {
  vi.useFakeTimers();
  SharedFakeSocket.instances = [];
});
afterEach(() => {
  client?.close();
  client = undefined;
  vi.restoreAllMocks();
  vi.useRealTimers();
});

describe('sendMessage refused for a passing reason keeps call order per room (review 22c)', () => {
  it('resends messages refused UNAVAILABLE together, in call order, after one shared backoff', async () => {
    // Drawn at each refusal (m3, m1, m2): separate backoffs of 100, 900 and 500 ms went m3, m2, m1.
    randomDraws(0.1, 0.9, 0.5);
    const { client, socket } = await connect();
    const sends = ['m1', 'm2', 'm3'].map((key) => client.sendMessage(ROOM, key, { clientMsgId: key }));
    await flush();
    expect(socket.keys()).toEqual(['m1', 'm2', 'm3']);
    // The refusals may come back in any order.
    for (const key of ['m3', 'm1', 'm2']) socket.answer(key, 'UNAVAILABLE');
    await vi.advanceTimersByTimeAsync(1_000);
    expect(socket.keys()).toEqual(['m1', 'm2', 'm3', 'm1', 'm2', 'm3']);
    for (const [i, key] of ['m1', 'm2', 'm3'].entries()) socket.answer(key, 'ok', i + 1);
    const acks = await Promise.all(sends);
    expect(acks.map((ack) => [ack.clientMsgId, ack.seq])).toEqual([
      ['m1', 1],
      ['m2', 2],
      ['m3', 3],
    ]);
  });

  it('does the same for a busy room (RATE_LIMITED without retryAfterMs)', async () => {
    // Separate backoffs of 900 and 100 ms went m2, m1.
    randomDraws(0.9, 0.1);
    const { client, socket } = await connect();
    const sends = ['m1', 'm2'].map((key) => client.sendMessage(ROOM, key, { clientMsgId: key }));
    await flush();
    socket.answer('m1', 'RATE_LIMITED');
    socket.answer('m2', 'RATE_LIMITED');
    await vi.advanceTimersByTimeAsync(1_000);
    expect(socket.keys()).toEqual(['m1', 'm2', 'm1', 'm2']);
    socket.answer('m1', 'ok', 1);
    socket.answer('m2', 'ok', 2);
    await Promise.all(sends);
  });

  it('holds a later message of the room behind the refused one; another room goes on', async () => {
    randomDraws(0.5);
    const { client, socket } = await connect();
    const first = client.sendMessage(ROOM, 'm1', { clientMsgId: 'm1' });
    await flush();
    socket.answer('m1', 'UNAVAILABLE');
    await flush();
    const second = client.sendMessage(ROOM, 'm2', { clientMsgId: 'm2' });
    const elsewhere = client.sendMessage(OTHER_ROOM, 'x1', { clientMsgId: 'x1' });
    await flush();
    expect(socket.keys()).toEqual(['m1']);
    expect(socket.keys(OTHER_ROOM)).toEqual(['x1']);
    socket.answer('x1', 'ok', 1);
    await expect(elsewhere).resolves.toMatchObject({ clientMsgId: 'x1' });
    await vi.advanceTimersByTimeAsync(500);
    expect(socket.keys()).toEqual(['m1', 'm1', 'm2']);
    socket.answer('m1', 'ok', 1);
    socket.answer('m2', 'ok', 2);
    await Promise.all([first, second]);
  });

  it('holds a message waiting for the rate bucket when the one before it is refused', async () => {
    // One frame per ~1.1 s; the refused message's backoff (2 s) is longer than that.
    randomDraws(0.5);
    const { client, socket } = await connect({
      limits: { maxMessagesPerSecond: 1, maxBurst: 1 },
      initialDelayMs: 4_000,
    });
    const sends = ['m1', 'm2'].map((key) => client.sendMessage(ROOM, key, { clientMsgId: key }));
    await flush();
    expect(socket.keys()).toEqual(['m1']);
    socket.answer('m1', 'UNAVAILABLE');
    await vi.advanceTimersByTimeAsync(1_500);
    expect(socket.keys()).toEqual(['m1']);
    await vi.advanceTimersByTimeAsync(3_000);
    expect(socket.keys()).toEqual(['m1', 'm1', 'm2']);
    socket.answer('m1', 'ok', 1);
    socket.answer('m2', 'ok', 2);
    await Promise.all(sends);
  });

  it('waits for a message still unanswered when the pause ends: refused too, it goes before the later ones', async () => {
    randomDraws(0.5);
    const { client, socket } = await connect();
    const sends = ['m1', 'm2'].map((key) => client.sendMessage(ROOM, key, { clientMsgId: key }));
    await flush();
    socket.answer('m1', 'UNAVAILABLE');
    await flush();
    const third = client.sendMessage(ROOM, 'm3', { clientMsgId: 'm3' });
    await vi.advanceTimersByTimeAsync(2_000);
    // m2 may still be refused: nothing goes until its answer.
    expect(socket.keys()).toEqual(['m1', 'm2']);
    socket.answer('m2', 'UNAVAILABLE');
    await vi.advanceTimersByTimeAsync(2_000);
    expect(socket.keys()).toEqual(['m1', 'm2', 'm1', 'm2', 'm3']);
    socket.answer('m1', 'ok', 1);
    socket.answer('m2', 'ok', 2);
    socket.answer('m3', 'ok', 3);
    await Promise.all([...sends, third]);
  });

  it('an ok for the unanswered one lets the refused one go at once', async () => {
    randomDraws(0.5);
    const { client, socket } = await connect();
    const sends = ['m1', 'm2'].map((key) => client.sendMessage(ROOM, key, { clientMsgId: key }));
    await flush();
    socket.answer('m1', 'UNAVAILABLE');
    await vi.advanceTimersByTimeAsync(2_000);
    expect(socket.keys()).toEqual(['m1', 'm2']);
    socket.answer('m2', 'ok', 1);
    await flush();
    expect(socket.keys()).toEqual(['m1', 'm2', 'm1']);
    socket.answer('m1', 'ok', 2);
    await Promise.all(sends);
  });

  it('close() fails the messages waiting for the pause with CLOSED and leaves no timer', async () => {
    randomDraws(0.5);
    const { client, socket } = await connect();
    const first = client.sendMessage(ROOM, 'm1', { clientMsgId: 'm1' }).catch((error: unknown) => error);
    await flush();
    socket.answer('m1', 'UNAVAILABLE');
    await flush();
    const second = client.sendMessage(ROOM, 'm2', { clientMsgId: 'm2' }).catch((error: unknown) => error);
    await flush();
    client.close();
    await flush();
    expect(await first).toMatchObject({ code: 'CLOSED', details: { clientMsgId: 'm1' } });
    expect(await second).toMatchObject({ code: 'CLOSED', details: { clientMsgId: 'm2' } });
    expect(vi.getTimerCount()).toBe(0);
  });
});
