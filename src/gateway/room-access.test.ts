import { describe, expect, it } from 'vitest';
import { RoomId, UserId } from '../../protocol/src/ids.js';
import { createRoomAccess } from './room-access.js';

const room = RoomId.parse('7f0c2b8e-3c1a-4d2e-9f1b-2a3c4d5e6f70');
const user = UserId.parse('1b2c3d4e-5f60-4a1b-8c2d-3e4f5a6b7c8d');

describe('createRoomAccess', () => {
  const counting = (member: () => boolean) => {
    let lookups = 0;
    let now = 0;
    const access = createRoomAccess({
      isMember: async () => {
        lookups += 1;
        return member();
      },
      now: () => now,
      ttlMs: 1_000,
    });
    return {
      access,
      lookups: () => lookups,
      advance: (ms: number) => {
        now += ms;
      },
    };
  };

  it('reuses a "member" answer until it expires or the room changes', async () => {
    const t = counting(() => true);
    expect(await t.access.mayUse(user, room)).toBe(true);
    expect(await t.access.mayUse(user, room)).toBe(true);
    expect(t.lookups()).toBe(1);
    t.advance(1_001);
    await t.access.mayUse(user, room);
    expect(t.lookups()).toBe(2);
    t.access.forget(room);
    await t.access.mayUse(user, room);
    expect(t.lookups()).toBe(3);
  });

  it('never caches "not a member": a user added meanwhile gets in at once', async () => {
    let member = false;
    const t = counting(() => member);
    expect(await t.access.mayUse(user, room)).toBe(false);
    member = true;
    expect(await t.access.mayUse(user, room)).toBe(true);
    expect(t.lookups()).toBe(2);
  });
});
