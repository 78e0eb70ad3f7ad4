import { describe, expect, it } from 'vitest';
import { createCodec } from '../../protocol/src/codec.js';
import { CloseCode } from '../../protocol/src/codes.js';
import type { UserId } from '../../protocol/src/ids.js';
import { Encoding } from '../../protocol/src/version.js';
import { createManualTimers } from '../platform/timers.js';
import { Connection } from './connection.js';
import { testConnectionEnvironment, testPrincipal } from './connection-testing.js';
import { watchLoopStalls } from './loop-stalls.js';
import type { SocketTransport } from './transport.js';

describe('loop stalls', () => {
  it('notes a tick that ran late, for a grace after it, and nothing for ticks on time', () => {
    const timers = createManualTimers(0);
    let clock = 0;
    const stalls = watchLoopStalls(timers, () => clock);
    for (let i = 0; i < 10; i++) {
      clock += 100;
      timers.advance(100);
    }
    expect(stalls.recentlyStalled()).toBe(false);
    // The loop is held for 3 s: the next tick runs 3 s late.
    clock += 3_000;
    timers.advance(100);
    expect(stalls.recentlyStalled()).toBe(true);
    clock += 1_900;
    expect(stalls.recentlyStalled()).toBe(true);
    clock += 200;
    expect(stalls.recentlyStalled()).toBe(false);
    stalls.stop();
  });
});

describe('rate-limit strikes', () => {
  /** A connection whose frames all arrive at one instant (as after a stall): 150 pings. */
  const burst = (recentlyStalled: boolean) => {
    const codec = createCodec();
    let closedWith: number | undefined;
    const errors: string[] = [];
    const transport: SocketTransport = {
      kind: 'fastify-ws',
      send: (data) => {
        const decoded = codec.decodeServer(data, Encoding.JSON);
        if (decoded.ok && decoded.frame.t === 'error') errors.push(decoded.frame.d.code);
        return true;
      },
      bufferedAmount: () => 0,
      close: (code) => {
        closedWith ??= code;
      },
    };
    const environment = testConnectionEnvironment(codec, {
      recentlyStalled: () => recentlyStalled,
    });
    const userId = 'd0000000-0000-4000-8000-000000000001' as UserId;
    const principal = testPrincipal(userId);
    const connection = new Connection(userId, principal, Encoding.JSON, transport, environment);
    for (let id = 1; id <= 150; id++) {
      connection.onMessage(new TextEncoder().encode(JSON.stringify({ t: 'ping', id })), false);
    }
    return { closedWith, refused: errors.filter((code) => code === 'RATE_LIMITED').length };
  };

  it('closes a connection over its rate repeatedly 1008, but not for frames that queued behind a stall', () => {
    const abusive = burst(false);
    expect(abusive.refused).toBeGreaterThan(20);
    expect(abusive.closedWith).toBe(CloseCode.POLICY_VIOLATION);
    const stalled = burst(true);
    // Refused all the same: the node never runs more than the rate.
    expect(stalled.refused).toBe(50);
    expect(stalled.closedWith).toBeUndefined();
  });
});
