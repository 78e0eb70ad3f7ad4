import { describe, expect, it } from 'vitest';
import { BoundedMailbox } from './mailbox.js';

describe('BoundedMailbox', () => {
  it('is first-in first-out across growth and wrap-around', () => {
    const mailbox = new BoundedMailbox<number, string>(10);
    const taken: number[] = [];
    let next = 0;
    // Interleave offers and takes so the head wraps while the ring grows from 4 to 8 to 10 slots.
    for (let round = 0; round < 50; round++) {
      for (let index = 0; index < (round % 4) + 1 && !mailbox.isFull; index++) mailbox.offer(next++);
      for (let index = 0; index < (round % 3) + 1 && !mailbox.isEmpty; index++) taken.push(mailbox.take());
    }
    while (!mailbox.isEmpty) taken.push(mailbox.take());
    expect(taken).toEqual(Array.from({ length: next }, (_, index) => index));
  });

  it('refuses messages beyond its capacity and never holds more', () => {
    const mailbox = new BoundedMailbox<string, never>(3);
    expect([mailbox.offer('a'), mailbox.offer('b'), mailbox.offer('c')]).toEqual([true, true, true]);
    expect(mailbox.offer('d')).toBe(false);
    expect(mailbox.size).toBe(3);
    expect(mailbox.isFull).toBe(true);
    expect([mailbox.take(), mailbox.take(), mailbox.take()]).toEqual(['a', 'b', 'c']);
  });

  it('keeps each attachment with its message, also when only some messages carry one', () => {
    const mailbox = new BoundedMailbox<string, { id: number }>(8);
    mailbox.offer('plain-1');
    mailbox.offer('request-1', { id: 1 });
    for (let index = 0; index < 5; index++) mailbox.offer(`plain-${index + 2}`);
    mailbox.offer('request-2', { id: 2 });
    const seen: [string, number | undefined][] = [];
    while (!mailbox.isEmpty) {
      const attachment = mailbox.peekAttachment();
      seen.push([mailbox.take(), attachment?.id]);
    }
    expect(seen.filter(([, id]) => id !== undefined)).toEqual([
      ['request-1', 1],
      ['request-2', 2],
    ]);
    expect(seen).toHaveLength(8);
  });

  it('clear() hands every message and attachment over, oldest first, and empties the mailbox', () => {
    const mailbox = new BoundedMailbox<string, number>(4);
    mailbox.offer('a', 1);
    mailbox.offer('b');
    const visited: [string, number | undefined][] = [];
    expect(mailbox.clear((message, attachment) => visited.push([message, attachment]))).toBe(2);
    expect(visited).toEqual([
      ['a', 1],
      ['b', undefined],
    ]);
    expect(mailbox.isEmpty).toBe(true);
    expect(() => mailbox.take()).toThrow(RangeError);
  });

  it('rejects a capacity that is not a whole number ≥ 1', () => {
    expect(() => new BoundedMailbox(0)).toThrow(RangeError);
    expect(() => new BoundedMailbox(1.5)).toThrow(RangeError);
  });
});
