/**
 * The chat outbox of the web app (web/src/outbox.ts) kept across reloads, in Node (vitest does not
 * collect web/src): what is stored and read back, storage that is corrupt, refuses or is missing,
 * sign-out removing it, and restored messages sent with their own clientMsgId. Against a Map-backed
 * Web Storage and a stand-in for the SDK's socket client (only the calls the outbox makes); the
 * real thing in Chromium is web-review19-outbox.browser.test.ts.
 */
import { describe, expect, it } from 'vitest';
import type { GigwireClient } from '../../protocol/src/client/index.js';
import {
  forgetOutboxes,
  OUTBOX_KEY_PREFIX,
  Outbox,
  type OutboxStorage,
  type PendingMessage,
  parseStoredOutbox,
  readStoredOutbox,
  removeStoredOutboxes,
  serializeOutbox,
  signingIn,
  writeStoredOutbox,
} from '../../web/src/outbox.js';

const USER = '0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b';
const ROOM = '0190a1b2-c3d4-7e5f-8a9b-000000000001';

/** Web Storage over a Map; `full` makes every write throw as a full quota does. */
class MapStorage implements OutboxStorage {
  readonly items = new Map<string, string>();
  full = false;
  get length() {
    return this.items.size;
  }
  key(index: number) {
    return [...this.items.keys()][index] ?? null;
  }
  getItem(key: string) {
    return this.items.get(key) ?? null;
  }
  setItem(key: string, value: string) {
    if (this.full) throw new Error('QuotaExceededError');
    this.items.set(key, value);
  }
  removeItem(key: string) {
    this.items.delete(key);
  }
}

const message = (id: string, body: string, status: PendingMessage['status'] = 'queued'): PendingMessage => ({
  clientMsgId: id,
  roomId: ROOM,
  body,
  status,
});

/** The socket client's calls the outbox makes: sends are recorded and answered at once. */
function fakeLive(state: GigwireClient['state'] = 'open') {
  const sent: { roomId: string; body: string; clientMsgId: string | undefined }[] = [];
  const handlers = new Map<string, ((payload: unknown) => void)[]>();
  let seq = 0;
  const live = {
    state,
    on(event: string, handler: (payload: unknown) => void) {
      handlers.set(event, [...(handlers.get(event) ?? []), handler]);
      return () => undefined;
    },
    async sendMessage(roomId: string, body: string, options: { clientMsgId?: string }) {
      sent.push({ roomId, body, clientMsgId: options.clientMsgId });
      seq += 1;
      return { seq, sentAt: new Date().toISOString(), clientMsgId: options.clientMsgId ?? '' };
    },
    close() {
      live.state = 'closed';
      for (const handler of handlers.get('closed') ?? []) handler({ code: 1000, reason: '', byClient: true });
    },
  };
  return { live, client: live as unknown as GigwireClient, sent };
}

const until = async (check: () => boolean) => {
  for (let turn = 0; turn < 100 && !check(); turn += 1)
    await new Promise((resolve) => setTimeout(resolve, 0));
  expect(check()).toBe(true);
};

describe('the stored outbox format', () => {
  it('reads back what it stores; of a refusal only the sentence shown', () => {
    const entries: PendingMessage[] = [
      message('a1', 'first'),
      message('a2', 'second', 'unsent'),
      {
        ...message('a3', 'third', 'refused'),
        failure: { message: 'You are not a member.', fields: { x: 'y' } },
      },
    ];
    const raw = serializeOutbox(entries);
    expect(raw).not.toContain('fields');
    expect(parseStoredOutbox(raw)).toEqual([
      message('a1', 'first'),
      message('a2', 'second', 'unsent'),
      { ...message('a3', 'third', 'refused'), failure: { message: 'You are not a member.', fields: {} } },
    ]);
  });

  it('is not an outbox when it is not JSON, another version or shape', () => {
    for (const raw of ['{"v":1,"messages":[{"id":', 'null', '[]', '"x"', '{"v":2,"messages":[]}', '{"v":1}'])
      expect(parseStoredOutbox(raw)).toBeUndefined();
  });

  it('leaves out entries that are not outbox messages, and repeated ids', () => {
    const raw = JSON.stringify({
      v: 1,
      messages: [
        null,
        'junk',
        { id: 5, roomId: ROOM, body: 'x', status: 'queued' },
        { id: 'system.1', roomId: ROOM, body: 'x', status: 'queued' },
        { id: 'b1', roomId: ROOM, body: '   ', status: 'queued' },
        { id: 'b2', roomId: ROOM, body: 'x'.repeat(4_001), status: 'queued' },
        { id: 'b3', roomId: ROOM, body: 'x', status: 'sent' },
        { id: 'b4', body: 'x', status: 'queued' },
        { id: 'ok', roomId: ROOM, body: 'kept', status: 'queued' },
        { id: 'ok', roomId: ROOM, body: 'a copy', status: 'queued' },
        { id: 'r', roomId: ROOM, body: 'refused', status: 'refused' },
      ],
    });
    expect(parseStoredOutbox(raw)).toEqual([
      message('ok', 'kept'),
      { ...message('r', 'refused', 'refused'), failure: { message: 'refused', fields: {} } },
    ]);
  });
});

describe('the outbox in storage', () => {
  it('removes a stored value that is not an outbox, and reads nothing from storage that throws', () => {
    const storage = new MapStorage();
    storage.setItem(OUTBOX_KEY_PREFIX + USER, '{not json');
    expect(readStoredOutbox(storage, USER)).toEqual([]);
    expect(storage.items.size).toBe(0);
    const broken: OutboxStorage = {
      length: 0,
      key: () => null,
      getItem: () => {
        throw new Error('SecurityError');
      },
      setItem: () => undefined,
      removeItem: () => undefined,
    };
    expect(readStoredOutbox(broken, USER)).toEqual([]);
    expect(readStoredOutbox(undefined, USER)).toEqual([]);
  });

  it('says a refused write, and removes what was stored before', () => {
    const storage = new MapStorage();
    expect(writeStoredOutbox(storage, USER, [message('a1', 'first')])).toBe(true);
    storage.full = true;
    expect(writeStoredOutbox(storage, USER, [message('a1', 'first'), message('a2', 'second')])).toBe(false);
    expect(storage.items.size).toBe(0);
  });

  it('removes every stored outbox, and nothing else', () => {
    const storage = new MapStorage();
    storage.setItem(OUTBOX_KEY_PREFIX + USER, serializeOutbox([message('a1', 'first')]));
    storage.setItem(`${OUTBOX_KEY_PREFIX}someone-else`, serializeOutbox([message('a2', 'second')]));
    storage.setItem('gigwire.refreshToken', 't');
    removeStoredOutboxes(storage);
    expect([...storage.items.keys()]).toEqual(['gigwire.refreshToken']);
  });
});

describe('an outbox kept across a reload', () => {
  it("sends the same user's stored messages at once, with their clientMsgIds, then stores nothing", async () => {
    const storage = new MapStorage();
    storage.setItem(
      OUTBOX_KEY_PREFIX + USER,
      serializeOutbox([message('a1', 'first', 'unsent'), message('a2', 'second')]),
    );
    storage.setItem(`${OUTBOX_KEY_PREFIX}someone-else`, serializeOutbox([message('x1', 'not mine')]));
    const { client, sent } = fakeLive();
    const outbox = new Outbox(client, USER, storage);
    expect(outbox.pending(ROOM).map((entry) => entry.body)).toEqual(['first', 'second']);
    await until(() => outbox.idle);
    expect(sent).toEqual([
      { roomId: ROOM, body: 'first', clientMsgId: 'a1' },
      { roomId: ROOM, body: 'second', clientMsgId: 'a2' },
    ]);
    expect(storage.getItem(OUTBOX_KEY_PREFIX + USER)).toBeNull();
    expect(storage.getItem(`${OUTBOX_KEY_PREFIX}someone-else`)).not.toBeNull();
  });

  it('stores a message while it is not sent (offline)', () => {
    const storage = new MapStorage();
    const { client } = fakeLive('closed');
    const outbox = new Outbox(client, USER, storage);
    const { clientMsgId } = outbox.send(ROOM, 'offline');
    expect(readStoredOutbox(storage, USER)).toEqual([message(clientMsgId, 'offline')]);
  });

  it('goes on from memory when storage is full', () => {
    const storage = new MapStorage();
    storage.full = true;
    const { client } = fakeLive('closed');
    const outbox = new Outbox(client, USER, storage);
    outbox.send(ROOM, 'one');
    storage.full = false;
    outbox.send(ROOM, 'two');
    // Memory only since the first refusal: nothing half-true is stored later.
    expect(storage.items.size).toBe(0);
    expect(outbox.pending(ROOM).map((entry) => entry.body)).toEqual(['one', 'two']);
  });

  it('forgets the stored outbox at sign-out, and an open outbox writes no more', () => {
    const storage = new MapStorage();
    const { client, live } = fakeLive('connecting');
    const outbox = new Outbox(client, USER, storage);
    outbox.send(ROOM, 'before the sign-out');
    expect(storage.items.size).toBe(1);
    forgetOutboxes(storage);
    expect(storage.items.size).toBe(0);
    outbox.send(ROOM, 'while signing out');
    expect(storage.items.size).toBe(0);
    live.close();
  });
});

describe('an outbox at a password sign-in (review 19b)', () => {
  const OTHER = '0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c';

  it('removes every stored outbox that no session of this page left (planted, or another user’s)', () => {
    const storage = new MapStorage();
    signingIn(USER, storage);
    storage.setItem(OUTBOX_KEY_PREFIX + USER, serializeOutbox([message('p1', 'planted in my name')]));
    storage.setItem(OUTBOX_KEY_PREFIX + OTHER, serializeOutbox([message('o1', 'their draft')]));
    storage.setItem('gigwire.refreshToken', 't');
    signingIn(USER, storage);
    expect([...storage.items.keys()]).toEqual(['gigwire.refreshToken']);
    const { client, sent } = fakeLive();
    const outbox = new Outbox(client, USER, storage);
    expect(outbox.idle).toBe(true);
    expect(sent).toEqual([]);
  });

  /** A connection still connecting whose sends get no answer. */
  const connecting = () => {
    const link = fakeLive('connecting');
    link.live.sendMessage = () => new Promise(() => undefined);
    return link;
  };

  it("keeps what the same user's session left when it ended by itself here; not for another user, nor after a sign-out", async () => {
    const storage = new MapStorage();
    signingIn(USER, storage);
    const ended = connecting();
    new Outbox(ended.client, USER, storage).send(ROOM, 'left by the ended session');
    // The session ends by itself: its connection closes without a sign-out.
    ended.live.close();
    signingIn(USER, storage);
    const { client, sent } = fakeLive();
    const outbox = new Outbox(client, USER, storage);
    await until(() => outbox.idle);
    expect(sent.map((m) => m.body)).toEqual(['left by the ended session']);

    const again = connecting();
    new Outbox(again.client, USER, storage).send(ROOM, 'not for the next person');
    again.live.close();
    signingIn(OTHER, storage);
    expect(storage.items.size).toBe(0);

    const signedOut = connecting();
    new Outbox(signedOut.client, USER, storage).send(ROOM, 'signed out');
    forgetOutboxes(storage);
    signedOut.live.close();
    storage.setItem(OUTBOX_KEY_PREFIX + USER, serializeOutbox([message('p2', 'written after the sign-out')]));
    signingIn(USER, storage);
    expect(storage.items.size).toBe(0);
  });
});

describe('a refused message of a room no longer open (review 19c)', () => {
  it('holds up nothing, is listed for every room, and is discarded from storage too', async () => {
    const storage = new MapStorage();
    const gone = { ...message('r1', 'for a gone room', 'refused'), roomId: 'gone-room' };
    storage.setItem(OUTBOX_KEY_PREFIX + USER, serializeOutbox([gone]));
    const { client, sent } = fakeLive();
    const outbox = new Outbox(client, USER, storage);
    // What the room screen asks before sending in another room: nothing is waiting there.
    expect(outbox.idle).toBe(true);
    expect(outbox.refused().map((entry) => [entry.roomId, entry.body])).toEqual([
      ['gone-room', 'for a gone room'],
    ]);
    outbox.send(ROOM, 'another room');
    await until(() => sent.length === 1);
    expect(sent).toEqual([expect.objectContaining({ roomId: ROOM, body: 'another room' })]);
    outbox.discard('r1');
    expect(outbox.refused()).toEqual([]);
    expect(storage.getItem(OUTBOX_KEY_PREFIX + USER)).toBeNull();
  });
});
