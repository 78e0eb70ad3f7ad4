/**
 * The room actor on the real actor runtime, without servers: an in-memory RoomStore that behaves
 * like the SQL one where it matters here (one atomic statement per batch; 23505 on a taken seq or
 * clientMsgId; 22021 for a NUL, as PostgreSQL refuses it) and a fan-out that records.
 */
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { RoomId, UserId } from '../../../protocol/src/ids.js';
import type { RoomFramePayload } from '../../platform/bus/topics.js';
import { AppError, isAppError } from '../../platform/errors.js';
import { createLogger } from '../../platform/logger.js';
import { createManualTimers } from '../../platform/timers.js';
import { createActorSystem } from '../runtime/actor-system.js';
import { isRoomMoved, MEMBERS_REFRESH_MS, type RoomCommand, roomActorKind } from './room-actor.js';
import {
  type MessageRow,
  type NewMessage,
  RoomFencedError,
  RoomSenderNotMemberError,
  type RoomStore,
} from './room-store.js';

const roomId = 'c7d4e2a1-5b3f-4e6a-9c8d-1f2e3a4b5c6d' as RoomId;
const alice = 'a0000000-0000-4000-8000-000000000001' as UserId;
const bob = 'b0000000-0000-4000-8000-000000000002' as UserId;
const carol = 'c0000000-0000-4000-8000-000000000003' as UserId;

const settle = async () => {
  for (let i = 0; i < 5; i++) await new Promise<void>((resolve) => setImmediate(resolve));
};

function deferred() {
  let resolve: () => void = () => undefined;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

function sqlError(code: string, message: string) {
  return Object.assign(new Error(message), { code });
}

/** Messages in memory; every batch is all-or-nothing like one SQL statement. */
function memoryStore() {
  const rows = new Map<number, MessageRow>();
  /** The room's fencing epoch, as the rooms row holds it: each takeover bumps it. */
  let currentEpoch = 0;
  const hooks = {
    /** Another node takes the room over (a newer epoch): writes with the old one are fenced. */
    takeOver: () => {
      currentEpoch++;
    },
    /** Takeovers by this node's activations. */
    acquired: 0,
    /** Awaited before each insert: lets a test pile sends up behind a write in flight. */
    beforeInsert: undefined as undefined | (() => Promise<void>),
    /** Awaited after an insert committed, before it resolves. */
    afterCommit: undefined as undefined | (() => Promise<void>),
    /** The next markRead / members call fails as a database that cannot be reached. */
    failRead: false,
    failMembers: false,
    /** The room's members as the store answers them. */
    members: [alice, bob] as UserId[],
    /** Reads of the members. */
    membersReads: 0,
    /** Read marks written: [userId, seq]. */
    reads: [] as [UserId, number][],
    /** Lookups of the stored highest seq. */
    highestSeqReads: 0,
    down: false,
    inserts: [] as number[],
  };
  const insert = async (epoch: number, messages: readonly NewMessage[]): Promise<MessageRow[]> => {
    await hooks.beforeInsert?.();
    hooks.inserts.push(messages.length);
    if (epoch !== currentEpoch) throw new RoomFencedError(roomId);
    if (hooks.down) throw sqlError('08006', 'connection terminated');
    // As the SQL statement checks: a sender removed meanwhile stores nothing of the batch.
    if (messages.some((m) => !hooks.members.includes(m.senderId))) throw new RoomSenderNotMemberError(roomId);
    for (const m of messages) {
      if (m.body.includes('\u0000'))
        throw sqlError('22021', 'invalid byte sequence for encoding "UTF8": 0x00');
      const clash = [...rows.values()].some(
        (r) => r.seq === m.seq || (r.sender_id === m.senderId && r.client_msg_id === m.clientMsgId),
      );
      if (clash) throw sqlError('23505', 'duplicate key value violates unique constraint');
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
    for (const row of stored) rows.set(row.seq, row);
    await hooks.afterCommit?.();
    return stored;
  };
  const store: RoomStore = {
    acquire: async () => {
      hooks.acquired++;
      return { epoch: ++currentEpoch };
    },
    members: async () => {
      hooks.membersReads++;
      if (hooks.failMembers) {
        hooks.failMembers = false;
        throw sqlError('08006', 'connection terminated');
      }
      return hooks.members.map((userId) => ({ userId, lastReadSeq: 0 }));
    },
    highestSeq: async () => {
      hooks.highestSeqReads++;
      return Math.max(0, ...rows.keys());
    },
    lastSeqs: async (roomIds) => new Map(roomIds.map((id) => [id, Math.max(0, ...rows.keys())])),
    insertNew: (_roomId, epoch, messages) => insert(epoch, messages),
    insertChecked: async (_roomId, epoch, sends, plan) => {
      const stored = [...rows.values()].filter((r) =>
        sends.some((s) => s.senderId === r.sender_id && s.clientMsgId === r.client_msg_id),
      );
      return { stored, inserted: await insert(epoch, plan(stored)) };
    },
    messagesAfter: async (_roomId, sinceSeq, limit) =>
      [...rows.values()].filter((r) => r.seq > sinceSeq).slice(0, limit),
    messagesBefore: async () => [],
    markRead: async (_roomId, userId, seq) => {
      if (hooks.failRead) {
        hooks.failRead = false;
        throw sqlError('08006', 'connection terminated');
      }
      hooks.reads.push([userId, seq]);
    },
  };
  return { store, rows, hooks };
}

function setup(options: { isOwner?: () => boolean; maxQueuedSends?: number } = {}) {
  const timers = createManualTimers(1_700_000_000_000);
  const log = createLogger({ level: 'fatal', pretty: false, destination: { write: () => undefined } });
  const registry = new Registry();
  const system = createActorSystem({ log, timers, metrics: registry, askTimeoutMs: 60_000 });
  const { store, rows, hooks } = memoryStore();
  const published: RoomFramePayload[] = [];
  const kind = roomActorKind({
    store,
    fanOut: (_topic, payload) => published.push(payload),
    toRoomId: (id) => id as RoomId,
    now: () => timers.now(),
    metrics: registry,
    ...(options.isOwner === undefined ? {} : { isOwner: options.isOwner }),
    ...(options.maxQueuedSends === undefined ? {} : { maxQueuedSends: options.maxQueuedSends }),
  });
  system.register(kind);
  const room = system.ref<RoomCommand>(kind, roomId);
  const send = (senderId: UserId, clientMsgId: string, body = clientMsgId, timeoutMs?: number) =>
    room
      .ask<{ seq: number }>(
        (reply) => ({ type: 'send', send: { senderId, clientMsgId, body, meta: null }, reply }),
        timeoutMs,
      )
      .then(
        (ack) => ({ clientMsgId, seq: ack.seq, code: undefined as string | undefined }),
        (error: unknown) => ({
          clientMsgId,
          seq: undefined as number | undefined,
          code: isRoomMoved(error) ? 'ROOM_MOVED' : isAppError(error) ? error.code : 'THROWN',
        }),
      );
  const pushedSeqs = () =>
    published
      .map((p) => p.frame as { t: string; d: { seq: number; clientMsgId: string } })
      .filter((f) => f.t === 'room.message')
      .map((f) => f.d.seq);
  /** A short request of another member (a turn of its own, no write). */
  const typing = () => room.ask((reply) => ({ type: 'typing', userId: bob, reply }));
  return { system, room, rows, hooks, send, typing, published, pushedSeqs, registry, timers };
}

/** What a promise settled with once the event loop went quiet, or 'unsettled'. */
async function settledValue<T>(promise: Promise<T>): Promise<T | 'unsettled'> {
  let value: T | 'unsettled' = 'unsettled';
  promise.then(
    (v) => {
      value = v;
    },
    () => undefined,
  );
  await settle();
  return value;
}

/** A one-shot throw in the actor's turn: a bug, which restarts the activation. */
function bugOnce() {
  let armed = false;
  return {
    arm: () => {
      armed = true;
    },
    isOwner: () => {
      if (!armed) return true;
      armed = false;
      throw new Error('injected bug');
    },
  };
}

describe('room actor', () => {
  it('times each acknowledged send from its arrival at the actor, the wait for the write in flight included', async () => {
    const { hooks, send, registry, timers } = setup();
    const gate = deferred();
    hooks.beforeInsert = () => gate.promise;
    const first = send(alice, 'first');
    await settle();
    const second = send(bob, 'second');
    await settle();
    timers.advance(30);
    hooks.beforeInsert = undefined;
    gate.resolve();
    expect((await first).seq).toBe(1);
    expect((await second).seq).toBe(2);
    const metric = await registry.getSingleMetric('gigwire_room_send_seconds')?.get();
    const value = (name: string, le?: number) =>
      metric?.values.find(
        (v) => (v as { metricName?: string }).metricName === name && (le === undefined || v.labels.le === le),
      )?.value;
    expect(value('gigwire_room_send_seconds_count')).toBe(2);
    // Both waited the 30 ms the first write was held (the second behind it): none within 20 ms.
    expect(value('gigwire_room_send_seconds_bucket', 0.02)).toBe(0);
    expect(value('gigwire_room_send_seconds_bucket', 0.05)).toBe(2);
  });

  it('refuses the sends of a member removed unannounced in the write itself, and stores the rest without a gap', async () => {
    const { hooks, send, rows, pushedSeqs } = setup();
    expect((await send(bob, 'b1')).seq).toBe(1);
    const gate = deferred();
    hooks.beforeInsert = () => gate.promise;
    const first = send(alice, 'a2');
    await settle();
    const [a3, b3] = [send(alice, 'a3'), send(bob, 'b3')];
    await settle();
    // Bob removed; the actor is not told (the announcement lost) and its members are fresh.
    hooks.members = [alice];
    hooks.beforeInsert = undefined;
    gate.resolve();
    expect(await first).toMatchObject({ seq: 2 });
    expect(await b3).toMatchObject({ code: 'FORBIDDEN' });
    expect(await a3).toMatchObject({ seq: 3 });
    expect([...rows.values()].map((r) => r.client_msg_id)).toEqual(['b1', 'a2', 'a3']);
    expect(pushedSeqs()).toEqual([1, 2, 3]);
    // The actor read the members again: bob's next send is refused before any write.
    const writes = hooks.inserts.length;
    expect(await send(bob, 'b4')).toMatchObject({ code: 'FORBIDDEN' });
    expect(hooks.inserts.length).toBe(writes);
  });

  it('splits a batch the database refuses so that only the refused send fails', async () => {
    const { hooks, send, pushedSeqs, rows } = setup();
    const gate = deferred();
    hooks.beforeInsert = () => gate.promise;
    const first = send(alice, 'first');
    await settle();
    // Everything below waits behind the first write and is written as one batch.
    const burst = Array.from({ length: 20 }, (_, i) =>
      i === 7 ? send(bob, 'poison', 'bad\u0000') : send(i % 2 ? alice : bob, `m${i}`),
    );
    await settle();
    hooks.beforeInsert = undefined;
    gate.resolve();
    const results = [await first, ...(await Promise.all(burst))];
    expect(results.filter((r) => r.code !== undefined)).toEqual([
      { clientMsgId: 'poison', seq: undefined, code: 'VALIDATION_FAILED' },
    ]);
    expect(hooks.inserts[1]).toBe(20); // the poisoned batch really held everyone's sends
    const seqs = results.flatMap((r) => (r.seq === undefined ? [] : [r.seq])).sort((a, b) => a - b);
    expect(seqs).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect([...rows.keys()].sort((a, b) => a - b)).toEqual(seqs);
    expect(pushedSeqs()).toEqual(seqs);
  });

  it('fails a batch as a whole, without splitting, when the database itself is unavailable', async () => {
    const { hooks, send } = setup();
    hooks.down = true;
    const results = await Promise.all([send(alice, 'a'), send(bob, 'b'), send(alice, 'c')]);
    expect(results.map((r) => r.code)).toEqual(['UNAVAILABLE', 'UNAVAILABLE', 'UNAVAILABLE']);
    expect(hooks.inserts.length).toBeLessThanOrEqual(2);
    hooks.down = false;
    expect(await send(alice, 'a')).toMatchObject({ seq: 1 });
  });

  it('pushes a committed batch even when the actor restarts before it hears of the commit', async () => {
    const bug = bugOnce();
    const { hooks, send, typing, pushedSeqs } = setup({ isOwner: bug.isOwner });
    const committed = deferred();
    const release = deferred();
    hooks.afterCommit = async () => {
      committed.resolve();
      await release.promise;
    };
    const sent = send(alice, 'restart-me');
    await committed.promise;
    hooks.afterCommit = undefined;
    bug.arm();
    await expect(typing()).rejects.toSatisfy((e: unknown) => e instanceof AppError && e.code === 'INTERNAL');
    release.resolve();
    expect(await sent).toMatchObject({ seq: 1 });
    await settle();
    expect(pushedSeqs()).toEqual([1]);
    expect(await send(bob, 'next')).toMatchObject({ seq: 2 });
    await settle();
    expect(pushedSeqs()).toEqual([1, 2]);
  });

  it('pushes a message whose commit outcome was lost once its resend finds it stored', async () => {
    const { hooks, send, pushedSeqs, rows } = setup();
    // The statement committed, then the connection dropped: no SQLSTATE, the outcome is unknown.
    hooks.afterCommit = async () => {
      hooks.afterCommit = undefined;
      throw new Error('Connection terminated unexpectedly');
    };
    expect(await send(alice, 'lost')).toMatchObject({ code: 'UNAVAILABLE' });
    expect([...rows.keys()]).toEqual([1]);
    expect(pushedSeqs()).toEqual([]);
    expect(await send(alice, 'lost')).toMatchObject({ seq: 1 });
    await settle();
    expect(pushedSeqs()).toEqual([1]);
    // Acknowledged now: a further resend is answered from memory and pushes nothing more.
    expect(await send(alice, 'lost')).toMatchObject({ seq: 1 });
    await settle();
    expect(pushedSeqs()).toEqual([1]);
  });

  it('pushes the messages of a lost node-wide commit that the rewrite of its batch finds stored', async () => {
    const { hooks, send, pushedSeqs } = setup();
    // Group commit: the node-wide statement committed but its outcome was lost; the batch written
    // again on its own meets its own rows (a unique violation), the checked rewrite finds them.
    hooks.afterCommit = async () => {
      hooks.afterCommit = undefined;
      throw sqlError('23505', 'duplicate key value violates unique constraint');
    };
    const gate = deferred();
    hooks.beforeInsert = () => gate.promise;
    const first = send(alice, 'a');
    await settle();
    const queued = [send(bob, 'b'), send(alice, 'c')];
    await settle();
    hooks.beforeInsert = undefined;
    gate.resolve();
    expect((await Promise.all([first, ...queued])).map((r) => r.seq)).toEqual([1, 2, 3]);
    await settle();
    expect(pushedSeqs()).toEqual([1, 2, 3]);
  });

  it('pushes in seq order only: a resend found stored below a pushed seq is not pushed again', async () => {
    const { hooks, send, pushedSeqs } = setup();
    hooks.afterCommit = async () => {
      hooks.afterCommit = undefined;
      throw new Error('Connection terminated unexpectedly');
    };
    expect(await send(alice, 'lost')).toMatchObject({ code: 'UNAVAILABLE' });
    // A later message is numbered after the lost one and pushed first; receivers see the jump
    // from 0 to 2 and read seq 1 from history (the gap rule).
    expect(await send(bob, 'later')).toMatchObject({ seq: 2 });
    expect(await send(alice, 'lost')).toMatchObject({ seq: 1 });
    await settle();
    expect(pushedSeqs()).toEqual([2]);
  });

  it('refuses sends beyond its queue RATE_LIMITED while a write is in flight, and stores every accepted one', async () => {
    const { hooks, send, rows, pushedSeqs } = setup({ maxQueuedSends: 3 });
    const gate = deferred();
    hooks.beforeInsert = () => gate.promise;
    const first = send(alice, 'first');
    await settle();
    const burst = Array.from({ length: 5 }, (_, i) => send(i % 2 ? alice : bob, `m${i}`));
    await settle();
    hooks.beforeInsert = undefined;
    gate.resolve();
    const results = [await first, ...(await Promise.all(burst))];
    expect(results.map((r) => r.seq ?? r.code)).toEqual([1, 2, 3, 4, 'RATE_LIMITED', 'RATE_LIMITED']);
    expect([...rows.keys()].sort((a, b) => a - b)).toEqual([1, 2, 3, 4]);
    await settle();
    expect(pushedSeqs()).toEqual([1, 2, 3, 4]);
  });

  it('does not write a queued send whose asker gave up waiting', async () => {
    const { hooks, send, rows, timers } = setup();
    const gate = deferred();
    hooks.beforeInsert = () => gate.promise;
    const first = send(alice, 'first');
    await settle();
    const impatient = send(bob, 'impatient', 'impatient', 1_000);
    const patient = send(alice, 'patient');
    await settle();
    timers.advance(1_000);
    expect(await impatient).toMatchObject({ code: 'UNAVAILABLE' });
    hooks.beforeInsert = undefined;
    gate.resolve();
    expect([(await first).seq, (await patient).seq]).toEqual([1, 2]);
    expect([...rows.values()].map((r) => r.client_msg_id)).toEqual(['first', 'patient']);
  });

  it('scans a full queue for abandoned sends at most every 100 ms, not per refused send', async () => {
    const { hooks, send, timers } = setup({ maxQueuedSends: 2 });
    const gate = deferred();
    hooks.beforeInsert = () => gate.promise;
    const first = send(alice, 'first');
    await settle();
    const gaveUp = send(bob, 'gave-up', 'gave-up', 1_000);
    const gaveUpLater = send(bob, 'gave-up-later', 'gave-up-later', 1_050);
    await settle();
    timers.advance(1_000);
    expect(await gaveUp).toMatchObject({ code: 'UNAVAILABLE' });
    // A send to the full queue scans it and takes the place the first asker left.
    const tookFirstPlace = send(alice, 'took-first-place');
    await settle();
    timers.advance(50);
    expect(await gaveUpLater).toMatchObject({ code: 'UNAVAILABLE' });
    // 50 ms after that scan: no other scan yet, so the queue still counts as full.
    expect(await send(alice, 'too-soon')).toMatchObject({ code: 'RATE_LIMITED' });
    timers.advance(50);
    const tookSecondPlace = send(alice, 'took-second-place');
    await settle();
    hooks.beforeInsert = undefined;
    gate.resolve();
    expect((await first).seq).toBe(1);
    expect(await settledValue(tookFirstPlace)).toMatchObject({ seq: 2 });
    expect(await settledValue(tookSecondPlace)).toMatchObject({ seq: 3 });
  });

  it('fails only a read mark the database could not store UNAVAILABLE, and stores it when asked again', async () => {
    const { room, hooks, send } = setup();
    expect(await send(alice, 'one')).toMatchObject({ seq: 1 });
    const read = () => room.ask((reply) => ({ type: 'read', userId: bob, seq: 1, reply }));
    const gate = deferred();
    hooks.beforeInsert = () => gate.promise;
    const inFlight = send(alice, 'two');
    await settle();
    const queued = send(bob, 'three');
    await settle();
    hooks.failRead = true;
    const failed = read().catch((error: unknown) => error);
    await settle();
    hooks.beforeInsert = undefined;
    gate.resolve();
    expect(await inFlight).toMatchObject({ seq: 2 });
    expect(await settledValue(queued)).toMatchObject({ seq: 3 });
    expect(await failed).toSatisfy((e: unknown) => isAppError(e) && e.code === 'UNAVAILABLE');
    expect(await read()).toEqual({ seq: 1 });
    expect(hooks.reads).toEqual([[bob, 1]]);
  });

  it('marks a message it did not write read (a system message), looking the stored seq up within a budget (5 at once, then one a second)', async () => {
    const { room, rows, hooks, send, timers } = setup();
    expect(await send(alice, 'one')).toMatchObject({ seq: 1 });
    // A contract's system message, appended by the transition's own transaction, not by the actor.
    rows.set(2, {
      room_id: roomId,
      seq: 2,
      sender_id: alice,
      client_msg_id: 'system',
      body: 'Delivery submitted',
      meta: null,
      sent_at: new Date(1_700_000_000_002),
    });
    const read = (seq: number) => room.ask((reply) => ({ type: 'read', userId: bob, seq, reply }));
    const before = hooks.highestSeqReads;
    expect(await read(2)).toEqual({ seq: 2 });
    expect(hooks.highestSeqReads).toBe(before + 1);
    // Reads far past the end, as fast as a member can send them: not a lookup each.
    for (let i = 0; i < 20; i++) expect(await read(1_000_000)).toEqual({ seq: 2 });
    expect(hooks.highestSeqReads).toBe(before + 5);
    timers.advance(1_000);
    expect(await read(1_000_000)).toEqual({ seq: 2 });
    expect(await read(1_000_000)).toEqual({ seq: 2 });
    expect(hooks.highestSeqReads).toBe(before + 6);
  });

  it('keeps its members when reloading them fails, and reloads them again shortly after', async () => {
    const { room, hooks, send, timers } = setup();
    expect(await send(alice, 'one')).toMatchObject({ seq: 1 });
    const gate = deferred();
    hooks.beforeInsert = () => gate.promise;
    const inFlight = send(alice, 'two');
    await settle();
    const queued = send(bob, 'three');
    await settle();
    hooks.members = [alice, bob, carol];
    hooks.failMembers = true;
    room.tell({ type: 'reload-members' });
    await settle();
    hooks.beforeInsert = undefined;
    gate.resolve();
    expect(await inFlight).toMatchObject({ seq: 2 });
    expect(await settledValue(queued)).toMatchObject({ seq: 3 });
    // The members it had stay until the reload, tried again a moment later, succeeds.
    expect(await send(carol, 'early')).toMatchObject({ code: 'FORBIDDEN' });
    timers.advance(1_000);
    await settle();
    expect(await send(carol, 'welcome')).toMatchObject({ seq: 4 });
  });

  it('reads its members again before a request once they are MEMBERS_REFRESH_MS old, so a lost removal announcement ends', async () => {
    const { hooks, send, typing, timers } = setup();
    hooks.members = [alice, bob];
    expect(await send(bob, 'one')).toMatchObject({ seq: 1 });
    // Bob is removed in the database; the reload-members announcement never arrives.
    hooks.members = [alice];
    // His typing still passes (his sends no longer do: the write checks membership, review 21c).
    await expect(typing()).resolves.toBeUndefined();
    timers.advance(MEMBERS_REFRESH_MS);
    await settle();
    await expect(typing()).rejects.toMatchObject({ code: 'FORBIDDEN' });
    expect(await send(bob, 'too-late')).toMatchObject({ code: 'FORBIDDEN' });
    expect(await send(alice, 'fine')).toMatchObject({ seq: 2 });
  });

  it('reads its members again (one read a second at most) before refusing a user it does not count, so a lost addition announcement ends', async () => {
    const { hooks, send, room, timers } = setup();
    expect(await send(alice, 'one')).toMatchObject({ seq: 1 });
    // Carol is added in the database; the reload-members announcement never arrives (review 21).
    hooks.members = [alice, bob, carol];
    timers.advance(1_000);
    await expect(room.ask((reply) => ({ type: 'join', userId: carol, reply }))).resolves.toEqual({
      lastSeq: 1,
    });
    expect(await send(carol, 'welcome')).toMatchObject({ seq: 2 });
    // Someone the database does not count either: refused, and costs one read a second at most.
    const reads = hooks.membersReads;
    const dave = 'd0000000-0000-4000-8000-000000000004' as UserId;
    timers.advance(1_000);
    for (let i = 0; i < 5; i++) expect(await send(dave, `no-${i}`)).toMatchObject({ code: 'FORBIDDEN' });
    expect(hooks.membersReads - reads).toBe(1);
  });

  it('fails the sends queued behind the write in flight UNAVAILABLE when the actor restarts', async () => {
    const bug = bugOnce();
    const { hooks, send, typing, rows } = setup({ isOwner: bug.isOwner });
    const committed = deferred();
    const release = deferred();
    hooks.afterCommit = async () => {
      committed.resolve();
      await release.promise;
    };
    const first = send(alice, 'first');
    await committed.promise;
    hooks.afterCommit = undefined;
    const queued = send(bob, 'queued');
    await settle();
    bug.arm();
    await expect(typing()).rejects.toSatisfy((e: unknown) => isAppError(e) && e.code === 'INTERNAL');
    expect(await settledValue(queued)).toMatchObject({ code: 'UNAVAILABLE' });
    release.resolve();
    expect(await first).toMatchObject({ seq: 1 });
    // The resend reaches the fresh activation.
    expect(await send(bob, 'queued')).toMatchObject({ seq: 2 });
    expect([...rows.keys()]).toEqual([1, 2]);
  });

  it('answers a join with membership and the last seq only, reading no backlog in its turn', async () => {
    const { room, send } = setup();
    await send(alice, 'one');
    expect(await room.ask((reply) => ({ type: 'join', userId: bob, reply }))).toEqual({ lastSeq: 1 });
    await expect(
      room.ask((reply) => ({
        type: 'join',
        userId: 'c0000000-0000-4000-8000-000000000003' as UserId,
        reply,
      })),
    ).rejects.toSatisfy((e: unknown) => e instanceof AppError && e.code === 'FORBIDDEN');
  });

  it('steps down when its write is fenced: that batch and everything queued fail ROOM_MOVED, nothing stored', async () => {
    const { hooks, send, rows, pushedSeqs } = setup();
    expect(await send(alice, 'before')).toMatchObject({ seq: 1 });
    const gate = deferred();
    hooks.beforeInsert = () => gate.promise;
    hooks.takeOver();
    const inFlight = send(alice, 'fenced');
    await settle();
    const queued = [send(bob, 'q1'), send(alice, 'q2')];
    await settle();
    hooks.beforeInsert = undefined;
    gate.resolve();
    expect((await Promise.all([inFlight, ...queued])).map((r) => r.code)).toEqual([
      'ROOM_MOVED',
      'ROOM_MOVED',
      'ROOM_MOVED',
    ]);
    expect([...rows.keys()]).toEqual([1]);
    expect(pushedSeqs()).toEqual([1]);
    // A fresh activation takes the room over again (a new epoch) and writes on from the stored seq.
    expect(await send(bob, 'q1')).toMatchObject({ seq: 2 });
  });

  it('refuses every member request ROOM_MOVED once placement gives the room to another node', async () => {
    let mine = true;
    const { room, send, rows, hooks } = setup({ isOwner: () => mine });
    expect(await send(alice, 'one')).toMatchObject({ seq: 1 });
    mine = false;
    const refused = await Promise.all([send(alice, 'two'), send(bob, 'three'), send(alice, 'four')]);
    expect(refused.map((r) => r.code)).toEqual(['ROOM_MOVED', 'ROOM_MOVED', 'ROOM_MOVED']);
    await expect(room.ask((reply) => ({ type: 'join', userId: bob, reply }))).rejects.toSatisfy(isRoomMoved);
    // Messages queued behind the step-down reach fresh activations, which never take the room
    // over from the real owner.
    expect(hooks.acquired).toBe(1);
    expect([...rows.keys()]).toEqual([1]);
    // The room comes back: the first request is refused and ends the stale activation, the resend
    // (as the router does it) finds a fresh one that takes the room over again.
    mine = true;
    expect(await send(alice, 'two')).toMatchObject({ code: 'ROOM_MOVED' });
    expect(await send(alice, 'two')).toMatchObject({ seq: 2 });
    expect(hooks.acquired).toBe(2);
  });
});
