/**
 * Review 24: the sends a room actor remembers to answer resends without the database (`recent`)
 * are bounded in number and in age. A full map of 10 000 took ~7 MB of heap (measured: keys of
 * sender and clientMsgId, each with its seq and sentAt) for as long as the actor stayed active (a
 * message at least every 2 minutes): a user cycling through their 1 000 rooms, or a node hosting a
 * few hundred busy rooms, pinned gigabytes. Resends come within the sender's retry window (the
 * SDK gives up after about 2 minutes); an older one is answered from the database as before.
 */
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { RoomId, UserId } from '../../../protocol/src/ids.js';
import { estimatedMessageBytes } from '../../domain/rooms/message-size.js';
import { createLogger } from '../../platform/logger.js';
import { createManualTimers } from '../../platform/timers.js';
import { createActorSystem } from '../runtime/actor-system.js';
import { RECENT_SENDS, RECENT_SENDS_TTL_MS, type RoomCommand, roomActorKind } from './room-actor.js';
import type { MessageRow, NewMessage, RoomStore } from './room-store.js';

const roomId = 'c7d4e2a1-5b3f-4e6a-9c8d-1f2e3a4b5c24' as RoomId;
const otherRoomId = 'c7d4e2a1-5b3f-4e6a-9c8d-1f2e3a4b5c25' as RoomId;
const alice = 'a0000000-0000-4000-8000-000000000024' as UserId;

function setup(options: { maxQueuedSendBytes?: number } = {}) {
  const timers = createManualTimers(1_700_000_000_000);
  const log = createLogger({ level: 'fatal', pretty: false, destination: { write: () => undefined } });
  const registry = new Registry();
  const system = createActorSystem({ log, timers, metrics: registry, askTimeoutMs: 60_000 });
  const rows: MessageRow[] = [];
  const keys = new Set<string>();
  /** Writes that reached the store (a resend answered from memory makes none). */
  let writes = 0;
  /** Awaited before each write: lets a test pile sends up behind a write in flight. */
  let gate: Promise<void> | undefined;
  const insert = async (messages: readonly NewMessage[]) => {
    await gate;
    writes += 1;
    for (const m of messages) {
      if (keys.has(m.clientMsgId))
        throw Object.assign(new Error('duplicate key value violates unique constraint'), { code: '23505' });
    }
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
    for (const row of stored) {
      rows.push(row);
      keys.add(row.client_msg_id);
    }
    return stored;
  };
  const store: RoomStore = {
    acquire: async () => ({ epoch: 1 }),
    members: async () => [{ userId: alice, lastReadSeq: 0 }],
    highestSeq: async () => rows.length,
    lastSeqs: async (ids) => new Map(ids.map((id) => [id, rows.length])),
    insertNew: async (_room, _epoch, messages) => insert(messages),
    insertChecked: async (_room, _epoch, sends, plan) => {
      const stored = rows.filter((r) => sends.some((s) => s.clientMsgId === r.client_msg_id));
      return { stored, inserted: await insert(plan(stored)) };
    },
    messagesAfter: async () => [],
    messagesBefore: async () => [],
    markRead: async () => undefined,
  };
  const kind = roomActorKind({
    store,
    fanOut: () => undefined,
    toRoomId: (id) => id as RoomId,
    now: () => timers.now(),
    metrics: registry,
    ...(options.maxQueuedSendBytes === undefined ? {} : { maxQueuedSendBytes: options.maxQueuedSendBytes }),
  });
  system.register(kind);
  const room = system.ref<RoomCommand>(kind, roomId);
  const sendTo = (to: RoomId, clientMsgId: string, meta: Record<string, unknown> | null = null) =>
    system
      .ref<RoomCommand>(kind, to)
      .ask<{ seq: number }>((reply) => ({
        type: 'send',
        send: { senderId: alice, clientMsgId, body: clientMsgId, meta },
        reply,
      }))
      .then(
        (ack) => ({ seq: ack.seq as number | undefined, code: undefined as string | undefined }),
        (error: { code?: string }) => ({ seq: undefined as number | undefined, code: error.code }),
      );
  const send = (clientMsgId: string) =>
    room.ask<{ seq: number }>((reply) => ({
      type: 'send',
      send: { senderId: alice, clientMsgId, body: clientMsgId, meta: null },
      reply,
    }));
  const typing = () => room.ask((reply) => ({ type: 'typing', userId: alice, reply }));
  const hold = () => {
    let open: () => void = () => undefined;
    gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    return () => {
      gate = undefined;
      open();
    };
  };
  return { send, sendTo, typing, timers, hold, writes: () => writes };
}

describe('sends a room actor remembers for resends (review 24)', () => {
  it('keeps at most RECENT_SENDS (1 000): a resend of an older one is answered from the store, same seq', async () => {
    expect(RECENT_SENDS).toBeLessThanOrEqual(1_000);
    const { send, writes } = setup();
    expect((await send('first')).seq).toBe(1);
    for (let i = 0; i < 1_000; i += 100) {
      await Promise.all(Array.from({ length: 100 }, (_, k) => send(`m${i + k}`)));
    }
    // The newest is still answered from memory.
    const before = writes();
    expect((await send('m999')).seq).toBe(1_001);
    expect(writes()).toBe(before);
    // The first is not: its resend goes to the store, which finds it and answers its seq.
    expect((await send('first')).seq).toBe(1);
    expect(writes()).toBeGreaterThan(before);
  });

  it('forgets a send older than RECENT_SENDS_TTL_MS (5 minutes), though the room stayed active', async () => {
    expect(RECENT_SENDS_TTL_MS).toBeLessThanOrEqual(5 * 60_000);
    const { send, typing, timers, writes } = setup();
    expect((await send('early')).seq).toBe(1);
    for (let waited = 0; waited <= 5 * 60_000; waited += 30_000) {
      timers.advance(30_000);
      await typing(); // active: no passivation (idle after 2 minutes)
    }
    const before = writes();
    expect((await send('early')).seq).toBe(1);
    expect(writes()).toBeGreaterThan(before);
  });

  it('refuses sends RATE_LIMITED past MAX_QUEUED_SEND_BYTES waiting in all rooms of the node, and takes them again once answered', async () => {
    /** The largest legal meta by heap: ~1 360 empty objects in 4 096 characters of JSON. */
    let json = '{"a":[';
    while (json.length < 4_086) json += '{},';
    const heavy = JSON.parse(`${json.slice(0, -1)}]}`) as Record<string, unknown>;
    const size = estimatedMessageBytes({ body: 'h0', meta: heavy });
    // Room for 10 such sends in all, whatever room they wait in (far fewer than a room's count).
    const { sendTo, hold } = setup({ maxQueuedSendBytes: size * 10 + size / 2 });
    // A first write of each room is in flight and held: later sends queue behind it.
    const release = hold();
    const waiting = [
      ...Array.from({ length: 5 }, (_, i) => sendTo(roomId, `a${i}`, heavy)),
      ...Array.from({ length: 5 }, (_, i) => sendTo(otherRoomId, `b${i}`, heavy)),
    ];
    await new Promise<void>((resolve) => setImmediate(resolve));
    const over = Promise.all([sendTo(roomId, 'a-over', heavy), sendTo(otherRoomId, 'b-over', heavy)]);
    // Refused at once, not queued behind the held writes.
    let refused: { code: string | undefined }[] | undefined;
    over.then((results) => {
      refused = results;
    });
    for (let i = 0; i < 5; i++) await new Promise<void>((resolve) => setImmediate(resolve));
    expect(refused?.map((r) => r.code)).toEqual(['RATE_LIMITED', 'RATE_LIMITED']);
    release();
    const answered = await Promise.all(waiting);
    expect(answered.every((r) => r.code === undefined && r.seq !== undefined)).toBe(true);
    // Answered: their bytes are free again.
    expect((await sendTo(roomId, 'a-later', heavy)).code).toBeUndefined();
  });
});
