import { describe, expect, it } from 'vitest';
import type { RoomMessage } from '../frames.js';
import type { RoomId, UserId } from '../ids.js';
import { RoomTracker, type RoomTrackerPorts } from './rooms.js';

const ROOM = 'r0000000-0000-4000-8000-000000000000' as RoomId;
const message = (seq: number): RoomMessage => ({
  roomId: ROOM,
  seq,
  senderId: 'a0000000-0000-4000-8000-000000000001' as UserId,
  clientMsgId: `m${seq}`,
  body: `body ${seq}`,
  sentAt: new Date(0).toISOString(),
});

/** A server stand-in holding messages 1..stored; records what the tracker asks. */
function fakeServer(stored: number) {
  const emitted: number[] = [];
  const joins: (number | undefined)[] = [];
  const historyCalls: [number, number][] = [];
  const removed: string[] = [];
  const ports: RoomTrackerPorts = {
    join: async (_roomId, sinceSeq) => {
      joins.push(sinceSeq);
      return { lastSeq: stored };
    },
    leave: async () => undefined,
    history: async (_roomId, beforeSeq, limit) => {
      historyCalls.push([beforeSeq, limit]);
      const messages: RoomMessage[] = [];
      for (let seq = Math.min(beforeSeq - 1, stored); seq >= 1 && messages.length < limit; seq--)
        messages.push(message(seq));
      return { messages };
    },
    emit: (m) => emitted.push(m.seq),
    onError: (error) => {
      throw error;
    },
    onRemoved: (roomId) => removed.push(roomId),
  };
  return { ports, emitted, joins, historyCalls, removed };
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

describe('RoomTracker', () => {
  it('starts at the join lastSeq and emits live messages in order, each once', async () => {
    const server = fakeServer(3);
    const tracker = new RoomTracker(server.ports);
    await tracker.join(ROOM);
    for (const seq of [4, 4, 5, 3, 6]) tracker.onMessage(message(seq));
    expect(server.emitted).toEqual([4, 5, 6]);
  });

  it('fills a seq jump through history before emitting later messages', async () => {
    const server = fakeServer(6);
    const tracker = new RoomTracker({ ...server.ports, join: async () => ({ lastSeq: 0 }) });
    await tracker.join(ROOM);
    tracker.onMessage(message(1));
    tracker.onMessage(message(5));
    tracker.onMessage(message(6));
    for (let i = 0; i < 5; i++) await settle();
    expect(server.emitted).toEqual([1, 2, 3, 4, 5, 6]);
    expect(server.historyCalls).toEqual([[5, 3]]);
  });

  it('rejoins with the last seq after a reconnect and drops what it already had', async () => {
    const server = fakeServer(2);
    const tracker = new RoomTracker(server.ports);
    await tracker.join(ROOM);
    tracker.onMessage(message(3));
    tracker.resume();
    await settle();
    expect(server.joins).toEqual([undefined, 3]);
    // The server pushes the backlog after sinceSeq; duplicates of what we had are dropped.
    for (const seq of [3, 4, 5]) tracker.onMessage(message(seq));
    expect(server.emitted).toEqual([3, 4, 5]);
  });

  it('leaves untracked rooms to the caller and forgets left rooms', async () => {
    const server = fakeServer(0);
    const tracker = new RoomTracker(server.ports);
    expect(tracker.onMessage(message(1))).toBe(false);
    await tracker.join(ROOM);
    await tracker.leave(ROOM);
    expect(tracker.onMessage(message(1))).toBe(false);
    expect(tracker.joined).toEqual([]);
  });

  it('gives up quietly on a hole history cannot fill, and fills it once it can', async () => {
    let stored = 1;
    const server = fakeServer(0);
    const tracker = new RoomTracker({
      ...server.ports,
      join: async () => ({ lastSeq: 0 }),
      history: async (_roomId, beforeSeq, limit) => {
        const messages: RoomMessage[] = [];
        for (let seq = Math.min(beforeSeq - 1, stored); seq >= 1 && messages.length < limit; seq--)
          messages.push(message(seq));
        return { messages };
      },
    });
    await tracker.join(ROOM);
    tracker.onMessage(message(3));
    for (let i = 0; i < 5; i++) await settle();
    expect(server.emitted).toEqual([1]);
    stored = 3;
    tracker.onMessage(message(4));
    for (let i = 0; i < 5; i++) await settle();
    expect(server.emitted).toEqual([1, 2, 3, 4]);
  });

  it('retries a rejoin refused for a passing reason (the room moving after a crash) until it is answered', async () => {
    const server = fakeServer(5);
    const errors: unknown[] = [];
    let refusals = 2;
    const delays: number[] = [];
    const tracker = new RoomTracker({
      ...server.ports,
      join: async (roomId, sinceSeq, resume) => {
        if (resume && refusals > 0) {
          refusals -= 1;
          throw Object.assign(new Error('the room is moving'), { code: 'UNAVAILABLE' });
        }
        return server.ports.join(roomId, sinceSeq, resume);
      },
      onError: (error) => errors.push(error),
      delay: async (ms) => {
        delays.push(ms);
      },
    });
    await tracker.join(ROOM);
    tracker.resume();
    for (let i = 0; i < 10; i++) await settle();
    expect(server.joins).toEqual([undefined, 5]);
    expect(delays).toHaveLength(2);
    expect(errors).toEqual([]);
    // Rejoined: live messages flow again.
    tracker.onMessage(message(6));
    expect(server.emitted).toEqual([6]);
  });

  it.each(['FORBIDDEN', 'NOT_FOUND'])(
    'does not retry a rejoin refused %s (removed from the room): untracks it and reports it as removed',
    async (code) => {
      const server = fakeServer(1);
      const errors: unknown[] = [];
      let calls = 0;
      const tracker = new RoomTracker({
        ...server.ports,
        join: async (roomId, sinceSeq, resume) => {
          calls += 1;
          if (resume) throw Object.assign(new Error('not a member'), { code });
          return server.ports.join(roomId, sinceSeq, resume);
        },
        onError: (error) => errors.push(error),
        delay: async () => undefined,
      });
      await tracker.join(ROOM);
      tracker.resume();
      for (let i = 0; i < 5; i++) await settle();
      expect(calls).toBe(2);
      expect(errors).toEqual([]);
      expect(server.removed).toEqual([ROOM]);
      // Not joined again at the next reconnect, and its pushes are no longer the tracker's.
      expect(tracker.joined).toEqual([]);
      tracker.resume();
      await settle();
      expect(calls).toBe(2);
      expect(tracker.onMessage(message(2))).toBe(false);
    },
  );

  it('keys rooms in lower case, as the server names them, whatever case the app joins and leaves with', async () => {
    const server = fakeServer(3);
    const tracker = new RoomTracker(server.ports);
    await tracker.join(ROOM.toUpperCase());
    expect(tracker.joined).toEqual([ROOM]);
    for (const seq of [4, 4, 5]) expect(tracker.onMessage(message(seq))).toBe(true);
    expect(server.emitted).toEqual([4, 5]);
    await tracker.leave(ROOM.toUpperCase());
    expect(tracker.joined).toEqual([]);
  });

  it('stops retrying once a newer reconnect resumed, or the room was left', async () => {
    const server = fakeServer(1);
    let resumeJoins = 0;
    const waits: (() => void)[] = [];
    const tracker = new RoomTracker({
      ...server.ports,
      join: async (roomId, sinceSeq, resume) => {
        if (resume) {
          resumeJoins += 1;
          throw Object.assign(new Error('busy'), { code: 'UNAVAILABLE' });
        }
        return server.ports.join(roomId, sinceSeq, resume);
      },
      onError: () => undefined,
      delay: () => new Promise<void>((resolve) => waits.push(resolve)),
    });
    await tracker.join(ROOM);
    tracker.resume();
    await settle();
    expect(resumeJoins).toBe(1);
    tracker.resume(); // a newer connection: its own loop
    await settle();
    expect(resumeJoins).toBe(2);
    await tracker.leave(ROOM);
    for (const wake of waits) wake();
    for (let i = 0; i < 5; i++) await settle();
    // Neither loop asked again: the first was superseded, the second's room was left.
    expect(resumeJoins).toBe(2);
  });
});
