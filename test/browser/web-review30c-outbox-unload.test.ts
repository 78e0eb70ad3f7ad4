/**
 * web/src/outbox.ts in Node (review 30c): the `beforeunload` listener an outbox adds to the page is
 * removed when its connection closes (sign-out). Before, every sign-in of a page left one listener
 * behind for good, and with it the old outbox, its connection and its unsent text. The page is a
 * stand-in holding its listeners (the outbox reads `addEventListener` off globalThis).
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { GigwireClient } from '../../protocol/src/client/index.js';
import { Outbox, type OutboxStorage } from '../../web/src/outbox.js';

const USER = '0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b';
const ROOM = '0190a1b2-c3d4-7e5f-8a9b-000000000001';

type Unload = (event: { preventDefault(): void }) => void;

/** The page's beforeunload listeners, and whether leaving it would prompt. */
function fakePage() {
  const listeners = new Set<Unload>();
  vi.stubGlobal('addEventListener', (type: string, listener: Unload) => {
    if (type === 'beforeunload') listeners.add(listener);
  });
  vi.stubGlobal('removeEventListener', (type: string, listener: Unload) => {
    if (type === 'beforeunload') listeners.delete(listener);
  });
  return {
    listeners,
    prompts() {
      let asked = false;
      for (const listener of listeners)
        listener({
          preventDefault() {
            asked = true;
          },
        });
      return asked;
    },
  };
}

/** The socket client's calls the outbox makes; a send never gets its answer (offline). */
function fakeLive(state: GigwireClient['state'] = 'open') {
  const closed: ((payload: unknown) => void)[] = [];
  const live = {
    state,
    on(event: string, handler: (payload: unknown) => void) {
      if (event === 'closed') closed.push(handler);
      return () => undefined;
    },
    sendMessage: () => new Promise<never>(() => undefined),
    close() {
      live.state = 'closed';
      for (const handler of closed) handler({ code: 1000, reason: '', byClient: true });
    },
  };
  return { live, client: live as unknown as GigwireClient };
}

const noStorage = undefined as OutboxStorage | undefined;

afterEach(() => {
  vi.unstubAllGlobals();
});

describe("an outbox's beforeunload listener (review 30c)", () => {
  it('is removed when its connection closes: sign-in, sign-out, sign-in again leaves one', () => {
    const page = fakePage();
    const first = fakeLive();
    const firstOutbox = new Outbox(first.client, USER, noStorage);
    firstOutbox.send(ROOM, 'written before signing out');
    expect(page.listeners.size).toBe(1);
    expect(page.prompts()).toBe(true);

    first.live.close(); // signed out
    expect(page.listeners.size).toBe(0);
    expect(page.prompts()).toBe(false);

    const second = fakeLive();
    const secondOutbox = new Outbox(second.client, USER, noStorage);
    expect(page.listeners.size).toBe(1);
    expect(page.prompts()).toBe(false);
    secondOutbox.send(ROOM, 'written after signing in again');
    expect(page.prompts()).toBe(true);
    second.live.close();
    expect(page.listeners.size).toBe(0);
  });

  it('is not added for a connection already closed', () => {
    const page = fakePage();
    const { client } = fakeLive('closed');
    new Outbox(client, USER, noStorage);
    expect(page.listeners.size).toBe(0);
  });
});
