/**
 * The revocation feed's rules with an injected monotonic clock and a scripted database read (the
 * SQL side, xmin pages included, is covered by test/integration/revocation-feed.int.test.ts).
 */
import { describe, expect, it } from 'vitest';
import type { SessionId, UserId } from '../../../protocol/src/ids.js';
import type { AuthRevocation, AuthRevocationPage } from '../../db/repositories/sessions.repo.js';
import { createRevocationFeed, type RevocationFeedOptions } from './revocation-feed.js';

const user = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}` as UserId;
const session = (n: number) => `10000000-0000-4000-8000-${String(n).padStart(12, '0')}` as SessionId;

const WINDOW_MS = 60_000;

function setup(overrides: Partial<RevocationFeedOptions> = {}) {
  let clock = 1_000;
  /** The database clock, ms since epoch; advanced together with the monotonic clock. */
  let dbNow = 1_700_000_000_000;
  let pending: AuthRevocation[] = [];
  let failNext: Error | undefined;
  const reads: ({ snapshot: string } | { withinMs: number })[] = [];
  let xmin = 100;
  const feed = createRevocationFeed({
    read: async (since) => {
      reads.push(since);
      if (failNext !== undefined) {
        const error = failNext;
        failNext = undefined;
        throw error;
      }
      const page: AuthRevocationPage = {
        rows: pending,
        sessions: [],
        snapshot: String(xmin),
        dbNowMs: dbNow,
      };
      pending = [];
      xmin += 1;
      return page;
    },
    windowMs: WINDOW_MS,
    maxStalenessMs: 1_000,
    pollMs: 250,
    now: () => clock,
    ...overrides,
  });
  return {
    feed,
    reads,
    advance: (ms: number) => {
      clock += ms;
      dbNow += ms;
    },
    dbNow: () => dbNow,
    write: (row: { userId: UserId; sessionId: SessionId | null; atMs?: number }) => {
      pending.push({ userId: row.userId, sessionId: row.sessionId, atMs: row.atMs ?? dbNow });
    },
    failNextRead: (error: Error) => {
      failNext = error;
    },
  };
}

describe('revocation feed', () => {
  it('is stale until its first poll, and never clears a session while stale', async () => {
    const { feed } = setup();
    expect(feed.check(user(1), session(1))).toBe('stale');
    await feed.poll();
    expect(feed.check(user(1), session(1))).toBe('clear');
  });

  it('loads the window first, then reads what the previous snapshot could not see', async () => {
    const { feed, reads } = setup();
    await feed.poll();
    await feed.poll();
    await feed.poll();
    expect(reads).toEqual([{ withinMs: WINDOW_MS }, { snapshot: '100' }, { snapshot: '101' }]);
  });

  it('refuses a polled revoked session, and checks every session of a changed user', async () => {
    const { feed, write } = setup();
    await feed.poll();
    write({ userId: user(1), sessionId: session(1) });
    write({ userId: user(2), sessionId: null });
    await feed.poll();
    expect(feed.check(user(1), session(1))).toBe('revoked');
    expect(feed.check(user(1), session(9))).toBe('clear');
    expect(feed.check(user(2), session(2))).toBe('check');
    expect(feed.size()).toEqual({ sessions: 1, users: 1 });
  });

  it('turns stale when the last applied poll was sent 1 s ago, whatever was answered since', async () => {
    const { feed, advance, failNextRead } = setup();
    await feed.poll();
    advance(999);
    expect(feed.check(user(1), session(1))).toBe('clear');
    advance(1);
    expect(feed.check(user(1), session(1))).toBe('stale');
    failNextRead(new Error('database down'));
    await expect(feed.poll()).rejects.toThrow('database down');
    expect(feed.check(user(1), session(1))).toBe('stale');
    await feed.poll();
    expect(feed.check(user(1), session(1))).toBe('clear');
  });

  it('measures freshness from when a poll was sent, not when it answered', async () => {
    let clock = 0;
    let answer: (() => void) | undefined;
    const feed = createRevocationFeed({
      read: () =>
        new Promise<AuthRevocationPage>((resolve) => {
          answer = () => resolve({ rows: [], sessions: [], snapshot: '1', dbNowMs: 0 });
        }),
      windowMs: WINDOW_MS,
      maxStalenessMs: 1_000,
      pollMs: 250,
      now: () => clock,
    });
    const polled = feed.poll();
    for (let i = 0; i < 10 && answer === undefined; i++) await Promise.resolve();
    clock = 900; // the answer took 900 ms
    expect(answer).toBeDefined();
    answer?.();
    await polled;
    clock = 1_000;
    expect(feed.check(user(1), session(1))).toBe('stale');
  });

  it('keeps a revoked session refused while stale (known revocations are never forgotten early)', async () => {
    const { feed, write, advance } = setup();
    await feed.poll();
    write({ userId: user(1), sessionId: session(1) });
    await feed.poll();
    advance(5_000);
    expect(feed.check(user(1), session(1))).toBe('revoked');
    expect(feed.check(user(1), session(2))).toBe('stale');
  });

  it('applies bus announcements at once, before any poll', async () => {
    const { feed } = setup();
    feed.add({ userId: user(1), sessionId: session(1) });
    feed.add({ userId: user(2) });
    expect(feed.check(user(1), session(1))).toBe('revoked');
    await feed.poll();
    expect(feed.check(user(1), session(1))).toBe('revoked');
    expect(feed.check(user(2), session(5))).toBe('check');
  });

  it('drops entries older than the window on the database clock, not before', async () => {
    const { feed, write, advance, dbNow } = setup();
    await feed.poll();
    write({ userId: user(1), sessionId: session(1) });
    write({ userId: user(2), sessionId: null });
    // Written long ago but committed only now (a slow transaction): kept for what is left of the window.
    write({ userId: user(3), sessionId: session(3), atMs: dbNow() - WINDOW_MS + 500 });
    await feed.poll();
    advance(1_000);
    await feed.poll();
    expect(feed.check(user(3), session(3))).toBe('clear');
    expect(feed.check(user(1), session(1))).toBe('revoked');
    advance(WINDOW_MS - 1_000);
    await feed.poll();
    expect(feed.check(user(1), session(1))).toBe('revoked');
    advance(1);
    await feed.poll();
    expect(feed.check(user(1), session(1))).toBe('clear');
    expect(feed.check(user(2), session(2))).toBe('clear');
    expect(feed.size()).toEqual({ sessions: 0, users: 0 });
  });

  it('keeps the later time when an entry is written twice', async () => {
    const { feed, write, advance, dbNow } = setup();
    await feed.poll();
    write({ userId: user(1), sessionId: null, atMs: dbNow() - WINDOW_MS + 10 });
    write({ userId: user(1), sessionId: null });
    await feed.poll();
    advance(20);
    await feed.poll();
    expect(feed.check(user(1), session(1))).toBe('check');
  });

  it('runs one poll at a time: a poll asked for during another starts after it', async () => {
    let inFlight = 0;
    let most = 0;
    const feed = createRevocationFeed({
      read: async () => {
        inFlight += 1;
        most = Math.max(most, inFlight);
        await new Promise((resolve) => setImmediate(resolve));
        inFlight -= 1;
        return { rows: [], sessions: [], snapshot: '1', dbNowMs: 0 };
      },
      windowMs: WINDOW_MS,
      maxStalenessMs: 1_000,
      pollMs: 250,
    });
    await Promise.all([feed.poll(), feed.poll(), feed.poll()]);
    expect(most).toBe(1);
  });

  it('reloads the whole window after a long gap, and says so (rows pruned meanwhile cannot be read from an old snapshot)', async () => {
    const full: boolean[] = [];
    const t = setup({ resyncAfterMs: 60_000, afterPoll: (_page, info) => full.push(info.full) });
    await t.feed.poll();
    t.advance(59_000);
    await t.feed.poll();
    expect(t.reads.at(-1)).toEqual({ snapshot: '100' });
    // The loop stalled (or every poll failed) for longer than resyncAfterMs.
    t.failNextRead(new Error('down'));
    await expect(t.feed.poll()).rejects.toThrow('down');
    t.advance(60_000);
    await t.feed.poll();
    expect(t.reads.at(-1)).toEqual({ withinMs: WINDOW_MS });
    expect(full).toEqual([true, false, true]);
    t.advance(250);
    await t.feed.poll();
    expect(t.reads.at(-1)).toEqual({ snapshot: '102' });
    expect(full).toEqual([true, false, true, false]);
  });

  it('refuses a staleness bound above 1 s', () => {
    expect(() => setup({ maxStalenessMs: 1_001 })).toThrow('at most 1 000');
  });

  it('reports a run of failures once and its end once', async () => {
    const errors: unknown[] = [];
    let recovered = 0;
    let fail = true;
    const feed = createRevocationFeed({
      read: async () => {
        if (fail) throw new Error('down');
        return { rows: [], sessions: [], snapshot: '1', dbNowMs: 0 };
      },
      windowMs: WINDOW_MS,
      maxStalenessMs: 1_000,
      pollMs: 1,
      onError: (error) => errors.push(error),
      onRecovered: () => {
        recovered += 1;
      },
    });
    await feed.start();
    expect(feed.isFresh()).toBe(false);
    await new Promise((resolve) => setTimeout(resolve, 20));
    fail = false;
    for (let i = 0; i < 100 && !feed.isFresh(); i++) await new Promise((resolve) => setTimeout(resolve, 5));
    feed.stop();
    expect(errors).toHaveLength(1);
    expect(recovered).toBe(1);
    expect(feed.isFresh()).toBe(true);
  });
});
