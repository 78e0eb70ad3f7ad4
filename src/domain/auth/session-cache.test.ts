import { describe, expect, it } from 'vitest';
import type { SessionId, UserId } from '../../../protocol/src/ids.js';
import { createSessionCache } from './session-cache.js';

interface Row {
  readonly userId: UserId;
  readonly revoked: boolean;
}

const sid = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}` as SessionId;
const alice = '00000000-0000-4000-8000-00000000a11c' as UserId;
const bob = '00000000-0000-4000-8000-000000000b0b' as UserId;

/** A "database" of session rows, counting reads, with a hand-moved monotonic clock. */
function harness(options: { maxAgeMs?: number; maxEntries?: number } = {}) {
  const rows = new Map<SessionId, Row>();
  const reads: SessionId[] = [];
  let time = 0;
  /** Loads held back until released, to interleave a revocation with a read in flight. */
  let hold: Promise<void> | undefined;
  const cache = createSessionCache<Row>({
    load: async (sessionId) => {
      reads.push(sessionId);
      const snapshot = rows.get(sessionId);
      if (hold !== undefined) await hold;
      return snapshot;
    },
    userOf: (row) => row.userId,
    maxAgeMs: options.maxAgeMs ?? 1_000,
    maxEntries: options.maxEntries ?? 100,
    now: () => time,
  });
  return {
    cache,
    rows,
    reads,
    advance: (ms: number) => {
      time += ms;
    },
    holdLoads: () => {
      let release: () => void = () => undefined;
      hold = new Promise<void>((resolve) => {
        release = resolve;
      });
      return () => {
        hold = undefined;
        release();
      };
    },
  };
}

describe('createSessionCache', () => {
  it('answers from memory for less than maxAgeMs, then reads the row again', async () => {
    const h = harness();
    h.rows.set(sid(1), { userId: alice, revoked: false });
    expect(await h.cache.get(sid(1))).toEqual({ userId: alice, revoked: false });
    h.advance(999);
    await h.cache.get(sid(1));
    expect(h.reads).toEqual([sid(1)]);
    h.advance(1);
    await h.cache.get(sid(1));
    expect(h.reads).toEqual([sid(1), sid(1)]);
  });

  it('sees a revocation whose announcement never came once maxAgeMs has passed (the hard bound)', async () => {
    const h = harness();
    h.rows.set(sid(1), { userId: alice, revoked: false });
    await h.cache.get(sid(1));
    h.rows.set(sid(1), { userId: alice, revoked: true }); // revoked in the database; no forget()
    h.advance(500);
    expect((await h.cache.get(sid(1)))?.revoked).toBe(false); // within the bound: stale is allowed
    h.advance(500);
    expect((await h.cache.get(sid(1)))?.revoked).toBe(true);
  });

  it('forgets one session at once when it is revoked', async () => {
    const h = harness();
    h.rows.set(sid(1), { userId: alice, revoked: false });
    h.rows.set(sid(2), { userId: alice, revoked: false });
    await Promise.all([h.cache.get(sid(1)), h.cache.get(sid(2))]);
    h.rows.set(sid(1), { userId: alice, revoked: true });
    h.cache.forget({ userId: alice, sessionId: sid(1) });
    expect((await h.cache.get(sid(1)))?.revoked).toBe(true);
    await h.cache.get(sid(2));
    expect(h.reads).toEqual([sid(1), sid(2), sid(1)]);
  });

  it("forgets all of a user's sessions, and nobody else's, when no session is named", async () => {
    const h = harness();
    h.rows.set(sid(1), { userId: alice, revoked: false });
    h.rows.set(sid(2), { userId: alice, revoked: false });
    h.rows.set(sid(3), { userId: bob, revoked: false });
    await Promise.all([1, 2, 3].map((n) => h.cache.get(sid(n))));
    h.cache.forget({ userId: alice });
    await Promise.all([1, 2, 3].map((n) => h.cache.get(sid(n))));
    expect(h.reads).toEqual([sid(1), sid(2), sid(3), sid(1), sid(2)]);
  });

  it('does not store a read that was in flight when a revocation arrived, nor let later callers join it', async () => {
    const h = harness();
    h.rows.set(sid(1), { userId: alice, revoked: false });
    const release = h.holdLoads();
    const early = h.cache.get(sid(1)); // reads the row before the revocation
    h.rows.set(sid(1), { userId: alice, revoked: true });
    h.cache.forget({ userId: alice, sessionId: sid(1) });
    const late = h.cache.get(sid(1)); // asked after the revocation was heard: a read of its own
    release();
    expect((await early)?.revoked).toBe(false);
    expect((await late)?.revoked).toBe(true);
    expect((await h.cache.get(sid(1)))?.revoked).toBe(true);
    expect(h.reads).toEqual([sid(1), sid(1)]);
  });

  it('clear drops every entry, trusted or not, and stores no read that was in flight', async () => {
    const h = harness();
    h.rows.set(sid(1), { userId: alice, revoked: false });
    h.rows.set(sid(2), { userId: bob, revoked: false });
    await h.cache.get(sid(1));
    const release = h.holdLoads();
    const inFlight = h.cache.get(sid(2));
    h.rows.set(sid(1), { userId: alice, revoked: true });
    h.rows.set(sid(2), { userId: bob, revoked: true });
    const epoch = h.cache.epoch();
    h.cache.clear();
    expect(h.cache.epoch()).not.toBe(epoch);
    release();
    expect((await inFlight)?.revoked).toBe(false);
    expect(h.cache.size()).toBe(0);
    expect((await h.cache.get(sid(1), true))?.revoked).toBe(true);
    expect((await h.cache.get(sid(2), true))?.revoked).toBe(true);
  });

  it('does not let a caller join a read sent maxAgeMs ago or more (its snapshot may predate a revocation)', async () => {
    const h = harness();
    h.rows.set(sid(1), { userId: alice, revoked: false });
    const releaseSlow = h.holdLoads();
    const slow = h.cache.get(sid(1)); // the database answers this one late
    h.advance(1_000);
    h.rows.set(sid(1), { userId: alice, revoked: true }); // revoked; the announcement is lost
    const releaseLate = h.holdLoads();
    const late = h.cache.get(sid(1));
    releaseSlow();
    releaseLate();
    expect((await slow)?.revoked).toBe(false);
    expect((await late)?.revoked).toBe(true);
    expect(h.reads).toEqual([sid(1), sid(1)]);
    expect((await h.cache.get(sid(1)))?.revoked).toBe(true);
  });

  it('keeps the entry read later when an earlier read answers after it (also for prefill)', async () => {
    const h = harness();
    h.rows.set(sid(1), { userId: alice, revoked: false });
    const releaseSlow = h.holdLoads();
    const slow = h.cache.get(sid(1));
    h.advance(1_000);
    h.rows.set(sid(1), { userId: alice, revoked: true });
    h.holdLoads()(); // later reads answer at once; the slow one stays held
    expect((await h.cache.get(sid(1)))?.revoked).toBe(true);
    releaseSlow();
    expect((await slow)?.revoked).toBe(false);
    expect((await h.cache.get(sid(1), true))?.revoked).toBe(true);
    h.cache.prefill([[sid(1), { userId: alice, revoked: false }]], { readAt: 500, epoch: h.cache.epoch() });
    expect((await h.cache.get(sid(1), true))?.revoked).toBe(true);
  });

  it('shares one read among callers of the same session while it is in flight', async () => {
    const h = harness();
    h.rows.set(sid(1), { userId: alice, revoked: false });
    const release = h.holdLoads();
    const answers = Promise.all([h.cache.get(sid(1)), h.cache.get(sid(1))]);
    release();
    expect(await answers).toHaveLength(2);
    expect(h.reads).toEqual([sid(1)]);
  });

  it('keeps no entry for a missing session, and none after a failed read', async () => {
    const failing = createSessionCache<Row>({
      load: async () => {
        throw new Error('database down');
      },
      userOf: (row) => row.userId,
      maxAgeMs: 1_000,
      maxEntries: 10,
      now: () => 0,
    });
    await expect(failing.get(sid(1))).rejects.toThrow('database down');
    expect(failing.size()).toBe(0);
    const h = harness();
    expect(await h.cache.get(sid(9))).toBeUndefined();
    expect(await h.cache.get(sid(9))).toBeUndefined();
    expect(h.reads).toEqual([sid(9), sid(9)]);
    expect(h.cache.size()).toBe(0);
  });

  it('holds at most maxEntries, dropping the least recently used first', async () => {
    const h = harness({ maxEntries: 3 });
    for (let n = 1; n <= 5; n++) h.rows.set(sid(n), { userId: alice, revoked: false });
    for (let n = 1; n <= 3; n++) await h.cache.get(sid(n));
    await h.cache.get(sid(1)); // used again: now the most recent
    await h.cache.get(sid(4));
    expect(h.cache.size()).toBe(3);
    await h.cache.get(sid(1));
    await h.cache.get(sid(2)); // the least recently used went first: read again
    expect(h.reads).toEqual([sid(1), sid(2), sid(3), sid(4), sid(2)]);
  });

  it('answers a trusted get from an entry of any age, an untrusted one from entries under maxAgeMs', async () => {
    const h = harness();
    h.rows.set(sid(1), { userId: alice, revoked: false });
    await h.cache.get(sid(1));
    h.advance(60_000);
    await h.cache.get(sid(1), true);
    expect(h.reads).toEqual([sid(1)]);
    await h.cache.get(sid(1));
    expect(h.reads).toEqual([sid(1), sid(1)]);
    // A forget ends a trusted entry too.
    h.cache.forget({ userId: alice });
    await h.cache.get(sid(1), true);
    expect(h.reads).toEqual([sid(1), sid(1), sid(1)]);
  });

  it('stores prefilled rows, unless a forget came after their query was sent', async () => {
    const h = harness();
    const sent = { readAt: 0, epoch: h.cache.epoch() };
    h.cache.prefill([[sid(1), { userId: alice, revoked: false }]], sent);
    expect(await h.cache.get(sid(1), true)).toEqual({ userId: alice, revoked: false });
    expect(h.reads).toEqual([]);

    const before = { readAt: 0, epoch: h.cache.epoch() };
    h.cache.forget({ userId: bob, sessionId: sid(2) }); // heard on the bus while the poll was out
    h.rows.set(sid(2), { userId: bob, revoked: true });
    h.cache.prefill([[sid(2), { userId: bob, revoked: false }]], before);
    expect((await h.cache.get(sid(2), true))?.revoked).toBe(true);
    expect(h.reads).toEqual([sid(2)]);
  });

  it('with maxAgeMs 0 reads every time', async () => {
    const h = harness({ maxAgeMs: 0 });
    h.rows.set(sid(1), { userId: alice, revoked: false });
    await h.cache.get(sid(1));
    await h.cache.get(sid(1));
    expect(h.reads).toEqual([sid(1), sid(1)]);
  });

  it('peek answers what get would answer from memory, by the same rules, and never reads', async () => {
    const h = harness();
    h.rows.set(sid(1), { userId: alice, revoked: false });
    expect(h.cache.peek(sid(1))).toBeUndefined(); // not cached: get would read
    expect(h.reads).toEqual([]);
    await h.cache.get(sid(1));
    expect(h.cache.peek(sid(1))).toEqual({ userId: alice, revoked: false });
    h.advance(999);
    expect(h.cache.peek(sid(1))).toBeDefined();
    h.advance(1); // maxAgeMs old: only a trusted caller may still use it
    expect(h.cache.peek(sid(1), true)).toBeDefined();
    expect(h.cache.peek(sid(1))).toBeUndefined();
    // The untrusted peek dropped the stale entry, as get does: nobody gets it any more.
    expect(h.cache.peek(sid(1), true)).toBeUndefined();
    expect(h.reads).toEqual([sid(1)]);

    await h.cache.get(sid(1));
    h.cache.forget({ userId: alice, sessionId: sid(1) });
    expect(h.cache.peek(sid(1), true)).toBeUndefined();
    expect(h.reads).toEqual([sid(1), sid(1)]);
  });
});
