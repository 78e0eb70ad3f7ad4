/**
 * The pure rules of a room, with no I/O, unit-tested on their own: who may act in it, how a batch of
 * sends becomes gap-free seqs (resends keep their first seq), how read marks move, how typing is
 * throttled. The RoomActor holds one RoomState and applies these functions one message at a time.
 */
import type { RoomId, UserId } from '../../../protocol/src/ids.js';

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
