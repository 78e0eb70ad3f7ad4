import { describe, expect, it } from 'vitest';
import type { RoomId, UserId } from '../../../protocol/src/ids.js';
import { createLogger } from '../../platform/logger.js';
import { createUnreadScheduler } from './unread-scheduler.js';

const room = '00000000-0000-4000-8000-000000000001' as RoomId;
const sender = '00000000-0000-4000-8000-0000000000a1' as UserId;
const reader = '00000000-0000-4000-8000-0000000000b2' as UserId;
const log = createLogger({ level: 'silent', pretty: false, destination: { write: () => undefined } });

/** A scheduler over an in-memory presence and task list, with a hand-moved clock. */
function setup(options: { random?: () => number } = {}) {
  let clock = 0;
  const online = new Set<string>();
  const connectedHere = new Set<string>();
  const presenceReads: string[][] = [];
  const enqueued: { roomId: string; userId: string; readSeq: number }[] = [];
  const stored = createUnreadScheduler({
    tasks: {
      enqueue: async (_name, payload) => {
        enqueued.push(payload as { roomId: string; userId: string; readSeq: number });
        return undefined as never;
      },
    },
    isOnline: async (userIds) => {
      presenceReads.push([...userIds]);
      return userIds.map((id) => online.has(id));
    },
    isConnectedHere: (userId) => connectedHere.has(userId),
    delayMs: 600_000,
    onlineRecheckMs: 5_000,
    log,
    now: () => clock,
    random: options.random ?? (() => 0.999),
  });
  const members = new Map([
    [sender, { lastReadSeq: 0 }],
    [reader, { lastReadSeq: 0 }],
  ]);
  const send = async (seq: number) => {
    stored(room, [{ senderId: sender, seq }], members);
    await new Promise((resolve) => setImmediate(resolve));
  };
  return {
    online,
    connectedHere,
    presenceReads,
    enqueued,
    send,
    advance: (ms: number) => {
      clock += ms;
    },
  };
}

describe('unread reminders', () => {
  it('reads presence for an online member once per recheck period, not once per message', async () => {
    const s = setup();
    s.online.add(reader);
    for (let seq = 1; seq <= 50; seq += 1) await s.send(seq);
    expect(s.presenceReads).toEqual([[reader]]);
    expect(s.enqueued).toEqual([]);
    s.advance(5_001);
    await s.send(51);
    expect(s.presenceReads).toEqual([[reader], [reader]]);
  });

  it('schedules a member who went offline at the first message after the recheck period', async () => {
    const s = setup();
    s.online.add(reader);
    await s.send(1);
    s.online.delete(reader);
    await s.send(2);
    expect(s.enqueued).toEqual([]);
    s.advance(5_001);
    await s.send(3);
    expect(s.enqueued).toEqual([{ roomId: room, userId: reader, readSeq: 0 }]);
    // The streak is scheduled once: later messages read no presence and enqueue nothing.
    await s.send(4);
    expect(s.enqueued).toHaveLength(1);
    expect(s.presenceReads).toHaveLength(2);
  });

  it('asks presence nothing about a member with a socket on this node, and reminds them of nothing', async () => {
    const s = setup();
    s.connectedHere.add(reader);
    for (let seq = 1; seq <= 5; seq += 1) {
      await s.send(seq);
      s.advance(5_001);
    }
    expect(s.presenceReads).toEqual([]);
    expect(s.enqueued).toEqual([]);
    // Gone from this node (and offline everywhere): the next message schedules them.
    s.connectedHere.delete(reader);
    await s.send(6);
    expect(s.presenceReads).toEqual([[reader]]);
    expect(s.enqueued).toEqual([{ roomId: room, userId: reader, readSeq: 0 }]);
  });

  it('remembers "online" for a random half to whole of the recheck period, so members found together are not read again together', async () => {
    const draws = [0, 0.5];
    const s = setup({ random: () => draws.shift() ?? 0 });
    s.online.add(reader);
    await s.send(1); // remembered until 2 500
    s.advance(2_499);
    await s.send(2);
    expect(s.presenceReads).toHaveLength(1);
    s.advance(2);
    await s.send(3); // read again at 2 501, remembered until 2 501 + 3 750
    expect(s.presenceReads).toHaveLength(2);
    s.advance(3_749);
    await s.send(4);
    expect(s.presenceReads).toHaveLength(2);
    s.advance(2);
    await s.send(5);
    expect(s.presenceReads).toHaveLength(3);
  });

  it('never reminds the sender of their own messages', async () => {
    const s = setup();
    await s.send(1);
    expect(s.presenceReads).toEqual([[reader]]);
    expect(s.enqueued.map((task) => task.userId)).toEqual([reader]);
  });
});
