import { describe, expect, it } from 'vitest';
import { decideAtSocketCap, LIVE_PROOF_MS, PROBE_GRACE_MS } from './socket-cap.js';

/** A connection as the cap sees it: heard at `heardAt`, pinged by `probe`, closed by `close`. */
function socket(name: string, heardAt: number) {
  const s = {
    name,
    isOpen: true,
    lastHeardAt: heardAt,
    lastProbedAt: undefined as number | undefined,
    pings: 0,
    probe(at: number) {
      s.lastProbedAt = at;
      s.pings += 1;
    },
    close() {
      s.isOpen = false;
    },
  };
  return s;
}

describe('socket cap (review 17)', () => {
  it('admits below the cap and does not count closing sockets', () => {
    const a = socket('a', 0);
    const b = socket('b', 0);
    b.isOpen = false;
    expect(decideAtSocketCap([a, b], 2, 10).kind).toBe('admit');
    expect(a.pings).toBe(0);
  });

  it('pings at the cap, then replaces the socket silent longest; a parallel arrival replaces the next or is refused', () => {
    const [a, b, c] = [socket('a', 100), socket('b', 50), socket('c', 200)];
    const all = [a, b, c];
    expect(decideAtSocketCap(all, 3, 1_000).kind).toBe('checking');
    expect(all.map((s) => s.pings)).toEqual([1, 1, 1]);
    // A retry within the grace neither pings again (the deadline would move) nor replaces.
    expect(decideAtSocketCap(all, 3, 1_000 + PROBE_GRACE_MS - 1).kind).toBe('checking');
    expect(all.map((s) => s.pings)).toEqual([1, 1, 1]);
    // `c` answered; `a` and `b` did not.
    c.lastHeardAt = 1_500;
    const at = 1_000 + PROBE_GRACE_MS;
    const first = decideAtSocketCap(all, 3, at);
    expect(first).toEqual({ kind: 'replace', victim: b });
    b.close();
    // The new socket is live (just opened); a second arrival at the same moment replaces `a`.
    const fresh = socket('fresh', at);
    const second = decideAtSocketCap([a, c, fresh, b], 3, at);
    expect(second).toEqual({ kind: 'replace', victim: a });
    a.close();
    const newer = socket('newer', at);
    // A third finds no silent socket: the two not yet asked are pinged and it is refused for now.
    expect(decideAtSocketCap([c, fresh, newer, a, b], 3, at).kind).toBe('checking');
    expect([c.pings, fresh.pings, newer.pings]).toEqual([1, 1, 1]);
  });

  it('replaces nothing right after the event loop was held (pongs may still be waiting to be handled)', () => {
    const [a, b] = [socket('a', 0), socket('b', 0)];
    expect(decideAtSocketCap([a, b], 2, 1_000).kind).toBe('checking');
    const later = 1_000 + PROBE_GRACE_MS;
    expect(decideAtSocketCap([a, b], 2, later, true).kind).toBe('checking');
    expect([a.isOpen, b.isOpen, a.pings, b.pings]).toEqual([true, true, 1, 1]);
    expect(decideAtSocketCap([a, b], 2, later, false)).toEqual({ kind: 'replace', victim: a });
  });

  it('refuses as full only while every socket answered a recent ping', () => {
    const [a, b] = [socket('a', 0), socket('b', 0)];
    expect(decideAtSocketCap([a, b], 2, 1_000).kind).toBe('checking');
    a.lastHeardAt = 1_010;
    b.lastHeardAt = 1_020;
    expect(decideAtSocketCap([a, b], 2, 1_100).kind).toBe('full');
    // The proof grows old: asked again, not refused 1008 on an answer from long ago.
    expect(decideAtSocketCap([a, b], 2, 1_000 + LIVE_PROOF_MS).kind).toBe('checking');
    expect([a.pings, b.pings]).toEqual([2, 2]);
  });
});
