/**
 * Review 30b: strikes are carried over to a user's next connection (StrikeCarry), as the rate
 * bucket is. A connection was closed 1007/1008 at its 21st refused frame within the strike window,
 * but a new one started with none: a user reconnecting in a loop got 21 refused frames (each up to
 * a few ms of decoding) per socket. Now a connection opened while the user's window is still used
 * up is closed after NEW_CONNECTION_MIN_STRIKES refused frames; once the window has ended it gets
 * the whole allowance again. Frames that are not refused never touch the carried state.
 */
import { describe, expect, it } from 'vitest';
import { createCodec } from '../../protocol/src/codec.js';
import { CloseCode } from '../../protocol/src/codes.js';
import type { UserId } from '../../protocol/src/ids.js';
import { Encoding } from '../../protocol/src/version.js';
import { Connection, createStrikeCarry, NEW_CONNECTION_MIN_STRIKES, type StrikeCarry } from './connection.js';
import { testConnectionEnvironment, testPrincipal } from './connection-testing.js';
import type { SocketTransport } from './transport.js';

const alice = 'd0000000-0000-4000-8000-00000000030b' as UserId;
const bob = 'd0000000-0000-4000-8000-00000000031b' as UserId;
const undecodable = new TextEncoder().encode('{not json');

function harness(wrap: (carry: StrikeCarry) => StrikeCarry = (carry) => carry) {
  const codec = createCodec();
  let clock = 1_000;
  const environment = testConnectionEnvironment(codec, { now: () => clock });
  const strikes = wrap(createStrikeCarry(environment.limits, () => clock));
  let opened = 0;
  const open = (userId: UserId = alice) => {
    const outcome = { closedWith: undefined as number | undefined, errors: 0, ok: 0 };
    const transport: SocketTransport = {
      kind: 'fastify-ws',
      send: (data) => {
        const decoded = codec.decodeServer(data, Encoding.JSON);
        if (decoded.ok && decoded.frame.t === 'error') outcome.errors += 1;
        if (decoded.ok && decoded.frame.t === 'ok') outcome.ok += 1;
        return true;
      },
      bufferedAmount: () => 0,
      // As a peer that never answers the close frame: the transport's close event does not come.
      close: (code) => {
        outcome.closedWith ??= code;
      },
    };
    opened += 1;
    const connection = new Connection(`c${opened}`, testPrincipal(userId), Encoding.JSON, transport, {
      ...environment,
      strikes,
    });
    /** Sends undecodable frames until the connection closes (at most `limit`); returns how many were answered. */
    const refusedUntilClosed = (limit = 100) => {
      for (let i = 0; i < limit && outcome.closedWith === undefined; i++) {
        connection.onMessage(undecodable, false);
        clock += 1;
      }
      return outcome.errors;
    };
    return { connection, outcome, refusedUntilClosed };
  };
  return { open, limits: environment.limits, advance: (ms: number) => (clock += ms) };
}

describe('strikes carried to the next connection (review 30b)', () => {
  it('closes a reconnect loop after a few refused frames per socket, and the whole allowance again once the window ended', () => {
    const { open, limits, advance } = harness();
    const first = open();
    expect(first.refusedUntilClosed()).toBe(limits.maxStrikes + 1);
    expect(first.outcome.closedWith).toBe(CloseCode.INVALID_PAYLOAD);

    for (let i = 0; i < 3; i++) {
      const again = open();
      expect(again.refusedUntilClosed()).toBe(NEW_CONNECTION_MIN_STRIKES);
      expect(again.outcome.closedWith).toBe(CloseCode.INVALID_PAYLOAD);
    }

    // Another user has strikes of their own.
    expect(open(bob).refusedUntilClosed()).toBe(limits.maxStrikes + 1);

    advance(limits.strikeWindowMs + 1);
    expect(open().refusedUntilClosed()).toBe(limits.maxStrikes + 1);
  });

  it('starts a new connection from the strikes the user took so far in the window', () => {
    const { open, limits } = harness();
    const first = open();
    for (let i = 0; i < 10; i++) first.connection.onMessage(undecodable, false);
    expect(first.outcome.closedWith).toBeUndefined();
    first.connection.onClose(1000);
    expect(open().refusedUntilClosed()).toBe(limits.maxStrikes + 1 - 10);
  });

  it('serves a well-behaved reconnect as before, and its frames never touch the carried strikes', async () => {
    let kept = 0;
    let taken = 0;
    const { open } = harness((carry) => ({
      take: (userId) => {
        taken += 1;
        return carry.take(userId);
      },
      keep: (userId, strikes, windowStart) => {
        kept += 1;
        carry.keep(userId, strikes, windowStart);
      },
    }));
    open().refusedUntilClosed();
    const keptByAbuse = kept;
    const calm = open();
    for (let id = 1; id <= 50; id++) {
      calm.connection.onMessage(new TextEncoder().encode(JSON.stringify({ t: 'ping', id })), false);
    }
    await new Promise((resolve) => setImmediate(resolve));
    expect(calm.outcome).toEqual({ closedWith: undefined, errors: 0, ok: 50 });
    expect(kept).toBe(keptByAbuse);
    // Once per connection, when it opens.
    expect(taken).toBe(2);
  });

  it('holds a bounded number of users, the least recently struck going first, and forgets ended windows', () => {
    let clock = 0;
    const carry = createStrikeCarry({ strikeWindowMs: 10_000 }, () => clock, 100);
    for (let i = 0; i < 100; i++) carry.keep(`u${i}`, 5, clock);
    // u0 struck again: now the most recent.
    carry.keep('u0', 6, clock);
    carry.keep('u100', 1, clock);
    expect(carry.take('u0')).toEqual({ strikes: 6, windowStart: 0 });
    expect(carry.take('u1')).toBeUndefined();
    expect(carry.take('u100')).toEqual({ strikes: 1, windowStart: 0 });
    // A socket with fewer strikes in the same window does not lower the user's count.
    carry.keep('u100', 0, clock);
    expect(carry.take('u100')?.strikes).toBe(1);
    clock = 10_001;
    expect(carry.take('u0')).toBeUndefined();
    // A new window replaces an ended one.
    carry.keep('u100', 1, clock);
    expect(carry.take('u100')).toEqual({ strikes: 1, windowStart: 10_001 });
  });
});
