import { describe, expect, it } from 'vitest';
import { type Sender, spreadOverRooms } from './scenario-fanout.js';

/** Members 0..9 of rooms r0..r3 publish (10 per room), dealt to 4 workers by index % 4, as the bench does. */
function dealt(workers: number): Sender[][] {
  const lists: Sender[][] = Array.from({ length: workers }, () => []);
  for (let index = 0; index < 4 * 100; index += 1) {
    if (index % 100 < 10) lists[index % workers]?.push({ index, roomId: `r${Math.floor(index / 100)}` });
  }
  return lists;
}

describe('spreadOverRooms', () => {
  it('keeps every sender once and never sends twice in a row to one room', () => {
    const lists = dealt(4);
    lists.forEach((list, w) => {
      const spread = spreadOverRooms(list, w, 4);
      expect(spread.map((s) => s.index).sort((a, b) => a - b)).toEqual(list.map((s) => s.index));
      // The round robin wraps around: the last and the first are consecutive too.
      for (let i = 0; i < spread.length; i += 1) {
        expect(spread[i]?.roomId).not.toBe(spread[(i + 1) % spread.length]?.roomId);
      }
    });
  });

  it('starts the workers in different rooms', () => {
    const firsts = dealt(4).map((list, w) => spreadOverRooms(list, w, 4)[0]?.roomId);
    expect(new Set(firsts).size).toBe(4);
  });

  it("keeps a single room's senders in order", () => {
    const one = [0, 1, 2].map((index) => ({ index, roomId: 'r0' }));
    expect(spreadOverRooms(one, 1, 2).map((s) => s.index)).toEqual([0, 1, 2]);
  });
});
