/**
 * Review 16: a connection that starts from the bucket the user's closed connection left
 * (BucketCarry) is refused RATE_LIMITED beyond that bucket, but a client that keeps to the limits
 * `hello` announced (a full maxBurst, then the rate) is never closed 1008 for it; beyond the
 * announced limits it is, as before. And every new socket of the user starts from the carried
 * bucket, not only the first one opened.
 */
import { describe, expect, it } from 'vitest';
import { createCodec } from '../../protocol/src/codec.js';
import { CloseCode } from '../../protocol/src/codes.js';
import type { UserId } from '../../protocol/src/ids.js';
import { Encoding } from '../../protocol/src/version.js';
import { Connection, createBucketCarry, NEW_CONNECTION_MIN_TOKENS } from './connection.js';
import { testConnectionEnvironment, testPrincipal } from './connection-testing.js';
import type { SocketTransport } from './transport.js';

const userId = 'd0000000-0000-4000-8000-000000000016' as UserId;

function harness() {
  const codec = createCodec();
  let clock = 0;
  const environment = testConnectionEnvironment(codec, { now: () => clock });
  const buckets = createBucketCarry(environment.limits, () => clock);
  const open = () => {
    const outcome = { closedWith: undefined as number | undefined, ok: 0, limited: 0 };
    const transport: SocketTransport = {
      kind: 'fastify-ws',
      send: (data) => {
        const decoded = codec.decodeServer(data, Encoding.JSON);
        if (decoded.ok && decoded.frame.t === 'ok') outcome.ok += 1;
        if (decoded.ok && decoded.frame.t === 'error' && decoded.frame.d.code === 'RATE_LIMITED')
          outcome.limited += 1;
        return true;
      },
      bufferedAmount: () => 0,
      close: (code) => {
        outcome.closedWith ??= code;
      },
    };
    const connection = new Connection(`c${clock}`, testPrincipal(userId), Encoding.JSON, transport, {
      ...environment,
      buckets,
    });
    let id = 0;
    const pings = async (count: number) => {
      for (let i = 0; i < count; i++) {
        id += 1;
        connection.onMessage(new TextEncoder().encode(JSON.stringify({ t: 'ping', id })), false);
      }
      // Let the replies of the served ones go out.
      await new Promise((resolve) => setImmediate(resolve));
    };
    return { connection, outcome, pings };
  };
  return { open, limits: environment.limits, advance: (ms: number) => (clock += ms) };
}

describe('carried rate buckets (review 16)', () => {
  it('refuses beyond the carried bucket RATE_LIMITED, but closes 1008 only beyond the announced limits', async () => {
    const { open, limits, advance } = harness();
    const first = open();
    await first.pings(limits.maxBurst);
    expect(first.outcome.ok).toBe(limits.maxBurst);
    first.connection.onClose(1000);

    const second = open();
    // A whole announced burst at once: the carried (empty) bucket serves only the minimum.
    await second.pings(limits.maxBurst);
    expect(second.outcome.ok).toBe(NEW_CONNECTION_MIN_TOKENS);
    expect(second.outcome.limited).toBe(limits.maxBurst - NEW_CONNECTION_MIN_TOKENS);
    expect(second.outcome.closedWith).toBeUndefined();
    // Then at the announced rate: still never closed.
    for (let i = 0; i < 20; i++) {
      advance(1000 / limits.maxMessagesPerSecond);
      await second.pings(1);
    }
    expect(second.outcome.closedWith).toBeUndefined();
    // Beyond the announced limits, sustained: closed 1008 as before.
    await second.pings(limits.maxStrikes + 5);
    expect(second.outcome.closedWith).toBe(CloseCode.POLICY_VIOLATION);
  });

  it('starts each new socket of the user from the carried bucket while it has not refilled', async () => {
    const { open, limits } = harness();
    const first = open();
    await first.pings(limits.maxBurst);
    first.connection.onClose(1000);

    const [a, b] = [open(), open()];
    await a.pings(10);
    await b.pings(10);
    expect(a.outcome.ok).toBe(NEW_CONNECTION_MIN_TOKENS);
    expect(b.outcome.ok).toBe(NEW_CONNECTION_MIN_TOKENS);
  });
});
