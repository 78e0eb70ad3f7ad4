/**
 * Review 31: a `room.*` request for a room its sender is not a member of cost the node a database
 * lookup each ("not a member" is never cached, so a user just added can use the room at once), and
 * nothing bounded them but each socket's frame rate: 50 a second on each of a user's 20 sockets,
 * 1 000 lookups a second from one account naming random room ids, each answered FORBIDDEN without
 * ever counting toward a close. Refusals now take from a budget per user on the node; once it is
 * spent, a request that would need a lookup is answered RATE_LIMITED without one.
 */
import { describe, expect, it } from 'vitest';
import { RoomId, UserId } from '../../protocol/src/ids.js';
import { isAppError } from '../platform/errors.js';
import { createRoomAccess } from './room-access.js';

const mine = RoomId.parse('7f0c2b8e-3c1a-4d2e-9f1b-2a3c4d5e6f71');
const attacker = UserId.parse('1b2c3d4e-5f60-4a1b-8c2d-3e4f5a6b7c31');
const neighbour = UserId.parse('1b2c3d4e-5f60-4a1b-8c2d-3e4f5a6b7c32');
const foreignRoom = (i: number) => RoomId.parse(`7f0c2b8e-3c1a-4d2e-9f1b-${String(i).padStart(12, '0')}`);

async function outcome(work: () => Promise<boolean>): Promise<boolean | string> {
  try {
    return await work();
  } catch (error) {
    return isAppError(error) ? `${error.code}:${String(error.details?.retryAfterMs)}` : 'other';
  }
}

describe('room access: refusals of non-members are budgeted per user (review 31)', () => {
  it('stops looking up rooms for a user whose refusals spent the budget, and only for them', async () => {
    let lookups = 0;
    let now = 0;
    const access = createRoomAccess({
      isMember: async (_userId, roomId) => {
        lookups += 1;
        return roomId === mine;
      },
      now: () => now,
      refusalBurst: 3,
      refusalsPerSecond: 2,
    });
    // A member's room is looked up (and cached) as before.
    expect(await access.mayUse(attacker, mine)).toBe(true);
    for (let i = 0; i < 3; i++) expect(await access.mayUse(attacker, foreignRoom(i))).toBe(false);
    expect(lookups).toBe(4);
    // Spent: refused without a lookup, with the wait until the budget holds one again.
    for (let i = 3; i < 50; i++)
      expect(await outcome(() => access.mayUse(attacker, foreignRoom(i)))).toBe('RATE_LIMITED:500');
    expect(lookups).toBe(4);
    // The cached answer of a room of theirs still passes; another user has a budget of their own.
    expect(await access.mayUse(attacker, mine)).toBe(true);
    expect(await access.mayUse(neighbour, foreignRoom(1))).toBe(false);
    expect(lookups).toBe(5);
    // Refilled: looked up again.
    now = 500;
    expect(await access.mayUse(attacker, foreignRoom(60))).toBe(false);
    expect(lookups).toBe(6);
  });

  it('bounds lookups in flight at once too, and gives a member their token back', async () => {
    let lookups = 0;
    const access = createRoomAccess({
      isMember: async (_userId, roomId) => {
        lookups += 1;
        await new Promise((resolve) => setImmediate(resolve));
        return roomId === mine;
      },
      now: () => 0,
      refusalBurst: 3,
      refusalsPerSecond: 1,
    });
    // All sent at once (frames of one event-loop turn): only the budget's worth are looked up.
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) => outcome(() => access.mayUse(attacker, foreignRoom(100 + i)))),
    );
    expect(lookups).toBe(3);
    expect(answers.filter((answer) => answer === false)).toHaveLength(3);
    expect(answers.filter((answer) => answer === 'RATE_LIMITED:1000')).toHaveLength(17);
    // A member's lookup takes nothing for good.
    const other = createRoomAccess({ isMember: async () => true, now: () => 0, refusalBurst: 1 });
    for (let i = 0; i < 5; i++) {
      other.forget(mine);
      expect(await other.mayUse(neighbour, mine)).toBe(true);
    }
  });
});
