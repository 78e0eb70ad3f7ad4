import { describe, expect, it } from 'vitest';
import { createLogger } from './logger.js';
import { createPlacement, type NodeLease, rendezvousOwner } from './placement.js';
import { createManualTimers } from './timers.js';

const log = createLogger({ level: 'silent', pretty: false, destination: { write: () => undefined } });
const rooms = Array.from({ length: 3_000 }, (_, i) => `room-${i}`);
const owners = (nodes: readonly string[]) =>
  new Map(rooms.map((room) => [room, rendezvousOwner(nodes, room)]));

describe('rendezvous placement', () => {
  it('spreads keys over the nodes and agrees whatever the order of the node list', () => {
    const byOwner = new Map<string, number>();
    for (const owner of owners(['g1', 'g2', 'g3']).values())
      byOwner.set(owner, (byOwner.get(owner) ?? 0) + 1);
    for (const node of ['g1', 'g2', 'g3']) expect(byOwner.get(node)).toBeGreaterThan(800);
    expect(owners(['g3', 'g1', 'g2'])).toEqual(owners(['g1', 'g2', 'g3']));
  });

  it('moves only the dead node’s keys when it leaves, and only keys to the new node when one joins', () => {
    const three = owners(['g1', 'g2', 'g3']);
    const two = owners(['g1', 'g2']);
    const four = owners(['g1', 'g2', 'g3', 'g4']);
    let moved = 0;
    for (const room of rooms) {
      if (three.get(room) !== 'g3') expect(two.get(room)).toBe(three.get(room));
      if (four.get(room) !== three.get(room)) {
        expect(four.get(room)).toBe('g4');
        moved++;
      }
    }
    expect(moved).toBeGreaterThan(500); // about a quarter
    expect(moved).toBeLessThan(1_000);
  });
});

describe('createPlacement', () => {
  const setup = () => {
    const timers = createManualTimers(10_000);
    let leases: NodeLease[] = [];
    let reads = 0;
    const placement = createPlacement({
      nodeId: 'g1',
      liveNodes: async () => {
        reads++;
        return leases;
      },
      refreshMs: 1_000,
      timers,
      log,
    });
    const changes: (readonly string[])[] = [];
    placement.onChange((nodes) => changes.push(nodes));
    return {
      placement,
      timers,
      changes,
      reads: () => reads,
      setLeases: (next: NodeLease[]) => {
        leases = next;
      },
    };
  };

  it('always counts itself, follows the registry and tells listeners of each change', async () => {
    const { placement, setLeases, changes } = setup();
    expect(placement.nodes()).toEqual(['g1']);
    expect(placement.isMine('any room')).toBe(true);
    setLeases([
      { nodeId: 'g2', expiresAt: 20_000 },
      { nodeId: 'g3', expiresAt: 20_000 },
    ]);
    await placement.refresh();
    expect(placement.nodes()).toEqual(['g1', 'g2', 'g3']);
    expect(placement.ownerOf('room-1')).toBe(rendezvousOwner(['g1', 'g2', 'g3'], 'room-1'));
    await placement.refresh(); // same view: no change reported
    expect(changes).toEqual([['g1', 'g2', 'g3']]);
  });

  it('leaves a suspected node out until its lease shows a renewal made after the suspicion', async () => {
    const { placement, setLeases } = setup();
    setLeases([{ nodeId: 'g2', expiresAt: 20_000 }]);
    await placement.refresh();
    placement.suspect('g2');
    expect(placement.nodes()).toEqual(['g1']);
    await placement.refresh(); // the dead node's lease has not moved
    expect(placement.nodes()).toEqual(['g1']);
    setLeases([{ nodeId: 'g2', expiresAt: 25_000 }]); // it was alive after all and renewed
    await placement.refresh();
    expect(placement.nodes()).toEqual(['g1', 'g2']);
    placement.suspect('g1'); // never itself
    expect(placement.nodes()).toEqual(['g1', 'g2']);
  });

  it('keeps the last view when the registry cannot be read, and refreshes on its timer', async () => {
    const timers = createManualTimers(0);
    let fail = false;
    let reads = 0;
    const placement = createPlacement({
      nodeId: 'g1',
      liveNodes: async () => {
        reads++;
        if (fail) throw new Error('redis down');
        return [{ nodeId: 'g2', expiresAt: 60_000 }];
      },
      refreshMs: 1_000,
      timers,
      log,
    });
    await placement.start();
    expect(placement.nodes()).toEqual(['g1', 'g2']);
    fail = true;
    timers.advance(1_000);
    await new Promise((resolve) => setImmediate(resolve));
    expect(reads).toBe(2);
    expect(placement.nodes()).toEqual(['g1', 'g2']);
    placement.stop();
    timers.advance(5_000);
    expect(reads).toBe(2);
  });

  it('owns nothing once it leaves (shutdown), even while its own lease is still listed', async () => {
    const { placement, setLeases, changes } = setup();
    setLeases([
      { nodeId: 'g1', expiresAt: 20_000 },
      { nodeId: 'g2', expiresAt: 20_000 },
    ]);
    await placement.refresh();
    placement.leave();
    expect(placement.nodes()).toEqual(['g2']);
    expect(rooms.some((room) => placement.isMine(room))).toBe(false);
    await placement.refresh();
    expect(placement.nodes()).toEqual(['g2']);
    expect(changes.at(-1)).toEqual(['g2']);
  });
});
