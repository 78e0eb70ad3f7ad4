/**
 * Review 25: a removal the room actor never heard of (the DELETE's bus announcement lost: its
 * publish failed after the commit and the DELETE was not retried) refused the removed user's sends
 * (the write's own membership check), but nothing took their sockets out of the room: they went on
 * receiving its live messages for as long as they stayed connected. The actor, which finds the
 * removal when it reads the members again (a refused send, its periodic refresh), now announces it
 * (`room.member removed`), as the DELETE would have; every node then takes those sockets out. A
 * reload asked for by the membership bus message stays silent: that DELETE announces it itself.
 */
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { ServerFrame } from '../../../protocol/src/frames.js';
import type { RoomId, UserId } from '../../../protocol/src/ids.js';
import { createLogger } from '../../platform/logger.js';
import { createManualTimers } from '../../platform/timers.js';
import { createActorSystem } from '../runtime/actor-system.js';
import { MEMBERS_REFRESH_MS, type RoomCommand, roomActorKind } from './room-actor.js';
import { type MessageRow, RoomSenderNotMemberError, type RoomStore } from './room-store.js';

const roomId = 'c7d4e2a1-5b3f-4e6a-9c8d-1f2e3a4b5c26' as RoomId;
const alice = 'a0000000-0000-4000-8000-000000000025' as UserId;
const bob = 'b0000000-0000-4000-8000-000000000025' as UserId;

function setup() {
  const timers = createManualTimers(1_700_000_000_000);
  const log = createLogger({ level: 'fatal', pretty: false, destination: { write: () => undefined } });
  const registry = new Registry();
  const system = createActorSystem({ log, timers, metrics: registry, askTimeoutMs: 60_000 });
  /** The members as the database holds them. */
  let members: UserId[] = [alice, bob];
  let seq = 0;
  const frames: ServerFrame[] = [];
  /** Stored send keys (sender, clientMsgId): a second one is a unique violation, as in SQL. */
  const keys = new Set<string>();
  /** Statements that reached the store, and those of them it refused. */
  const writes = { attempted: 0, refused: 0 };
  /** Awaited before each write: lets a test queue a send behind a write in flight. */
  let gate: Promise<void> | undefined;
  const rows: MessageRow[] = [];
  const store: RoomStore = {
    acquire: async () => ({ epoch: 1 }),
    members: async () => members.map((userId) => ({ userId, lastReadSeq: 0 })),
    highestSeq: async () => seq,
    lastSeqs: async (ids) => new Map(ids.map((id) => [id, seq])),
    // As the SQL statement: a batch with a sender who is no member stores nothing.
    insertNew: async (_room, _epoch, messages) => {
      await gate;
      writes.attempted += 1;
      if (messages.some((m) => !members.includes(m.senderId))) throw new RoomSenderNotMemberError(roomId);
      if (messages.some((m) => keys.has(`${m.senderId}/${m.clientMsgId}`) || m.seq <= seq)) {
        writes.refused += 1;
        throw Object.assign(new Error('duplicate key value violates unique constraint'), { code: '23505' });
      }
      for (const m of messages) keys.add(`${m.senderId}/${m.clientMsgId}`);
      seq = Math.max(seq, ...messages.map((m) => m.seq));
      const stored = messages.map(
        (m): MessageRow => ({
          room_id: roomId,
          seq: m.seq,
          sender_id: m.senderId,
          client_msg_id: m.clientMsgId,
          body: m.body,
          meta: m.meta,
          sent_at: new Date(1_700_000_000_000 + m.seq),
        }),
      );
      rows.push(...stored);
      return stored;
    },
    // The rewrite after a unique violation: finds the stored sends, inserts the rest.
    insertChecked: async (_room, _epoch, sends, plan) => {
      const stored = rows.filter((r) =>
        sends.some((s) => s.senderId === r.sender_id && s.clientMsgId === r.client_msg_id),
      );
      const fresh = plan(stored);
      return { stored, inserted: fresh.length === 0 ? [] : await store.insertNew(roomId, 1, fresh) };
    },
    messagesAfter: async () => [],
    messagesBefore: async () => [],
    markRead: async () => undefined,
  };
  const kind = roomActorKind({
    store,
    fanOut: (_topic, payload) => frames.push(payload.frame),
    toRoomId: (id) => id as RoomId,
    now: () => timers.now(),
    metrics: registry,
  });
  system.register(kind);
  const room = system.ref<RoomCommand>(kind, roomId);
  const send = (senderId: UserId, clientMsgId: string) =>
    room
      .ask<{ seq: number }>((reply) => ({
        type: 'send',
        send: { senderId, clientMsgId, body: clientMsgId, meta: null },
        reply,
      }))
      .then(
        (ack) => ack.seq as number | string,
        (error: { code: string }) => error.code,
      );
  const removals = () =>
    frames.filter((f) => f.t === 'room.member').map((f) => (f.t === 'room.member' ? f.d : undefined));
  return {
    room,
    send,
    timers,
    frames,
    removals,
    removeFromDatabase: (userId: UserId) => {
      members = members.filter((id) => id !== userId);
    },
    writes,
    /** Holds every write until the returned function is called. */
    hold: () => {
      let open: () => void = () => undefined;
      gate = new Promise<void>((resolve) => {
        open = resolve;
      });
      return () => {
        gate = undefined;
        open();
      };
    },
  };
}

const settle = async () => {
  for (let i = 0; i < 5; i++) await new Promise<void>((resolve) => setImmediate(resolve));
};

describe('removals the room actor finds itself (review 25)', () => {
  it("announces the removal when the removed user's send is refused, before the others' messages go out", async () => {
    const { send, frames, removals, removeFromDatabase } = setup();
    expect(await send(bob, 'b1')).toBe(1);
    removeFromDatabase(bob); // committed; its announcement lost
    expect(await send(bob, 'b2')).toBe('FORBIDDEN');
    expect(removals()).toEqual([{ roomId, userId: bob, change: 'removed' }]);
    expect(await send(alice, 'a1')).toBe(2);
    // Announced before anything the removed user must not receive.
    expect(frames.map((f) => f.t)).toEqual(['room.message', 'room.member', 'room.message']);
  });

  it('announces it at the periodic member refresh when only the others write', async () => {
    const { send, timers, removals, removeFromDatabase } = setup();
    expect(await send(alice, 'a1')).toBe(1);
    removeFromDatabase(bob);
    timers.advance(MEMBERS_REFRESH_MS);
    expect(await send(alice, 'a2')).toBe(2);
    expect(removals()).toEqual([{ roomId, userId: bob, change: 'removed' }]);
    // Once: the actor no longer counts bob.
    timers.advance(MEMBERS_REFRESH_MS);
    expect(await send(alice, 'a3')).toBe(3);
    expect(removals()).toHaveLength(1);
  });

  it('stays silent on a reload the membership bus message asks for (the DELETE announces it)', async () => {
    const { room, send, removals, removeFromDatabase } = setup();
    expect(await send(alice, 'a1')).toBe(1);
    removeFromDatabase(bob);
    room.tell({ type: 'reload-members' });
    await settle();
    expect(await send(alice, 'a2')).toBe(2);
    expect(removals()).toEqual([]);
  });
});

/**
 * A resend that arrives while its first send is being written (a client on a flaky network
 * reconnecting and resending at once) waited in the queue and went to the database in the next
 * batch: a unique violation there fails the whole node-wide statement (every room's new messages
 * of that moment, each then written again alone) before the checked rewrite found the first seq.
 * Once the first is stored the actor knows its seq: the queued resend is answered from memory.
 */
describe('a resend queued behind its own first send (review 25)', () => {
  it('is answered with the first seq once that is stored, without a write the database refuses', async () => {
    const { send, writes, hold } = setup();
    const release = hold();
    const first = send(alice, 'flaky');
    await settle();
    const resend = send(alice, 'flaky');
    await settle();
    release();
    expect(await first).toBe(1);
    expect(await resend).toBe(1);
    expect(writes).toEqual({ attempted: 1, refused: 0 });
    expect(await send(alice, 'next')).toBe(2);
  });
});
