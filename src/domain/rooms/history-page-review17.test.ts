import { describe, expect, it } from 'vitest';
import type { RoomMessage } from '../../../protocol/src/frames.js';
import { cutHistoryPage } from './history-page.js';

const message = (seq: number, body = 'x'): RoomMessage => ({
  roomId: '00000000-0000-4000-8000-000000000001' as RoomMessage['roomId'],
  seq,
  senderId: '00000000-0000-4000-8000-000000000002' as RoomMessage['senderId'],
  clientMsgId: `m${seq}`,
  body,
  sentAt: '2026-01-01T00:00:00.000Z',
});
const newestFirst = (count: number, body?: string) =>
  Array.from({ length: count }, (_, i) => message(count - i, body));
const bytes = (m: RoomMessage) => Buffer.byteLength(JSON.stringify(m));

describe('cutHistoryPage (review 17)', () => {
  it('an empty room: no messages, no next page', () => {
    expect(cutHistoryPage([], 50, 1000)).toEqual({ data: [], nextBeforeSeq: null });
  });

  it('limit + 1 rows: limit of them and the smallest seq as the next beforeSeq', () => {
    const page = cutHistoryPage(newestFirst(4), 3, 1_000_000);
    expect(page.data.map((m) => m.seq)).toEqual([4, 3, 2]);
    expect(page.nextBeforeSeq).toBe(2);
  });

  it('fewer rows than limit + 1: the last page', () => {
    expect(cutHistoryPage(newestFirst(3), 3, 1_000_000).nextBeforeSeq).toBeNull();
  });

  it('cuts at the byte budget, newest first, and never returns an empty page', () => {
    const rows = newestFirst(10, 'y'.repeat(1000));
    const one = bytes(rows[0] as RoomMessage);
    const page = cutHistoryPage(rows, 100, one * 3 + 10);
    expect(page.data.map((m) => m.seq)).toEqual([10, 9, 8]);
    expect(page.nextBeforeSeq).toBe(8);
    const tiny = cutHistoryPage(rows, 100, 1);
    expect(tiny.data.map((m) => m.seq)).toEqual([10]);
    expect(tiny.nextBeforeSeq).toBe(10);
  });

  it('a cut last page still says more is left', () => {
    const rows = newestFirst(3, 'y'.repeat(1000));
    const page = cutHistoryPage(rows, 3, bytes(rows[0] as RoomMessage) * 2);
    expect(page.data.map((m) => m.seq)).toEqual([3, 2]);
    expect(page.nextBeforeSeq).toBe(2);
  });
});
