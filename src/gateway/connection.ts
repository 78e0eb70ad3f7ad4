/**
 * One WebSocket connection, whatever its transport: decode → validate → rate-limit → dispatch for
 * each inbound frame, and a bounded send path. Failed requests get an `error` reply and the socket
 * stays open; only abuse, auth expiry, slow consumers and shutdown close it (ARCHITECTURE.md §3.2).
 *
 * Limits: a token bucket of maxMessagesPerSecond refilled continuously up to maxBurst; frames over
 * it get RATE_LIMITED, and after `maxStrikes` such refusals (or bad frames) inside one strike window
 * the socket is closed 1008 (1007 when they were undecodable). After each send (and once a second
 * for frames published to native topics) the transport's buffered bytes are checked: past
 * maxBufferedBytes the peer is a slow consumer, closed 1013. A user's closed connection leaves
 * its bucket behind on the node (`BucketCarry`) until it would be full again, and the user's next
 * connection starts from it (with at least NEW_CONNECTION_MIN_TOKENS): reconnecting does not refill
 * the bucket (one socket opened and closed in a loop stored ~2 000 messages a second against a
 * limit of 50). Strikes are carried likewise (`StrikeCarry`): a user's next connection inside the
 * strike window starts from the strikes their earlier ones took, and is closed after at most
 * NEW_CONNECTION_MIN_STRIKES refused frames once those used the window up (a reconnect loop got a
 * fresh 21 refused frames, each up to a few ms of decoding, per socket).
 */
import { type Codec, type DecodeFailure, errorReplyFor } from '../../protocol/src/codec.js';
import { CloseCode, type ErrorCode } from '../../protocol/src/codes.js';
import type { ClientFrame, HelloLimits, ServerFrame } from '../../protocol/src/frames.js';
import type { Encoding } from '../../protocol/src/version.js';
import type { Principal } from '../domain/auth/service.js';
import type { Logger } from '../platform/logger.js';
import type { SocketHandler, SocketTransport } from './transport.js';

export interface ConnectionLimits extends HelloLimits {
  /** Refusals (rate or bad frames) within strikeWindowMs before the socket is closed. */
  readonly maxStrikes: number;
  readonly strikeWindowMs: number;
}

export interface ConnectionEnvironment {
  readonly codec: Codec;
  readonly limits: ConnectionLimits;
  readonly log: Logger;
  /** Milliseconds on a monotonic clock (performance.now): only differences are used. */
  readonly now: () => number;
  /** Rate buckets carried from a user's closed connections to their next one (absent: each starts full). */
  readonly buckets?: BucketCarry;
  /** Strikes carried from a user's connections to their next one (absent: each starts with none). */
  readonly strikes?: StrikeCarry;
  /**
   * Whether the node's event loop was just held (loop-stalls.ts): frames refused RATE_LIMITED then
   * piled up behind the stall, and are not counted as strikes (absent: always counted).
   */
  readonly recentlyStalled?: () => boolean;
  /** Runs a valid frame; the returned promise settles with the reply payload (or rejects with AppError). */
  readonly dispatch: (connection: Connection, frame: ClientFrame) => Promise<unknown>;
  /** Maps an error thrown by a handler to the code and message sent back. */
  readonly describeError: (
    error: unknown,
    connection: Connection,
  ) => { code: ErrorCode; message: string; details?: Record<string, unknown> };
  readonly onClosed: (connection: Connection, code: number) => void;
}

/** Frames a new connection may send at once even when the user's closed one left its bucket empty. */
export const NEW_CONNECTION_MIN_TOKENS = 5;

/**
 * Rate buckets of a user's closed connections on this node, taken by each of their next connections
 * while it has not refilled: a reconnect with several sockets at once does not refill any of them.
 */
export interface BucketCarry {
  /** The bucket a closed connection of the user left, if it is not full again yet (it stays for their other new sockets). */
  readonly take: (userId: string) => { readonly tokens: number; readonly at: number } | undefined;
  readonly keep: (userId: string, tokens: number, at: number) => void;
}

/**
 * A BucketCarry holding at most `maxUsers` buckets; each is dropped once it would have refilled
 * (so the map holds only users who closed a socket in the last maxBurst / rate seconds).
 */
export function createBucketCarry(
  limits: Pick<ConnectionLimits, 'maxBurst' | 'maxMessagesPerSecond'>,
  now: () => number,
  maxUsers = 100_000,
): BucketCarry {
  const left = new Map<string, { tokens: number; at: number }>();
  const refillMs = (limits.maxBurst / limits.maxMessagesPerSecond) * 1000;
  return {
    take: (userId) => {
      const bucket = left.get(userId);
      if (bucket === undefined) return undefined;
      // Not removed while it holds: handed to the first new socket only, a second one opened with
      // it started full, and reconnecting two sockets at a time refilled a whole burst per round.
      if (now() - bucket.at < refillMs) return bucket;
      left.delete(userId);
      return undefined;
    },
    keep: (userId, tokens, at) => {
      if (tokens >= limits.maxBurst) return;
      if (left.size >= maxUsers) {
        // The oldest hundredth goes (a Map iterates in insertion order, and an update re-inserts):
        // a mass disconnect pays this once per hundredth, not a scan of the map per close.
        const keep = Math.floor(maxUsers * 0.99);
        for (const user of left.keys()) {
          if (left.size <= keep) break;
          left.delete(user);
        }
      }
      const earlier = left.get(userId);
      // Several sockets closing: the emptiest bucket stays, compared as of `at` (the earlier one
      // has refilled since it was kept).
      const earlierNow =
        earlier === undefined
          ? Number.POSITIVE_INFINITY
          : earlier.tokens + ((at - earlier.at) * limits.maxMessagesPerSecond) / 1000;
      if (earlierNow > tokens) {
        left.delete(userId);
        left.set(userId, { tokens, at });
      }
    },
  };
}

/**
 * Refused frames a new connection is answered before it is closed 1007/1008, even when the user's
 * earlier connections used their strike window up (PROTOCOL.md, Limits).
 */
export const NEW_CONNECTION_MIN_STRIKES = 5;

/**
 * Strikes of a user's connections on this node, kept at each strike (only refused frames touch it)
 * and taken by each of their next connections while the strike window they count in lasts.
 */
export interface StrikeCarry {
  /** The user's strikes and the start of the window they count in, if that window has not ended. */
  readonly take: (userId: string) => { readonly strikes: number; readonly windowStart: number } | undefined;
  readonly keep: (userId: string, strikes: number, windowStart: number) => void;
}

/**
 * A StrikeCarry holding at most `maxUsers` users (the least recently struck go first); each is
 * dropped once its window has ended, or when it is the oldest at the bound.
 */
export function createStrikeCarry(
  limits: Pick<ConnectionLimits, 'strikeWindowMs'>,
  now: () => number,
  maxUsers = 100_000,
): StrikeCarry {
  const struck = new Map<string, { strikes: number; windowStart: number }>();
  const ended = (windowStart: number) => now() - windowStart > limits.strikeWindowMs;
  return {
    take: (userId) => {
      const record = struck.get(userId);
      if (record === undefined) return undefined;
      if (!ended(record.windowStart)) return record;
      struck.delete(userId);
      return undefined;
    },
    keep: (userId, strikes, windowStart) => {
      const earlier = struck.get(userId);
      // Several sockets striking at once: the most strikes of a window still running stay.
      if (earlier !== undefined && !ended(earlier.windowStart) && earlier.strikes > strikes) return;
      struck.delete(userId);
      if (struck.size >= maxUsers) {
        // The least recently struck hundredth goes (insertion order; a strike re-inserts).
        const keep = Math.floor(maxUsers * 0.99);
        for (const user of struck.keys()) {
          if (struck.size <= keep) break;
          struck.delete(user);
        }
      }
      struck.set(userId, { strikes, windowStart });
    },
  };
}

export class Connection implements SocketHandler {
  /** Tokens in the rate bucket; starts full, or from the bucket the user's closed connection left. */
  private tokens: number;
  private refilledAt: number;
  /**
   * The bucket `hello` announces, as a client pacing itself with it sees it: starts full, takes
   * every frame, refills alike. It differs from `tokens` only after a carried start, and only a
   * refusal beyond it is abuse (a strike): a client that kept to the announced limits right after
   * a reconnect is refused RATE_LIMITED by the carried bucket, never closed 1008 for it.
   */
  private announcedTokens: number;
  /** Whether the last frame was beyond the announced bucket (see announcedTokens). */
  private overAnnounced = false;
  private strikes = 0;
  private strikeWindowStart = 0;
  private closing = false;
  /** When the peer was last heard from (a frame or a pong), on env.now()'s clock. */
  private heardAt: number;
  /**
   * When the socket cap last pinged this socket to learn whether its peer is still there
   * (socket-cap.ts); undefined until then.
   */
  private probedAt: number | undefined;

  constructor(
    readonly id: string,
    /** Mutable: `auth.refresh` replaces it with the principal of a newer token. */
    public principal: Principal,
    readonly encoding: Encoding,
    private readonly transport: SocketTransport,
    private readonly env: ConnectionEnvironment,
  ) {
    this.tokens = env.limits.maxBurst;
    this.announcedTokens = env.limits.maxBurst;
    this.refilledAt = env.now();
    // Opening is hearing from the peer: a new socket is never the stalest.
    this.heardAt = this.refilledAt;
    const carried = env.buckets?.take(principal.userId);
    if (carried !== undefined) {
      // Refilled to now, and never below a few frames: a reconnect can say hello, rejoin and ping
      // at once; a reconnect loop gets that little per upgrade (itself limited per IP).
      const { maxMessagesPerSecond, maxBurst } = env.limits;
      const refilled = carried.tokens + ((this.refilledAt - carried.at) * maxMessagesPerSecond) / 1000;
      this.tokens = Math.min(maxBurst, Math.max(refilled, NEW_CONNECTION_MIN_TOKENS));
    }
    const struck = env.strikes?.take(principal.userId);
    if (struck !== undefined) {
      // Closed at the strike past maxStrikes: at the latest after NEW_CONNECTION_MIN_STRIKES refusals.
      this.strikes = Math.max(
        0,
        Math.min(struck.strikes, env.limits.maxStrikes + 1 - NEW_CONNECTION_MIN_STRIKES),
      );
      this.strikeWindowStart = struck.windowStart;
    }
  }

  get userId() {
    return this.principal.userId;
  }

  /**
   * When the connection's authentication ends (ms since epoch): its access token's expiry, or its
   * session's absolute end when that comes first (a token minted late in a session outlives it).
   */
  get authExpiresAt() {
    const { expiresAt, sessionExpiresAt } = this.principal;
    // Compared, not Math.min: whatever the session's end, never later than the token's expiry.
    return sessionExpiresAt < expiresAt ? sessionExpiresAt : expiresAt;
  }

  get transportKind() {
    return this.transport.kind;
  }

  get isOpen() {
    return !this.closing;
  }

  /** When the peer was last heard from: a frame or a pong (env.now()'s clock). */
  get lastHeardAt() {
    return this.heardAt;
  }

  /** When the socket cap last pinged this socket (socket-cap.ts), if ever. */
  get lastProbedAt() {
    return this.probedAt;
  }

  /**
   * Pings the peer (a protocol ping, answered by every WebSocket stack without the application):
   * its pong, or any frame, moves lastHeardAt past `at`. A transport without ping only records `at`.
   */
  probe(at: number): void {
    if (this.closing) return;
    this.probedAt = at;
    this.transport.ping?.();
  }

  /** Bytes queued for the socket and not yet taken by the kernel (0 once closing). */
  get bufferedAmount() {
    return this.closing ? 0 : this.transport.bufferedAmount();
  }

  /**
   * One inbound WebSocket message. Never throws: decoding is total, and anything that still goes
   * wrong for this one frame (a handler bug, an encoder failure) is answered INTERNAL on this
   * connection and logged; it must never reach the process-wide handler, which stops the node.
   */
  receive(data: ArrayBuffer | Uint8Array, isBinary: boolean): void {
    if (this.closing) return;
    let requestId: number | undefined;
    try {
      const wire = isBinary
        ? data
        : Buffer.from(data instanceof ArrayBuffer ? new Uint8Array(data) : data).toString('utf8');
      const decoded = this.env.codec.decodeClient(wire, this.encoding);
      if (!decoded.ok) {
        // Every inbound frame takes a token (PROTOCOL.md), refused ones included.
        this.takeToken();
        this.refuse(decoded);
        return;
      }
      const frame = decoded.frame;
      requestId = frame.id;
      if (!this.takeToken()) {
        this.sendFrame({
          t: 'error',
          ...(frame.id === undefined ? {} : { id: frame.id }),
          d: {
            code: 'RATE_LIMITED',
            message: `over ${this.env.limits.maxMessagesPerSecond} frames per second`,
            // Time until the bucket holds a whole token again.
            details: {
              retryAfterMs: Math.max(
                1,
                Math.ceil(((1 - this.tokens) * 1000) / this.env.limits.maxMessagesPerSecond),
              ),
            },
          },
        });
        // Refused all the same (the server never runs more than the rate); but frames that queued
        // behind a stall of this node were sent at an honest pace, and so were frames within the
        // limits hello announced (a reconnect that started from a carried bucket): closing that
        // client 1008 would tell it never to reconnect.
        if (this.overAnnounced && this.env.recentlyStalled?.() !== true) {
          this.strike(CloseCode.POLICY_VIOLATION, 'rate limit exceeded repeatedly');
        }
        return;
      }
      // A handler that throws synchronously is treated like one that rejects.
      let pending: Promise<unknown>;
      try {
        pending = this.env.dispatch(this, frame);
      } catch (error) {
        pending = Promise.reject(error);
      }
      pending.then(
        (result) => {
          const id = frame.id;
          if (id === undefined || this.closing) return;
          this.guarded(id, () =>
            this.sendFrame(
              result === undefined ? { t: 'ok', id } : ({ t: 'ok', id, d: result } as ServerFrame),
            ),
          );
        },
        (error: unknown) => {
          if (this.closing) return;
          this.guarded(frame.id, () => {
            const { code, message, details } = this.env.describeError(error, this);
            this.sendFrame({
              t: 'error',
              ...(frame.id === undefined ? {} : { id: frame.id }),
              d: { code, message, ...(details === undefined ? {} : { details }) },
            });
          });
        },
      );
    } catch (error) {
      this.failInternally(requestId, error);
    }
  }

  /** Runs one reply step; a throw becomes an INTERNAL error reply instead of an unhandled rejection. */
  private guarded(requestId: number | undefined, work: () => void): void {
    try {
      work();
    } catch (error) {
      this.failInternally(requestId, error);
    }
  }

  private failInternally(requestId: number | undefined, error: unknown): void {
    this.env.log.error({ err: error, connId: this.id, userId: this.userId }, 'frame handling failed');
    if (this.closing) return;
    try {
      this.sendFrame({
        t: 'error',
        ...(requestId === undefined ? {} : { id: requestId }),
        d: { code: 'INTERNAL', message: 'internal error' },
      });
    } catch (sendError) {
      // Even a plain error frame could not be sent: this socket is unusable, the node is not.
      this.env.log.error({ err: sendError, connId: this.id }, 'error reply failed; closing the connection');
      this.close(CloseCode.INTERNAL_ERROR, 'internal error');
    }
  }

  /** Encodes and sends one frame. */
  sendFrame(frame: ServerFrame): void {
    this.sendEncoded(this.env.codec.encode(frame, this.encoding));
  }

  /** Sends bytes already encoded for this connection's encoding (fan-out encodes once per encoding). */
  sendEncoded(data: Uint8Array | string): void {
    if (this.closing) return;
    if (!this.transport.send(data, typeof data !== 'string')) return;
    this.checkBackpressure();
  }

  /** Subscribes to a native topic; false on the fallback transport or once closing. */
  subscribe(topic: string): boolean {
    if (this.closing || this.transport.subscribe === undefined) return false;
    return this.transport.subscribe(topic);
  }

  unsubscribe(topic: string): void {
    if (!this.closing) this.transport.unsubscribe?.(topic);
  }

  /**
   * Frames published to topics bypass `sendEncoded`, so their backlog is checked here, by the
   * node's backpressure sweep: a slow consumer is still closed 1013, about a second later at most.
   */
  checkBackpressure(): void {
    if (this.closing || this.transport.bufferedAmount() <= this.env.limits.maxBufferedBytes) return;
    this.env.log.info(
      { connId: this.id, userId: this.userId, buffered: this.transport.bufferedAmount() },
      'slow consumer closed',
    );
    this.close(CloseCode.TRY_AGAIN_LATER, 'slow consumer');
  }

  close(code: number, reason: string): void {
    if (this.closing) return;
    this.closing = true;
    this.transport.close(code, reason);
  }

  /** The transport reports the socket gone (after our close or the peer's). */
  closed(code: number): void {
    this.closing = true;
    if (this.env.buckets !== undefined) {
      const now = this.env.now();
      const { maxMessagesPerSecond, maxBurst } = this.env.limits;
      const tokens = Math.min(
        maxBurst,
        this.tokens + ((now - this.refilledAt) * maxMessagesPerSecond) / 1000,
      );
      this.env.buckets.keep(this.userId, tokens, now);
    }
    this.env.onClosed(this, code);
  }

  // The connection is its transport's SocketHandler itself: no handler object and closures per socket.

  /** SocketHandler: one inbound frame. */
  onMessage(data: ArrayBuffer | Uint8Array, isBinary: boolean): void {
    this.receive(data, isBinary);
  }

  /** SocketHandler: a pong arrived (the peer is there). */
  onPong(): void {
    this.heardAt = this.env.now();
  }

  /** SocketHandler: called from the transport's native callback, so nothing may throw out of it. */
  onClose(code: number): void {
    try {
      this.closed(code);
    } catch (error) {
      this.env.log.error({ err: error, connId: this.id }, 'connection close handling failed');
    }
  }

  private takeToken(): boolean {
    const now = this.env.now();
    // Every inbound frame comes here (refused ones too): the peer was heard from.
    this.heardAt = now;
    const { maxMessagesPerSecond, maxBurst } = this.env.limits;
    const refill = ((now - this.refilledAt) * maxMessagesPerSecond) / 1000;
    this.tokens = Math.min(maxBurst, this.tokens + refill);
    this.announcedTokens = Math.min(maxBurst, this.announcedTokens + refill);
    this.refilledAt = now;
    this.overAnnounced = this.announcedTokens < 1;
    if (!this.overAnnounced) this.announcedTokens -= 1;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  private refuse(failure: DecodeFailure): void {
    this.sendFrame(errorReplyFor(failure));
    this.env.log.debug({ connId: this.id, code: failure.code }, 'frame refused');
    this.strike(
      failure.code === 'BAD_FRAME' ? CloseCode.INVALID_PAYLOAD : CloseCode.POLICY_VIOLATION,
      failure.code === 'BAD_FRAME' ? 'repeated undecodable frames' : 'repeated invalid frames',
    );
  }

  private strike(closeCode: number, reason: string): void {
    const now = this.env.now();
    if (now - this.strikeWindowStart > this.env.limits.strikeWindowMs) {
      this.strikeWindowStart = now;
      this.strikes = 0;
    }
    this.strikes += 1;
    this.env.strikes?.keep(this.userId, this.strikes, this.strikeWindowStart);
    if (this.strikes > this.env.limits.maxStrikes) {
      this.env.log.info({ connId: this.id, userId: this.userId, reason }, 'closing an abusive connection');
      this.close(closeCode, reason);
    }
  }
}
