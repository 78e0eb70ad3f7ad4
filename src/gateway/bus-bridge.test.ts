import { describe, expect, it } from 'vitest';
import type { WalletPayload } from '../../protocol/src/frames.js';
import type { UserId } from '../../protocol/src/ids.js';
import type { UserMessage } from '../actors/user/user-actor.js';
import { createMemoryBus } from '../platform/bus/bus.js';
import { WALLET_CHANGED_TOPIC } from '../platform/bus/topics.js';
import { createLogger } from '../platform/logger.js';
import { subscribeBusBridge } from './bus-bridge.js';
import type { Connection } from './connection.js';
import type { Hub } from './hub.js';

const USER = '00000000-0000-4000-8000-000000000001' as UserId;
const wallet = (available: number): WalletPayload => ({ currency: 'USD', available, pending: 0 });

describe('wallet pushes', () => {
  it('never end on an older balance when two reads finish in the other order', async () => {
    const bus = createMemoryBus();
    const told: UserMessage[] = [];
    const reads: ((value: WalletPayload) => void)[] = [];
    // The hub part the bridge uses for wallets: whether the user has a socket here.
    const hub = { connectionsOf: () => new Set([{} as Connection]) } as unknown as Hub;
    await subscribeBusBridge({
      bus,
      hub,
      jobBoard: { watchersOf: () => [] },
      log: createLogger({ level: 'silent', pretty: false }),
      tellUser: (_userId, message) => told.push(message),
      onMembershipChanged: () => undefined,
      onContactRemoved: () => undefined,
      walletOf: () => new Promise<WalletPayload>((resolve) => reads.push(resolve)),
    });
    await bus.publish(WALLET_CHANGED_TOPIC, { userIds: [USER] });
    await bus.publish(WALLET_CHANGED_TOPIC, { userIds: [USER] });
    expect(reads).toHaveLength(2);
    // The second read (the newer balance) answers first; the first, older one, after it.
    reads[1]?.(wallet(60));
    await new Promise((resolve) => setImmediate(resolve));
    reads[0]?.(wallet(100));
    await new Promise((resolve) => setImmediate(resolve));
    expect(told).toEqual([{ type: 'wallet', wallet: wallet(60) }]);
  });
});
