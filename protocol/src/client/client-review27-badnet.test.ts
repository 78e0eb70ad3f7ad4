/**
 * Review 27: the WebSocket client, against a scripted fake WebSocket and fake timers (as
 * client.test.ts).
 * - A room left from inside a `room.message` handler (a contract's system line telling the app the
 *   job room is done, say) while the client was emitting a run of held messages (a hole filled, a
 *   join's catch-up that overtook its ok): the rest of the run was still emitted, as if the app were
 *   still in the room.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createClient } from './client.js';
import { FakeSocket } from './fake-socket.testing.js';

const ROOM = 'c7d4e2a1-5b3f-4e6a-9c8d-1f2e3a4b5c6d';
const latest = () => FakeSocket.instances.at(-1) as FakeSocket;

beforeEach(() => {
  vi.useFakeTimers();
  FakeSocket.instances = [];
});
afterEach(() => {
  vi.useRealTimers();
});

const message = (seq: number) => ({
  roomId: ROOM,
  seq,
  senderId: '5d2c8f3a-9b1e-4c7d-8a6f-2e4b9c1d7a35',
  clientMsgId: `m${seq}`,
  body: `hello ${seq}`,
  sentAt: new Date(1_700_000_000_000 + seq).toISOString(),
});

/** A client connected to a FakeSocket that has said hello. */
async function greetedClient() {
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
  return { client, socket };
}

async function joinedAt(lastSeq: number) {
  const { client, socket } = await greetedClient();
  const join = client.joinRoom(ROOM);
  await vi.advanceTimersByTimeAsync(0);
  socket.reply(0, { lastSeq });
  await join;
  return { client, socket };
}

describe('a room left from a room.message handler (review 27)', () => {
  it('emits nothing more of the run being emitted: a filled hole', async () => {
    const { client, socket } = await joinedAt(4);
    const seqs: number[] = [];
    let left: Promise<void> | undefined;
    client.on('room.message', (m) => {
      seqs.push(m.seq);
      // The app is done with the room at seq 5.
      if (m.seq === 5) left = client.leaveRoom(ROOM);
    });
    // 8 overtakes 5..7 (a push lost on the way): held, and the hole is read from history.
    socket.receive({ t: 'room.message', d: message(8) });
    await vi.advanceTimersByTimeAsync(0);
    expect(socket.sent[1]).toMatchObject({ t: 'room.history', d: { roomId: ROOM, beforeSeq: 8 } });
    socket.reply(1, { messages: [message(7), message(6), message(5)] });
    await vi.advanceTimersByTimeAsync(0);
    // Before: [5, 6, 7, 8], three messages of a room the app had left.
    expect(seqs).toEqual([5]);
    expect(socket.sent[2]).toMatchObject({ t: 'room.leave', d: { roomId: ROOM } });
    socket.reply(2);
    await left;
    client.close();
  });

  it('emits nothing more of the run being emitted: pushes held for a first join', async () => {
    const { client, socket } = await greetedClient();
    const seqs: number[] = [];
    client.on('room.message', (m) => {
      seqs.push(m.seq);
      if (m.seq === 3) client.leaveRoom(ROOM).catch(() => undefined);
    });
    const join = client.joinRoom(ROOM);
    await vi.advanceTimersByTimeAsync(0);
    // Live messages overtake the join's ok; they are held until it says where the room stood.
    for (const seq of [3, 4, 5]) socket.receive({ t: 'room.message', d: message(seq) });
    socket.reply(0, { lastSeq: 2 });
    await join;
    expect(seqs).toEqual([3]);
    client.close();
  });

  it('emits nothing more after close() called from a handler', async () => {
    const { client, socket } = await joinedAt(4);
    const events: string[] = [];
    client.on('closed', () => events.push('closed'));
    client.on('room.message', (m) => {
      events.push(`message ${m.seq}`);
      if (m.seq === 5) client.close();
    });
    socket.receive({ t: 'room.message', d: message(7) });
    socket.receive({ t: 'room.message', d: message(6) });
    socket.receive({ t: 'room.message', d: message(5) });
    // Before: message 6 and 7 followed the terminal `closed` event.
    expect(events).toEqual(['message 5', 'closed']);
  });
});

describe('a first join refused for the user’s room reads on the node (review 27)', () => {
  // The node serves at most 4 room reads of one user at a time, and every join reads what was
  // stored while it subscribed: an app joining six rooms at once had two refused RATE_LIMITED
  // (retryAfterMs 200), and joinRoom failed and forgot them.
  it('is sent again after the retryAfterMs, and the room is joined and kept', async () => {
    const { client, socket } = await greetedClient();
    const join = client.joinRoom(ROOM);
    await vi.advanceTimersByTimeAsync(0);
    expect(socket.sent[0]).toMatchObject({ t: 'room.join', d: { roomId: ROOM } });
    socket.receive({
      t: 'error',
      id: socket.sent[0]?.id,
      d: { code: 'RATE_LIMITED', message: 'at most 4 room reads at a time', details: { retryAfterMs: 200 } },
    });
    await vi.advanceTimersByTimeAsync(199);
    expect(socket.sent).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(socket.sent[1]).toMatchObject({ t: 'room.join', d: { roomId: ROOM } });
    socket.reply(1, { lastSeq: 3 });
    // Before: rejected RATE_LIMITED, the room untracked.
    expect(await join).toEqual({ lastSeq: 3 });
    const seqs: number[] = [];
    client.on('room.message', (m) => seqs.push(m.seq));
    socket.receive({ t: 'room.message', d: message(4) });
    expect(seqs).toEqual([4]);
    client.close();
  });

  it('still fails at once for a refusal that names no wait, and for good refusals', async () => {
    const { client, socket } = await greetedClient();
    const outcomes = ['RATE_LIMITED', 'FORBIDDEN'].map(() =>
      client.joinRoom(ROOM).then(
        () => 'ok',
        (error: { code: string }) => error.code,
      ),
    );
    await vi.advanceTimersByTimeAsync(0);
    // Both calls share the one first join.
    expect(socket.sent).toHaveLength(1);
    socket.receive({ t: 'error', id: socket.sent[0]?.id, d: { code: 'RATE_LIMITED', message: 'busy room' } });
    expect(await Promise.all(outcomes)).toEqual(['RATE_LIMITED', 'RATE_LIMITED']);
    const forbidden = client.joinRoom(ROOM).then(
      () => 'ok',
      (error: { code: string }) => error.code,
    );
    await vi.advanceTimersByTimeAsync(0);
    socket.receive({
      t: 'error',
      id: socket.sent[1]?.id,
      d: { code: 'FORBIDDEN', message: 'not a member of this room', details: { retryAfterMs: 200 } },
    });
    expect(await forbidden).toBe('FORBIDDEN');
    await vi.advanceTimersByTimeAsync(1_000);
    expect(socket.sent).toHaveLength(2);
    client.close();
  });

  it('ends CLOSED when the client is closed during the wait, and leaves no timer', async () => {
    const { client, socket } = await greetedClient();
    const join = client.joinRoom(ROOM).then(
      () => 'ok',
      (error: { code: string }) => error.code,
    );
    await vi.advanceTimersByTimeAsync(0);
    socket.receive({
      t: 'error',
      id: socket.sent[0]?.id,
      d: { code: 'RATE_LIMITED', message: 'at most 4 room reads at a time', details: { retryAfterMs: 200 } },
    });
    await vi.advanceTimersByTimeAsync(50);
    client.close();
    expect(await join).toBe('CLOSED');
    expect(vi.getTimerCount()).toBe(0);
  });
});
