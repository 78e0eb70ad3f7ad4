/**
 * web/src/outbox.ts in Node (review 32): a chat message refused RATE_LIMITED with a buggy
 * `retryAfterMs` beyond a timer's 2^31 − 1 ms was resent at once (the timer fired at once), and
 * refused again, in a loop while the socket stayed up. The wait is capped as the SDK caps it (60 s).
 */
import { describe, expect, it } from 'vitest';
import { GigwireError } from '../../protocol/src/client/errors.js';
import type { GigwireClient } from '../../protocol/src/client/index.js';
import { Outbox, type OutboxStorage } from '../../web/src/outbox.js';

const USER = '0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b';
const ROOM = '0190a1b2-c3d4-7e5f-8a9b-000000000001';

describe('the outbox and a huge retryAfterMs (review 32)', () => {
  it('waits (capped) instead of resending in a loop', async () => {
    let sends = 0;
    const closed: (() => void)[] = [];
    const live = {
      state: 'open',
      on(event: string, handler: () => void) {
        if (event === 'closed') closed.push(handler);
        return () => undefined;
      },
      async sendMessage() {
        sends += 1;
        throw new GigwireError('RATE_LIMITED', 'slow down', { details: { retryAfterMs: 2 ** 32 } });
      },
    };
    const storage: OutboxStorage = {
      length: 0,
      key: () => null,
      getItem: () => null,
      setItem: () => undefined,
      removeItem: () => undefined,
    };
    const outbox = new Outbox(live as unknown as GigwireClient, USER, storage);
    outbox.send(ROOM, 'hello');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(sends).toBe(1);
    // Ends the pause: the outbox stops with the session.
    live.state = 'closed';
    for (const handler of closed) handler();
  });
});
