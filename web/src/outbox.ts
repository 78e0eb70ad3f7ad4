/**
 * Chat messages on their way to the server, for the signed-in session: a room left and opened again
 * finds its unsent messages still there, still going out, and so does a reload of the tab.
 *
 * Each message gets its `clientMsgId` once, when the user sends it; every attempt sends that same
 * id, so the server stores it once however often it is sent (a lost answer, a retry, a reconnect,
 * a reload). Messages go out one at a time, in the order written. An attempt is the SDK's
 * `sendMessage` with a single attempt: offline it waits for the connection until the SDK's request
 * timeout (10 s), then counts as not sent (said on screen, with Retry) rather than "Sending…" for
 * the minute and a half the SDK's own resends would take. A message not sent goes out by itself at
 * the next connect (and, while connected, after a backoff); RATE_LIMITED or UNAVAILABLE wait the
 * server's `retryAfterMs` (or a backoff). A refusal (not a member, an invalid body) is final: said,
 * with Retry and Discard, in its room and in the rooms list (where one for a room the user cannot
 * open any more, removed from it or the room gone, can still be discarded). A refused message holds
 * up nothing: the next ones, of any room, go out (and show) as if it were not there.
 *
 * Kept across reloads: every change writes the messages not stored yet (clientMsgId, room, body,
 * state; of a refusal only the sentence shown) to `sessionStorage` under `gigwire.outbox.<userId>`.
 * The outbox of the same user, made at the next start of the tab (app.tsx, at sign-in or restore),
 * reads them back and sends them at the first connect with their clientMsgIds: one whose answer
 * was lost before the reload is stored once (the server answers a known clientMsgId with the first
 * one's seq). Why sessionStorage and not localStorage: the outbox belongs to the session, and the
 * session is this tab's (the refresh token is in sessionStorage, session.ts). It survives a reload
 * and a discarded tab being restored, and goes with the tab, like the sign-in; localStorage would
 * keep a stranger's unsent text on a shared computer after the browser is closed, send messages
 * days later out of their context at some next sign-in, and be shared by every tab, each sending
 * and overwriting the others' list. Keyed by user id, an outbox is only ever read back (and sent)
 * by the user who wrote it. Signing out (and "sign out everywhere", a password change, a copied tab
 * dropping the copied session) removes every stored outbox of the tab (`forgetOutboxes`, called by
 * session.ts). Only a reload of the session that wrote it reads it back: a sign-in with a password
 * (`signingIn`) removes every stored outbox but the one the same user's session left when it ended
 * by itself (a refused refresh) in this same page; anything else there was not written by a session
 * of this page (another person's text, or a list put into storage while nobody was signed in, which
 * would be sent in the name of who signs in). Storage missing, refusing (private mode, quota) or
 * holding something that is not an outbox (hand-edited JSON): the chat works on from memory, as
 * before (unreadable entries are dropped; a failed write stops writing and removes what was
 * stored, so a stale list is never read back). Closing the tab still loses what has not gone out, so the browser asks before the
 * page is left while something is waiting (also on a reload, which keeps it: the prompt cannot tell
 * the two apart).
 */
import { retryAfterWait } from '../../protocol/src/client/backoff.js';
import { backoffDelay, type GigwireClient, isGigwireError } from '../../protocol/src/client/index.js';
import type { RoomMessage } from '../../protocol/src/frames.js';
import { type Failure, failureOf } from './outcome.js';

/**
 * `queued`: waiting its turn, or being sent (the screen says "Sending…" or "Waiting for
 * connection…" by the connection); `unsent`: an attempt got no answer, it goes out again by itself;
 * `refused`: the server said no.
 */
export type PendingStatus = 'queued' | 'unsent' | 'refused';

export interface PendingMessage {
  readonly clientMsgId: string;
  readonly roomId: string;
  readonly body: string;
  readonly status: PendingStatus;
  /** Why a `refused` message was not stored. */
  readonly failure?: Failure;
}

/** The sessionStorage keys of stored outboxes: `gigwire.outbox.<userId>`. */
export const OUTBOX_KEY_PREFIX = 'gigwire.outbox.';
const STORED_VERSION = 1;
const STATUSES: ReadonlySet<string> = new Set<PendingStatus>(['queued', 'unsent', 'refused']);
/** What the server accepts (PROTOCOL.md `room.send`); anything else in storage was not written here. */
const MAX_BODY = 4_000;
const MAX_ID = 64;

/**
 * The Web Storage calls used here (sessionStorage in the browser). Declared here rather than taken
 * from the DOM types: this module is unit-tested in Node (test/browser/web-review19-outbox.test.ts).
 */
export interface OutboxStorage {
  readonly length: number;
  key(index: number): string | null;
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/** The page's globals this module uses, when there is a page. */
const page = globalThis as {
  sessionStorage?: OutboxStorage;
  addEventListener?: (type: 'beforeunload', listener: BeforeUnload) => void;
  removeEventListener?: (type: 'beforeunload', listener: BeforeUnload) => void;
};
type BeforeUnload = (event: { preventDefault(): void }) => void;

/** This tab's sessionStorage, or undefined when the browser refuses it (a sandbox, storage disabled). */
export function tabStorage(): OutboxStorage | undefined {
  try {
    // Reading the property itself throws where storage is disabled.
    return page.sessionStorage;
  } catch {
    return undefined;
  }
}

/**
 * The messages stored for `userId`, in the order written: [] when there are none, or when storage
 * cannot be read; entries that are not an outbox message (hand-edited, another version) are left
 * out, and a value that is not an outbox at all is removed.
 */
export function readStoredOutbox(storage: OutboxStorage | undefined, userId: string): PendingMessage[] {
  if (storage === undefined) return [];
  const key = OUTBOX_KEY_PREFIX + userId;
  let raw: string | null;
  try {
    raw = storage.getItem(key);
  } catch {
    return [];
  }
  if (raw === null) return [];
  const messages = parseStoredOutbox(raw);
  if (messages === undefined) {
    try {
      storage.removeItem(key);
    } catch {
      // Nothing more to do: it is ignored.
    }
    return [];
  }
  return messages;
}

/** A stored outbox's messages; undefined when `raw` is not one at all. */
export function parseStoredOutbox(raw: string): PendingMessage[] | undefined {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const { v, messages } = value as { v?: unknown; messages?: unknown };
  if (v !== STORED_VERSION || !Array.isArray(messages)) return undefined;
  const seen = new Set<string>();
  const kept: PendingMessage[] = [];
  for (const item of messages as unknown[]) {
    const message = pendingOf(item);
    if (message === undefined || seen.has(message.clientMsgId)) continue;
    seen.add(message.clientMsgId);
    kept.push(message);
  }
  return kept;
}

function pendingOf(item: unknown): PendingMessage | undefined {
  if (typeof item !== 'object' || item === null) return undefined;
  const { id, roomId, body, status, refusal } = item as Record<string, unknown>;
  if (typeof id !== 'string' || id.length === 0 || id.length > MAX_ID || id.startsWith('system.'))
    return undefined;
  if (typeof roomId !== 'string' || roomId.length === 0 || roomId.length > MAX_ID) return undefined;
  if (typeof body !== 'string' || body.trim() === '' || body.length > MAX_BODY) return undefined;
  if (typeof status !== 'string' || !STATUSES.has(status)) return undefined;
  const base = { clientMsgId: id, roomId, body, status: status as PendingStatus };
  if (status !== 'refused') return base;
  const message = typeof refusal === 'string' && refusal.trim() !== '' ? refusal.slice(0, 500) : 'refused';
  return { ...base, failure: { message, fields: {} } };
}

/** The stored form of `entries` (of a refusal only the sentence shown). */
export function serializeOutbox(entries: readonly PendingMessage[]): string {
  return JSON.stringify({
    v: STORED_VERSION,
    messages: entries.map((entry) => ({
      id: entry.clientMsgId,
      roomId: entry.roomId,
      body: entry.body,
      status: entry.status,
      ...(entry.status === 'refused' && entry.failure !== undefined
        ? { refusal: entry.failure.message }
        : {}),
    })),
  });
}

/**
 * Stores `entries` for `userId` (none: the key is removed). False when storage refused: then what
 * was stored before is removed too (best effort), so an out-of-date list is not read back later.
 */
export function writeStoredOutbox(
  storage: OutboxStorage,
  userId: string,
  entries: readonly PendingMessage[],
): boolean {
  const key = OUTBOX_KEY_PREFIX + userId;
  try {
    if (entries.length === 0) storage.removeItem(key);
    else storage.setItem(key, serializeOutbox(entries));
    return true;
  } catch {
    try {
      storage.removeItem(key);
    } catch {
      // Storage is gone altogether: nothing was kept.
    }
    return false;
  }
}

/** Removes every stored outbox from `storage` (but the one of `exceptUserId`, when given). */
export function removeStoredOutboxes(storage: OutboxStorage | undefined, exceptUserId?: string): void {
  if (storage === undefined) return;
  const kept = exceptUserId === undefined ? undefined : OUTBOX_KEY_PREFIX + exceptUserId;
  try {
    const keys: string[] = [];
    for (let index = 0; index < storage.length; index += 1) {
      const key = storage.key(index);
      if (key?.startsWith(OUTBOX_KEY_PREFIX) && key !== kept) keys.push(key);
    }
    for (const key of keys) storage.removeItem(key);
  } catch {
    // Unreadable storage holds nothing this app can read back either.
  }
}

/** No answer, or "later": the same message is sent again. */
const RESEND = new Set(['TIMEOUT', 'DISCONNECTED', 'QUEUE_FULL', 'CONNECT_FAILED', 'TOKEN_UNAVAILABLE']);
/** The server asked to wait: sent again after its `retryAfterMs` (or a backoff) while connected. */
const WAIT = new Set(['RATE_LIMITED', 'UNAVAILABLE']);
const RESEND_BACKOFF = { initialDelayMs: 1_000, maxDelayMs: 30_000 };

type Listener = (sent: RoomMessage | undefined) => void;

export class Outbox {
  private entries: PendingMessage[];
  /** Where the entries are kept across reloads; undefined: memory only (none, refused, or signed out). */
  private storage: OutboxStorage | undefined;
  private readonly listeners = new Set<Listener>();
  private pumping = false;
  /** Resolvers of `send(…).attempted`, by clientMsgId, until the first attempt settles. */
  private readonly firstAttempts = new Map<string, () => void>();
  /** Ends the pump's current wait (a connect, a Retry). */
  private wake: (() => void) | undefined;
  /** Signed out: what is stored is being removed, and nothing of it is kept for a next sign-in. */
  private forgotten = false;
  /**
   * Closing the tab would lose what has not gone out yet (sessionStorage goes with it): the browser
   * asks first. Listened to while the connection is not closed.
   */
  private readonly beforeUnload: BeforeUnload = (event) => {
    if (this.live.state !== 'closed' && this.entries.some((entry) => entry.status !== 'refused'))
      event.preventDefault();
  };

  constructor(
    private readonly live: GigwireClient,
    private readonly senderId: string,
    storage: OutboxStorage | undefined = tabStorage(),
  ) {
    this.storage = storage;
    // What this user left unsent before a reload: sent again, same clientMsgIds, at the first connect.
    this.entries = readStoredOutbox(storage, senderId);
    live.on('connected', () => this.wake?.());
    live.on('closed', () => {
      // The session is over (signed out, or ended): what is stored stays as it is now, and after
      // a session that ended by itself it is kept for this user's next sign-in in this page.
      this.storage = undefined;
      if (!this.forgotten) endedHere.add(this.senderId);
      openOutboxes.delete(this);
      // The page keeps no reference to an outbox of a session that is over (a sign-out, then a
      // sign-in again in the same page, would otherwise leave one listener, and outbox, each).
      page.removeEventListener?.('beforeunload', this.beforeUnload);
      this.wake?.();
    });
    if (live.state !== 'closed') {
      openOutboxes.add(this);
      page.addEventListener?.('beforeunload', this.beforeUnload);
    }
    if (this.entries.length > 0) void this.pump();
  }

  /** Stops writing to storage (signed out: what is stored is being removed). */
  forgetStorage(): void {
    this.storage = undefined;
    this.forgotten = true;
  }

  /** The messages of `roomId` not stored yet, in the order written. */
  pending(roomId: string): PendingMessage[] {
    const key = roomId.toLowerCase();
    return this.entries.filter((entry) => entry.roomId.toLowerCase() === key);
  }

  /** Told of every change, and with the stored message when one went out. */
  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Whether nothing is waiting or being sent. A refused message waits for nothing (the pump goes
   * past it): one left in any room does not hold up, nor change how the room screen shows, the
   * messages written after it.
   */
  get idle(): boolean {
    return this.entries.every((entry) => entry.status === 'refused');
  }

  /** The refused messages of every room, in the order written (the rooms list offers Discard). */
  refused(): PendingMessage[] {
    return this.entries.filter((entry) => entry.status === 'refused');
  }

  /**
   * Queues a message; `attempted` settles when its first attempt has (stored, refused, or no
   * answer: then it waits here for the next).
   */
  send(roomId: string, body: string): { clientMsgId: string; attempted: Promise<void> } {
    const clientMsgId = newClientMsgId();
    const attempted = new Promise<void>((resolve) => this.firstAttempts.set(clientMsgId, resolve));
    this.entries = [...this.entries, { clientMsgId, roomId, body, status: 'queued' }];
    this.changed(undefined);
    void this.pump();
    return { clientMsgId, attempted };
  }

  /** Sends a message not sent (or refused) again now, with its clientMsgId. */
  retry(clientMsgId: string): void {
    this.update(clientMsgId, (entry) => ({ ...entry, status: 'queued', failure: undefined }));
    this.wake?.();
    void this.pump();
  }

  /** Drops a refused message. */
  discard(clientMsgId: string): void {
    this.entries = this.entries.filter(
      (entry) => entry.clientMsgId !== clientMsgId || entry.status !== 'refused',
    );
    this.changed(undefined);
  }

  private update(clientMsgId: string, change: (entry: PendingMessage) => PendingMessage): void {
    this.entries = this.entries.map((entry) => (entry.clientMsgId === clientMsgId ? change(entry) : entry));
    this.changed(undefined);
  }

  private attempted(clientMsgId: string): void {
    this.firstAttempts.get(clientMsgId)?.();
    this.firstAttempts.delete(clientMsgId);
  }

  private changed(sent: RoomMessage | undefined): void {
    // Refused or full: memory only from now on (writeStoredOutbox has removed the stale copy).
    if (this.storage !== undefined && !writeStoredOutbox(this.storage, this.senderId, this.entries))
      this.storage = undefined;
    for (const listener of this.listeners) listener(sent);
  }

  /** Sends the messages in order, one at a time, until none is left to send. */
  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      let failures = 0;
      for (;;) {
        if (this.live.state === 'closed') return;
        const next = this.entries.find((entry) => entry.status !== 'refused');
        if (next === undefined) return;
        try {
          const sent = await this.live.sendMessage(next.roomId, next.body, {
            clientMsgId: next.clientMsgId,
            attempts: 1,
          });
          failures = 0;
          this.entries = this.entries.filter((entry) => entry.clientMsgId !== next.clientMsgId);
          this.changed({
            // The room and user ids as this app knows them (the server's canonical forms).
            roomId: next.roomId as RoomMessage['roomId'],
            seq: sent.seq,
            senderId: this.senderId as RoomMessage['senderId'],
            clientMsgId: next.clientMsgId,
            body: next.body,
            sentAt: sent.sentAt,
          });
          this.attempted(next.clientMsgId);
        } catch (error) {
          const code = isGigwireError(error) ? error.code : '';
          if (code === 'CLOSED') {
            this.attempted(next.clientMsgId);
            return;
          }
          if (!RESEND.has(code) && !WAIT.has(code)) {
            this.update(next.clientMsgId, (entry) => ({
              ...entry,
              status: 'refused',
              failure: failureOf(error),
            }));
            this.attempted(next.clientMsgId);
            continue;
          }
          failures += 1;
          const backoff = backoffDelay(failures - 1, RESEND_BACKOFF);
          if (WAIT.has(code) && this.live.state === 'open') {
            // The server is there and asked to wait: still on its way.
            this.attempted(next.clientMsgId);
            // At most the SDK's 60 s (backoff.ts `retryAfterWait`): a timer past 2^31 − 1 ms (a
            // buggy value) fires at once, and the message went again at once, refused again, in a
            // loop for as long as the socket stayed up (review 32).
            const retryAfterMs = isGigwireError(error) ? error.details?.retryAfterMs : undefined;
            await this.pause(retryAfterWait(retryAfterMs) ?? backoff);
            continue;
          }
          this.update(next.clientMsgId, (entry) => ({ ...entry, status: 'unsent' }));
          this.attempted(next.clientMsgId);
          // Offline: at the next connect (or Retry). Connected (a slow server, a dead socket not
          // noticed yet): after a backoff as well.
          await this.pause(this.live.state === 'open' ? backoff : undefined);
          this.update(next.clientMsgId, (entry) =>
            entry.status === 'unsent' ? { ...entry, status: 'queued' } : entry,
          );
        }
      }
    } finally {
      this.pumping = false;
    }
  }

  /** Until `ms` have passed (never when undefined), a connect, a Retry, or the client closing. */
  private pause(ms: number | undefined): Promise<void> {
    return new Promise((resolve) => {
      const timer = ms === undefined ? undefined : setTimeout(done, ms);
      const self = this;
      function done() {
        clearTimeout(timer);
        if (self.wake === done) self.wake = undefined;
        resolve();
      }
      this.wake = done;
    });
  }
}

/** 32 hex digits (crypto.randomUUID exists only in secure contexts: not on plain HTTP off loopback). */
function newClientMsgId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

const outboxes = new WeakMap<GigwireClient, Outbox>();
/** The outboxes of live connections not closed yet. */
const openOutboxes = new Set<Outbox>();

/**
 * Signed out: every stored outbox of this tab is removed, and the open ones stop writing (whoever
 * signs in next in this tab never sends, nor sees, what was left here).
 */
export function forgetOutboxes(storage: OutboxStorage | undefined = tabStorage()): void {
  for (const outbox of openOutboxes) outbox.forgetStorage();
  endedHere.clear();
  removeStoredOutboxes(storage);
}

/**
 * The users whose session ended by itself in this page (its connection closed without a sign-out):
 * their stored outbox is what that session left, theirs to get back at their next sign-in here.
 */
const endedHere = new Set<string>();

/**
 * A sign-in with a password (or a sign-up) in this tab, before its outbox is made: every stored
 * outbox is removed, but the one `userId`'s own session left when it ended by itself in this page.
 * Anything else in storage was not left by a session of this page: another person's unsent text
 * (their session ended, the tab changed hands), or a list written into storage by someone at this
 * browser between two sessions; read back, it would be sent in the name of who signs in.
 */
export function signingIn(userId: string, storage: OutboxStorage | undefined = tabStorage()): void {
  const own = endedHere.has(userId) ? userId : undefined;
  endedHere.clear();
  removeStoredOutboxes(storage, own);
}

/** The outbox of a live connection (one per signed-in session). */
export function outboxOf(live: GigwireClient, senderId: string): Outbox {
  let outbox = outboxes.get(live);
  if (outbox === undefined) {
    outbox = new Outbox(live, senderId);
    outboxes.set(live, outbox);
  }
  return outbox;
}
