/**
 * Review 29: a `joinRoom` made while offline waits in the request queue; at the next `hello` the
 * room resumer rejoined every tracked room as well, this one included, so the server got two
 * `room.join` frames for one call (two backlog reads of the user's budget, and twice the frames).
 * It goes out once now, and the call still gets the join's reply (or its refusal).
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createClient } from './client.js';
import { FakeSocket } from './fake-socket.testing.js';

const ROOM = 'c7d4e2a1-5b3f-4e6a-9c8d-1f2e3a4b5c6d';
const OTHER = '1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d';
const latest = () => FakeSocket.instances.at(-1) as FakeSocket;
const joins = (socket: FakeSocket) => socket.sent.filter((f) => f.t === 'room.join');

beforeEach(() => {
  vi.useFakeTimers();
  FakeSocket.instances = [];
});
afterEach(() => {
  vi.useRealTimers();
});

function offlineClient() {
  return createClient({
    url: 'ws://gigwire.test/ws',
    encoding: 'json',
    WebSocket: FakeSocket,
    getAccessToken: () => 'token',
    heartbeat: false,
  });
}

describe('a joinRoom made offline (review 29)', () => {
  it('is sent once at the next hello and resolves with its reply', async () => {
    const client = offlineClient();
    await vi.advanceTimersByTimeAsync(0);
    const join = client.joinRoom(ROOM);
    await vi.advanceTimersByTimeAsync(0);
    const socket = latest();
    socket.greet();
    await vi.advanceTimersByTimeAsync(0);
    // Before: two, the queued join and the resumer's rejoin of the same room.
    expect(joins(socket)).toHaveLength(1);
    const index = socket.sent.findIndex((f) => f.t === 'room.join');
    socket.reply(index, { lastSeq: 7 });
    await expect(join).resolves.toEqual({ lastSeq: 7 });
    await vi.advanceTimersByTimeAsync(0);
    expect(joins(socket)).toHaveLength(1);
    client.close();
  });

  it('after a drop: only the room joined meanwhile goes out once, the joined one is rejoined', async () => {
    const client = offlineClient();
    await vi.advanceTimersByTimeAsync(0);
    const first = latest();
    first.greet();
    const joined = client.joinRoom(OTHER);
    await vi.advanceTimersByTimeAsync(0);
    first.reply(0, { lastSeq: 3 });
    await joined;
    first.serverClose(1006);
    const join = client.joinRoom(ROOM);
    const refused = expect(join).rejects.toMatchObject({ code: 'FORBIDDEN' });
    await vi.advanceTimersByTimeAsync(5_000);
    const socket = latest();
    expect(socket).not.toBe(first);
    socket.greet();
    await vi.advanceTimersByTimeAsync(0);
    const sent = joins(socket);
    expect(sent.map((f) => (f.d as { roomId: string }).roomId).sort()).toEqual([OTHER, ROOM].sort());
    expect(sent.find((f) => (f.d as { roomId: string }).roomId === OTHER)?.d).toEqual({
      roomId: OTHER,
      sinceSeq: 3,
    });
    const frame = sent.find((f) => (f.d as { roomId: string }).roomId === ROOM);
    socket.receive({ t: 'error', id: frame?.id, d: { code: 'FORBIDDEN', message: 'not a member' } });
    await refused;
    client.close();
  });
});
