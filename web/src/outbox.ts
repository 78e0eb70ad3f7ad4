/**
 * Chat messages on their way to the server, for the life of the live connection (a room left and
 * opened again finds its unsent messages still there, still going out).
 *
 * Each message gets its `clientMsgId` once, when the user sends it; every attempt sends that same
 * id, so the server stores it once however often it is sent (a lost answer, a retry, a reconnect).
 * Messages go out one at a time, in the order written. An attempt is the SDK's `sendMessage` with a
 * single attempt: offline it waits for the connection until the SDK's request timeout (10 s), then
 * counts as not sent (said on screen, with Retry) rather than "Sending…" for the minute and a half
 * the SDK's own resends would take. A message not sent goes out by itself at the next connect (and,
 * while connected, after a backoff); RATE_LIMITED or UNAVAILABLE wait the server's `retryAfterMs`
 * (or a backoff). A refusal (not a member, an invalid body) is final: said, with Retry and Discard.
 */
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

/** No answer, or "later": the same message is sent again. */
const RESEND = new Set(['TIMEOUT', 'DISCONNECTED', 'QUEUE_FULL', 'CONNECT_FAILED', 'TOKEN_UNAVAILABLE']);
/** The server asked to wait: sent again after its `retryAfterMs` (or a backoff) while connected. */
const WAIT = new Set(['RATE_LIMITED', 'UNAVAILABLE']);
const RESEND_BACKOFF = { initialDelayMs: 1_000, maxDelayMs: 30_000 };

type Listener = (sent: RoomMessage | undefined) => void;

export class Outbox {
  private entries: PendingMessage[] = [];
  private readonly listeners = new Set<Listener>();
  private pumping = false;
  /** Resolvers of `send(…).attempted`, by clientMsgId, until the first attempt settles. */
  private readonly firstAttempts = new Map<string, () => void>();
  /** Ends the pump's current wait (a connect, a Retry). */
  private wake: (() => void) | undefined;

  constructor(
    private readonly live: GigwireClient,
    private readonly senderId: string,
  ) {
    live.on('connected', () => this.wake?.());
    live.on('closed', () => this.wake?.());
    // Leaving the page would lose what has not gone out yet: the browser asks first.
    addEventListener('beforeunload', (event) => {
      if (this.live.state !== 'closed' && this.entries.some((entry) => entry.status !== 'refused'))
        event.preventDefault();
    });
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

  /** Whether nothing is waiting or being sent. */
  get idle(): boolean {
    return this.entries.length === 0;
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
            const retryAfterMs = isGigwireError(error) ? error.details?.retryAfterMs : undefined;
            await this.pause(typeof retryAfterMs === 'number' && retryAfterMs >= 0 ? retryAfterMs : backoff);
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

/** The outbox of a live connection (one per signed-in session). */
export function outboxOf(live: GigwireClient, senderId: string): Outbox {
  let outbox = outboxes.get(live);
  if (outbox === undefined) {
    outbox = new Outbox(live, senderId);
    outboxes.set(live, outbox);
  }
  return outbox;
}
