/**
 * Review 20 (a user on a bad network): a gap fill whose `room.history` read is refused for a
 * passing reason is tried again. Before, the tracker reported the error and stopped, and the
 * messages held behind the hole stayed hidden until another message of the room arrived or the
 * next reconnect, which in a room that went quiet could be never. A real-node run of the same
 * path: test/integration/sdk-review20-gap-fill.int.test.ts.
 */
import { describe, expect, it } from 'vitest';
import type { RoomMessage } from '../frames.js';
import type { RoomId, UserId } from '../ids.js';
import { RoomTracker, type RoomTrackerPorts } from './rooms.js';

const ROOM = 'c0000000-0000-4000-8000-000000000000' as RoomId;
const message = (seq: number): RoomMessage => ({
  roomId: ROOM,
  seq,
  senderId: 'a0000000-0000-4000-8000-000000000001' as UserId,
  clientMsgId: `m${seq}`,
  body: `body ${seq}`,
  sentAt: new Date(0).toISOString(),
});

const settle = async () => {
  for (let i = 0; i < 10; i++) await new Promise((resolve) => setTimeout(resolve, 0));
};

const refusal = (code: string, details?: Record<string, unknown>) =>
  Object.assign(new Error(code), { code, ...(details === undefined ? {} : { details }) });

/** A room holding 1..stored whose first `refusals` history reads fail with the given errors. */
function setup(stored: number, refusals: Error[]) {
  const emitted: number[] = [];
  const errors: unknown[] = [];
  const delays: number[] = [];
  let reads = 0;
  const ports: RoomTrackerPorts = {
    join: async () => ({ lastSeq: 0 }),
    leave: async () => undefined,
    history: async (_roomId, beforeSeq, limit) => {
      reads += 1;
      const refused = refusals.shift();
      if (refused !== undefined) throw refused;
      const messages: RoomMessage[] = [];
      for (let seq = Math.min(beforeSeq - 1, stored); seq >= 1 && messages.length < limit; seq--)
        messages.push(message(seq));
      return { messages };
    },
    emit: (m) => emitted.push(m.seq),
    onError: (error) => errors.push(error),
    onRemoved: () => undefined,
    delay: async (ms) => {
      delays.push(ms);
    },
  };
  return { tracker: new RoomTracker(ports), emitted, errors, delays, reads: () => reads };
}

describe('a gap fill refused for a passing reason (review 20)', () => {
  it('waits the retryAfterMs of a RATE_LIMITED read and fills the hole, without reporting it', async () => {
    const { tracker, emitted, errors, delays, reads } = setup(4, [
      refusal('RATE_LIMITED', { retryAfterMs: 250 }),
    ]);
    await tracker.join(ROOM);
    tracker.onMessage(message(1));
    // 2 and 3 were lost on the way; the room then goes quiet after 4.
    tracker.onMessage(message(4));
    await settle();
    expect(emitted).toEqual([1, 2, 3, 4]);
    expect(delays).toEqual([250]);
    expect(reads()).toBe(2);
    expect(errors).toEqual([]);
  });

  it('backs off after UNAVAILABLE and TIMEOUT (no retryAfterMs) until the read is answered', async () => {
    const { tracker, emitted, delays } = setup(3, [refusal('UNAVAILABLE'), refusal('TIMEOUT')]);
    await tracker.join(ROOM);
    tracker.onMessage(message(3));
    await settle();
    expect(emitted).toEqual([1, 2, 3]);
    expect(delays).toHaveLength(2);
    for (const ms of delays) expect(ms).toBeGreaterThan(0);
  });

  it('reports a refusal for good and stops; a room left while a retry waits is not read again', async () => {
    const forbidden = setup(3, [refusal('FORBIDDEN')]);
    await forbidden.tracker.join(ROOM);
    forbidden.tracker.onMessage(message(3));
    await settle();
    expect(forbidden.emitted).toEqual([]);
    expect(forbidden.errors).toHaveLength(1);
    expect(forbidden.reads()).toBe(1);

    // The retry waits; the room is left meanwhile: nothing more is read for it.
    let wake: () => void = () => undefined;
    let historyReads = 0;
    const tracker = new RoomTracker({
      join: async () => ({ lastSeq: 0 }),
      leave: async () => undefined,
      history: async () => {
        historyReads += 1;
        throw refusal('UNAVAILABLE');
      },
      emit: () => undefined,
      onError: () => undefined,
      onRemoved: () => undefined,
      delay: () => new Promise<void>((resolve) => (wake = resolve)),
    });
    await tracker.join(ROOM);
    tracker.onMessage(message(3));
    await settle();
    expect(historyReads).toBe(1);
    await tracker.leave(ROOM);
    wake();
    await settle();
    expect(historyReads).toBe(1);
  });

  it('a rejoin refused for the backlog budget waits the retryAfterMs the server names (at most 5 s)', async () => {
    const delays: number[] = [];
    const refusals = [
      refusal('RATE_LIMITED', { retryAfterMs: 1_500 }),
      refusal('RATE_LIMITED', { retryAfterMs: 60_000 }),
    ];
    const tracker = new RoomTracker({
      join: async (_roomId, _sinceSeq, resume) => {
        const refused = resume ? refusals.shift() : undefined;
        if (refused !== undefined) throw refused;
        return { lastSeq: 2 };
      },
      leave: async () => undefined,
      history: async () => ({ messages: [] }),
      emit: () => undefined,
      onError: () => undefined,
      onRemoved: () => undefined,
      delay: async (ms) => {
        delays.push(ms);
      },
    });
    await tracker.join(ROOM);
    tracker.resume();
    await settle();
    expect(delays).toEqual([1_500, 5_000]);
  });
});
