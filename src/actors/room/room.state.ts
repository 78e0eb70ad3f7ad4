/**
 * The pure rules of a room, with no I/O, unit-tested on their own: who may act in it, how a batch of
 * sends becomes gap-free seqs (resends keep their first seq), how read marks move, how typing is
 * throttled. The RoomActor holds one RoomState and applies these functions one message at a time.
 */

import type { RoomId, UserId } from '../../../protocol/src/ids.js';
import { SqlState } from '../../db/errors.js';

export interface RoomState {
  readonly roomId: RoomId;
  readonly members: ReadonlyMap<UserId, { readonly lastReadSeq: number }>;
  /** Highest seq stored; the next message gets lastSeq + 1. */
  readonly lastSeq: number;
  /** When each member last had a typing event pushed (ms). */
  readonly typingPushedAt: ReadonlyMap<UserId, number>;
}

export interface PendingSend {
  readonly senderId: UserId;
  readonly clientMsgId: string;
  readonly body: string;
  readonly meta: Record<string, unknown> | null;
}

export const sendKey = (senderId: string, clientMsgId: string) => `${senderId}\u0000${clientMsgId}`;

export const isMember = (state: RoomState, userId: UserId) => state.members.has(userId);

/**
 * Assigns seqs to a batch. Sends already stored (`stored`, by sendKey) keep their seq and are not
 * inserted again; the same clientMsgId twice in one batch is stored once. The result's `lastSeq` is
 * the state's after a successful commit.
 */
export function planBatch(
  state: RoomState,
  batch: readonly PendingSend[],
  stored: ReadonlyMap<string, number>,
): {
  readonly inserts: (PendingSend & { readonly seq: number })[];
  readonly seqOf: Map<string, number>;
  readonly lastSeq: number;
} {
  const seqOf = new Map<string, number>(stored);
  const inserts: (PendingSend & { seq: number })[] = [];
  let lastSeq = state.lastSeq;
  for (const send of batch) {
    const key = sendKey(send.senderId, send.clientMsgId);
    if (seqOf.has(key)) continue;
    lastSeq += 1;
    seqOf.set(key, lastSeq);
    inserts.push({ ...send, seq: lastSeq });
  }
  return { inserts, seqOf, lastSeq };
}

/**
 * What a failed batch write says about its sends, by the error's SQLSTATE:
 * - `duplicate` (23505): a resend stored earlier or a seq another writer took; the whole batch is
 *   written again with a lookup of stored sends.
 * - `unavailable`: the database could not be reached or gave up on the statement (connection
 *   errors without a SQLSTATE, classes 08 connection, 25 invalid transaction state — 25006 a
 *   read-only database, as during a failover —, 40 rollback, 53 resources, 57 operator
 *   intervention, 58 system, and 55P03 lock_not_available, a `lock_timeout` the operator set
 *   running out behind a lock held elsewhere): no send is to blame, so the batch fails as a whole
 *   and its senders resend.
 * - `rejected`: any other SQLSTATE (classes 22 data exception, 23 constraints, 54 limits, …): the
 *   database refused something in the rows. One send may be to blame, so the batch is split until
 *   the refused send stands alone, and only that one fails.
 * - `fenced` (ROOM_FENCED, not a SQLSTATE): another node took the room over; nothing was stored,
 *   this writer steps down and its senders resend to the new owner.
 * - `not-member` (ROOM_SENDER_NOT_MEMBER, not a SQLSTATE): a sender was removed from the room and
 *   the actor had not heard of it; nothing was stored, the actor reads the members again, refuses
 *   the removed senders FORBIDDEN and writes the others' messages again.
 */
export type WriteFailure = 'duplicate' | 'unavailable' | 'rejected' | 'fenced' | 'not-member';

/** The code of RoomFencedError (db/repositories/rooms.repo.ts). */
export const ROOM_FENCED = 'ROOM_FENCED';
/** The code of RoomSenderNotMemberError (db/repositories/rooms.repo.ts). */
export const ROOM_SENDER_NOT_MEMBER = 'ROOM_SENDER_NOT_MEMBER';

const UNAVAILABLE_CLASSES = new Set(['08', '25', '40', '53', '57', '58']);
const LOCK_NOT_AVAILABLE = '55P03';

export function classifyWriteFailure(error: unknown): WriteFailure {
  const code = (error as { code?: unknown } | null)?.code;
  if (code === ROOM_FENCED) return 'fenced';
  if (code === ROOM_SENDER_NOT_MEMBER) return 'not-member';
  if (typeof code !== 'string' || !/^[0-9A-Z]{5}$/.test(code)) return 'unavailable';
  if (code === SqlState.UNIQUE_VIOLATION) return 'duplicate';
  if (code === LOCK_NOT_AVAILABLE) return 'unavailable';
  return UNAVAILABLE_CLASSES.has(code.slice(0, 2)) ? 'unavailable' : 'rejected';
}

/**
 * Splits a refused batch into two halves, in order, so the refused send is isolated in about
 * log2(n) further writes while the others are stored. A single send cannot be split: undefined.
 */
export function splitBatch<T>(batch: readonly T[]): readonly [T[], T[]] | undefined {
  if (batch.length < 2) return undefined;
  const half = Math.ceil(batch.length / 2);
  return [batch.slice(0, half), batch.slice(half)];
}

/** Moves a member's read mark forward (never past lastSeq, never back). */
export function applyRead(
  state: RoomState,
  userId: UserId,
  seq: number,
): { state: RoomState; seq: number; changed: boolean } {
  const current = state.members.get(userId);
  const clamped = Math.min(Math.max(0, Math.floor(seq)), state.lastSeq);
  if (current === undefined || clamped <= current.lastReadSeq) {
    return { state, seq: current?.lastReadSeq ?? 0, changed: false };
  }
  const members = new Map(state.members);
  members.set(userId, { lastReadSeq: clamped });
  return { state: { ...state, members }, seq: clamped, changed: true };
}

/** Typing is pushed at most once per `throttleMs` per member. */
export function applyTyping(
  state: RoomState,
  userId: UserId,
  nowMs: number,
  throttleMs: number,
): { state: RoomState; push: boolean } {
  const last = state.typingPushedAt.get(userId);
  if (last !== undefined && nowMs - last < throttleMs) return { state, push: false };
  const typingPushedAt = new Map(state.typingPushedAt);
  typingPushedAt.set(userId, nowMs);
  return { state: { ...state, typingPushedAt }, push: true };
}
