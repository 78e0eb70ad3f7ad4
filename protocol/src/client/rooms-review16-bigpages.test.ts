/**
 * The server cuts `room.history` pages of large messages at a byte budget, keeping the newest
 * (PROTOCOL.md, `room.history`): a page may hold fewer messages than `limit` without being the
 * beginning of the room. The tracker must go on from the smallest seq it got, or a hole below a
 * few large messages was never filled (every retry asked for the same page and got the same top).
 */
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
const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

/** A server holding messages 1..stored whose history pages carry at most `cut` messages, newest first. */
function cuttingServer(stored: number, cut: number, joinAnswer: number) {
  const emitted: number[] = [];
  const errors: unknown[] = [];
  const ports: RoomTrackerPorts = {
    join: async () => ({ lastSeq: joinAnswer }),
    leave: async () => undefined,
    history: async (_roomId, beforeSeq, limit) => {
      const messages: RoomMessage[] = [];
      for (
        let seq = Math.min(beforeSeq - 1, stored);
        seq >= 1 && messages.length < Math.min(limit, cut);
        seq--
      )
        messages.push(message(seq));
      return { messages };
    },
    emit: (m) => emitted.push(m.seq),
    onError: (error) => errors.push(error),
    onRemoved: () => undefined,
  };
  return { ports, emitted, errors };
}

describe('RoomTracker with history pages cut short by the server', () => {
  it('fills a jump of 250 seqs from pages of 7, each message once and in order', async () => {
    const server = cuttingServer(251, 7, 0);
    const tracker = new RoomTracker(server.ports);
    await tracker.join(ROOM);
    tracker.onMessage(message(251));
    for (let i = 0; i < 100; i++) await settle();
    expect(server.errors).toEqual([]);
    expect(server.emitted).toEqual(Array.from({ length: 251 }, (_, i) => i + 1));
  });

  it('fetches the rest of a capped join backlog through short pages', async () => {
    // The join replied lastSeq 120, but the tracker had nothing: first join starts at 120. A rejoin
    // (resume) with a backlog the server capped at 10 must be completed through history.
    const server = cuttingServer(130, 3, 100);
    const tracker = new RoomTracker(server.ports);
    await tracker.join(ROOM);
    // 101..110 pushed as a capped backlog, then the rejoin reply says 130.
    for (let seq = 101; seq <= 110; seq++) tracker.onMessage(message(seq));
    const ports = server.ports as { join: RoomTrackerPorts['join'] };
    ports.join = async () => ({ lastSeq: 130 });
    tracker.resume();
    for (let i = 0; i < 100; i++) await settle();
    expect(server.errors).toEqual([]);
    expect(server.emitted).toEqual(Array.from({ length: 30 }, (_, i) => i + 101));
  });
});
