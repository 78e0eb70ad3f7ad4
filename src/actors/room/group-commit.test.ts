import { describe, expect, it } from 'vitest';
import type { RoomId, UserId } from '../../../protocol/src/ids.js';
import {
  type MessageRow,
  type RoomBatch,
  RoomFencedError,
  RoomSenderNotMemberError,
} from '../../db/repositories/rooms.repo.js';
import { createGroupCommit } from './group-commit.js';

const room = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}` as RoomId;
const sender = '00000000-0000-4000-8000-0000000000aa' as UserId;

const batchOf = (roomId: RoomId, seqs: number[], epoch = 1): RoomBatch => ({
  roomId,
  epoch,
  messages: seqs.map((seq) => ({
    seq,
    senderId: sender,
    clientMsgId: `${roomId}-${seq}`,
    body: 'x',
    meta: null,
  })),
});

const rowsOf = (batch: RoomBatch): MessageRow[] =>
  batch.messages.map((m) => ({
    room_id: batch.roomId,
    seq: m.seq,
    sender_id: m.senderId,
    client_msg_id: m.clientMsgId,
    body: m.body,
    meta: null,
    sent_at: new Date(0),
  }));

interface Deferred<T> {
  readonly promise: Promise<T>;
  readonly resolve: (value: T) => void;
  readonly reject: (error: unknown) => void;
}
const deferred = <T>(): Deferred<T> => {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
};

/** A group commit whose statements the test answers by hand, flushed when the test says. */
function harness(options: { maxInFlight?: number; maxMessages?: number } = {}) {
  const many: { batches: readonly RoomBatch[]; answer: Deferred<Map<RoomId, MessageRow[]>> }[] = [];
  const one: { batch: RoomBatch; answer: Deferred<MessageRow[]> }[] = [];
  let flushes: (() => void)[] = [];
  const write = createGroupCommit({
    writeMany: (batches) => {
      const answer = deferred<Map<RoomId, MessageRow[]>>();
      many.push({ batches, answer });
      return answer.promise;
    },
    writeOne: (batch) => {
      const answer = deferred<MessageRow[]>();
      one.push({ batch, answer });
      return answer.promise;
    },
    schedule: (flush) => {
      flushes.push(flush);
    },
    ...options,
  });
  const settled = <T>(promise: Promise<T>) => {
    const state = { done: false, value: undefined as T | undefined, error: undefined as unknown };
    promise.then(
      (value) => {
        state.done = true;
        state.value = value;
      },
      (error: unknown) => {
        state.done = true;
        state.error = error;
      },
    );
    return state;
  };
  return {
    write,
    many,
    one,
    settled,
    flush: () => {
      const due = flushes;
      flushes = [];
      for (const flush of due) flush();
    },
    tick: () => new Promise((resolve) => setImmediate(resolve)),
  };
}

describe('node-wide group commit', () => {
  it('writes the batches of every room waiting in one turn in one statement; each caller gets its rows after the commit', async () => {
    const h = harness();
    const batches = [batchOf(room(1), [1, 2]), batchOf(room(2), [7]), batchOf(room(3), [4, 5, 6])];
    const results = batches.map((batch) => h.settled(h.write(batch)));
    expect(h.many).toHaveLength(0);
    h.flush();
    expect(h.many).toHaveLength(1);
    expect(h.many[0]?.batches.map((b) => b.roomId)).toEqual([room(1), room(2), room(3)]);
    await h.tick();
    // Not committed yet: nobody is answered.
    expect(results.every((r) => !r.done)).toBe(true);
    h.many[0]?.answer.resolve(new Map(batches.map((b) => [b.roomId, rowsOf(b)])));
    await h.tick();
    expect(results.map((r) => r.value?.map((row) => `${row.room_id}:${row.seq}`))).toEqual(
      batches.map((b) => b.messages.map((m) => `${b.roomId}:${m.seq}`)),
    );
  });

  it('while statements run, later writes wait and then go together in the next one', async () => {
    const h = harness({ maxInFlight: 1 });
    const first = h.settled(h.write(batchOf(room(1), [1])));
    h.flush();
    expect(h.one).toHaveLength(1); // a lone batch is written alone
    const later = [2, 3, 4].map((n) => h.settled(h.write(batchOf(room(n), [1]))));
    h.flush();
    expect(h.many).toHaveLength(0);
    h.one[0]?.answer.resolve(rowsOf(batchOf(room(1), [1])));
    await h.tick();
    expect(first.done).toBe(true);
    h.flush();
    expect(h.many.map((s) => s.batches.length)).toEqual([3]);
    expect(later.some((r) => r.done)).toBe(false);
  });

  it('fails a fenced room alone (missing from the answer); the others are stored', async () => {
    const h = harness();
    const a = h.settled(h.write(batchOf(room(1), [1])));
    const b = h.settled(h.write(batchOf(room(2), [1])));
    h.flush();
    h.many[0]?.answer.resolve(new Map([[room(1), rowsOf(batchOf(room(1), [1]))]]));
    await h.tick();
    expect(a.value).toHaveLength(1);
    expect(b.error).toBeInstanceOf(RoomFencedError);
  });

  it('fails a room answered with no rows (a sender no longer a member) alone; the others are stored', async () => {
    const h = harness();
    const a = h.settled(h.write(batchOf(room(1), [1])));
    const b = h.settled(h.write(batchOf(room(2), [1])));
    h.flush();
    h.many[0]?.answer.resolve(
      new Map([
        [room(1), rowsOf(batchOf(room(1), [1]))],
        [room(2), []],
      ]),
    );
    await h.tick();
    expect(a.value).toHaveLength(1);
    expect(b.error).toBeInstanceOf(RoomSenderNotMemberError);
  });

  it('when the statement fails as a whole, writes each room alone so each gets its own outcome', async () => {
    const h = harness();
    const results = [1, 2, 3].map((n) => h.settled(h.write(batchOf(room(n), [n]))));
    h.flush();
    h.many[0]?.answer.reject(Object.assign(new Error('duplicate key'), { code: '23505' }));
    await h.tick();
    expect(h.one.map((w) => w.batch.roomId)).toEqual([room(1), room(2), room(3)]);
    const duplicate = Object.assign(new Error('duplicate key'), { code: '23505' });
    h.one[1]?.answer.reject(duplicate);
    h.one[0]?.answer.resolve(rowsOf(batchOf(room(1), [1])));
    h.one[2]?.answer.resolve(rowsOf(batchOf(room(3), [3])));
    await h.tick();
    expect(results[0]?.value).toHaveLength(1);
    expect(results[1]?.error).toBe(duplicate);
    expect(results[2]?.value).toHaveLength(1);
  });

  it('when a unique violation names a room, writes that room alone and the others again in one statement', async () => {
    const h = harness();
    const results = [1, 2, 3].map((n) => h.settled(h.write(batchOf(room(n), [n]))));
    h.flush();
    // A resend older than room 2's dedupe window: PostgreSQL names the key it collided on.
    const duplicate = Object.assign(new Error('duplicate key'), {
      code: '23505',
      detail: `Key (room_id, sender_id, client_msg_id)=(${room(2)}, ${sender}, ${room(3)}) already exists.`,
    });
    h.many[0]?.answer.reject(duplicate);
    await h.tick();
    expect(h.one.map((w) => w.batch.roomId)).toEqual([room(2)]);
    h.flush();
    // Before: every room of the statement was written alone (three writes for one resend).
    expect(h.many[1]?.batches.map((b) => b.roomId)).toEqual([room(1), room(3)]);
    h.many[1]?.answer.resolve(
      new Map([
        [room(1), rowsOf(batchOf(room(1), [1]))],
        [room(3), rowsOf(batchOf(room(3), [3]))],
      ]),
    );
    h.one[0]?.answer.reject(duplicate);
    await h.tick();
    expect(results[0]?.value).toHaveLength(1);
    expect(results[1]?.error).toBe(duplicate);
    expect(results[2]?.value).toHaveLength(1);
    expect(h.one).toHaveLength(1);
  });

  it('never puts two batches of one room into one statement, and bounds the messages per statement', async () => {
    const h = harness({ maxInFlight: 4, maxMessages: 3 });
    h.write(batchOf(room(1), [1], 1));
    h.write(batchOf(room(1), [1], 2)); // a newer activation of the same room
    h.write(batchOf(room(2), [1, 2]));
    h.write(batchOf(room(3), [1, 2, 3, 4])); // larger than the bound: alone
    h.flush();
    const statements = [
      ...h.many.map((s) => s.batches.map((b) => `${b.roomId.slice(-1)}e${b.epoch}`)),
      ...h.one.map((s) => [`${s.batch.roomId.slice(-1)}e${s.batch.epoch}`]),
    ];
    expect(statements).toEqual([['1e1', '2e1'], ['1e2'], ['3e1']]);
  });
});
