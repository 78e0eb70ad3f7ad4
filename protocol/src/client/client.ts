/**
 * The gigwire realtime client: one WebSocket at a time, kept open for the application.
 *
 * - Connecting: the access token travels as a `bearer.<jwt>` subprotocol entry next to the
 *   encoding (`gigwire.v1.msgpack` or `gigwire.v1.json`), the one way that works in browsers too.
 *   `getAccessToken` is asked before every attempt, with the reason (see TokenRequest); an answer
 *   not there within `requestTimeoutMs` fails the attempt (TOKEN_UNAVAILABLE), retried with backoff.
 *   At most one `getAccessToken` call runs at a time, whatever asked (an attempt, `refreshToken()`,
 *   its timer): everyone waits for the call in flight, even one that outlived an earlier caller's
 *   timeout, since a second refresh while the first runs reuses a single-use refresh token.
 * - Reconnecting: after a drop, `closeAction(code)` decides: `reconnect` (backoff with full jitter),
 *   `reauthenticate` (ask `getAccessToken` for a fresh token, then reconnect) or `stop` (terminal
 *   `closed` event). A failed attempt (server down, 401 at the upgrade) is retried with backoff too;
 *   a 401 makes the next attempt ask for a fresh token; a refused upgrade's `Retry-After` (seen
 *   with `ws` only) is waited for first. An abrupt drop (1006: no close frame) waits
 *   its jittered delay from the first attempt on, like a server's close code: a node that crashed
 *   dropped all its clients in the same instant, and they must not all reach the next node together.
 * - Requests: `request(type, payload)` validates the frame locally, gives it an id, and resolves
 *   with the validated `ok` payload or rejects with a GigwireError (`code`: the server's error code,
 *   or TIMEOUT / DISCONNECTED / CLOSED / QUEUE_FULL / BAD_REPLY).
 *   **Requests made while disconnected wait** in a bounded queue (`maxQueuedRequests`, default 100;
 *   beyond it they fail at once with QUEUE_FULL) and are sent after the next `hello`; the request
 *   timeout runs from the call, so a request never waits longer than `requestTimeoutMs` in all.
 *   (Resume frames, made by the client at `hello`, time out from when they are sent instead.)
 *   A request already sent when the socket drops fails with DISCONNECTED (it may have been applied:
 *   the protocol cannot tell); none is handed to a socket already closing (it would be dropped).
 *   Outgoing frames are paced with the `hello.limits` token bucket, so a burst of requests waits
 *   instead of being refused RATE_LIMITED; a frame the server still refuses
 *   for the connection's rate (RATE_LIMITED with `retryAfterMs`: not processed; a reconnect may
 *   start from the smaller bucket the user's closed socket left) is sent again after that time, in
 *   its place, within its timeout, and nothing else goes before it (a `room.join` or `room.history`
 *   refused for longer, the user's room-read budget, is left to the room tracker or the caller).
 * - Resume: every `presence.subscribe` the server accepted (through `subscribePresence` or
 *   `request`) is sent again after each reconnect, taking turns with queued requests (so a hundred
 *   rooms to rejoin do not hold back the app's own requests until they time out); its reply states are
 *   emitted as `presence` events, so the app sees what changed while it was away. Resume is a list
 *   of steps run at each `hello` (`resumers`): rooms will add `room.join` with `sinceSeq` there.
 *   The job-board watch (`watchJobs`, or a `jobs.watch` request) is sent again too. A resumed
 *   subscribe or watch refused for a passing reason (RATE_LIMITED: a server's rate bucket may start
 *   low right after a reconnect; UNAVAILABLE, INTERNAL, TIMEOUT) is sent again on the same
 *   connection after the server's `retryAfterMs` or a backoff, as rooms are rejoined. An unsubscribe or
 *   unwatch made while a subscribe or watch awaits its `ok` wins: that late `ok` restores nothing.
 *   A joined room the user is no longer in (its rejoin refused FORBIDDEN / NOT_FOUND, or a
 *   `room.member` push removing them) is untracked and reported on the `room.removed` event.
 * - Token lifetime: the `exp` of the token is read from the JWT; `refreshToken()` (also scheduled
 *   automatically ahead of `exp`) gets a fresh token and sends `auth.refresh`.
 * - Liveness: when nothing arrived for `hello.heartbeatMs`, a `ping` is sent; no reply within
 *   another `heartbeatMs` drops the socket and reconnects. An attempt with no `hello` within
 *   `requestTimeoutMs` of its start (a path that swallows the handshake) is given up too; each one
 *   given up so in a row doubles the next one's wait (up to 4 times), so a slow path still gets in.
 * - Several URLs: `url` may be a list (say a proxy and a direct address, or two regions); every
 *   attempt after a lost connection or a failed attempt moves to the next one, round robin, so a
 *   path that died silently is left for another.
 * - `sendMessage`: `room.send` with a `clientMsgId` drawn once and resent after a drop, a timeout,
 *   UNAVAILABLE or RATE_LIMITED until the `ok` (the server stores one message per `clientMsgId`),
 *   in call order: after UNAVAILABLE / RATE_LIMITED the room's sends pause together for one backoff.
 * - `close()` ends it for good: pending and queued requests, a `sendMessage` waiting to resend and
 *   a token fetch fail with CLOSED at once, and no timer of the client is left running.
 */
import { z } from 'zod';
import { createCodec } from '../codec.js';
import { CloseAction, closeAction } from '../codes.js';
import {
  type AuthRefreshResult,
  ClientFrame,
  type ClientFrameType,
  type HelloPayload,
  type JobPostedPayload,
  type JobsWatchPayload,
  MAX_REQUEST_ID,
  type MarketEventPayload,
  type NotificationPayload,
  type NotificationsReadPushPayload,
  type PresenceState,
  type ReplyPayload,
  ReplyPayloads,
  type RoomMessage,
  type ServerFrame,
  type ServerPush,
  type WalletPayload,
} from '../frames.js';
import { BEARER_SUBPROTOCOL_PREFIX, CONNECT_SUBPROTOCOL_PREFIX, Encoding, SUBPROTOCOL } from '../version.js';
import { backoffDelay, DEFAULT_RECONNECT, type ReconnectOptions, retryAfterWait } from './backoff.js';
import { ClientErrorCode, GigwireError } from './errors.js';
import { Emitter } from './events.js';
import { tokenExpiresAt } from './jwt.js';
import { canonicalId, RoomTracker } from './rooms.js';
import {
  type CloseEventLike,
  describeErrorEvent,
  type MessageEventLike,
  messageData,
  resolveWebSocket,
  type WebSocketConstructor,
  type WebSocketLike,
  watchRefusedUpgrade,
} from './socket.js';

// ---------------------------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------------------------

/**
 * Why the client asks for a token:
 * - `connect`: before an attempt; any valid token will do (a cached one is fine);
 * - `expired`: the server refused the last one (401 at the upgrade, close 4001, or its `exp` has
 *   passed): return a new one (REST `POST /v1/auth/refresh`, else log in again);
 * - `refresh`: `refreshToken()`, before the current one expires: return a new one.
 */
export type TokenReason = 'connect' | 'expired' | 'refresh';

export interface TokenRequest {
  readonly reason: TokenReason;
  /** The access token the client used last, if any. */
  readonly previous: string | undefined;
}

/**
 * What `getAccessToken` returns: the access token, or the token pair of `POST /v1/auth/login` /
 * `refresh` (or just its two tokens). With a `connectToken` the socket opens with it
 * (`connect.<token>`: the server checks an HMAC instead of an Ed25519 signature, which makes
 * connects and reconnect storms far cheaper); the access token is still what `auth.refresh` sends
 * and what the client reads the expiry from.
 */
export type AccessCredential = string | { readonly accessToken: string; readonly connectToken?: string };

export interface ClientOptions {
  /**
   * `ws://host:3001/ws` (uWebSockets.js) or `ws://host:3000/ws` (the REST port); `wss://` in
   * production. A list: paths to the same service, tried in turn (the next one after every lost
   * connection or failed attempt).
   */
  readonly url: string | readonly string[];
  /**
   * Returns an access token, or the token pair with its connect token (AccessCredential); see
   * TokenRequest for when a fresh one is required. May be async. Never called again while a call
   * is still running: bound your own network calls, or a hung one holds every reconnect.
   */
  readonly getAccessToken: (request: TokenRequest) => Promise<AccessCredential> | AccessCredential;
  /** Default `msgpack`. */
  readonly encoding?: Encoding;
  /** The WebSocket class; default the global one. Node 20: pass `WebSocket` from the `ws` package. */
  readonly WebSocket?: WebSocketConstructor;
  /**
   * Per request, from the call (including time waiting for a connection). Default 10 s. Also bounds
   * each wait for `getAccessToken` (beyond it: TOKEN_UNAVAILABLE, and a connect attempt is retried
   * with backoff, waiting for that same call if it is still running) and the wait for `hello` from
   * an attempt's start (doubled after each attempt given up so in a row, up to 4 times).
   */
  readonly requestTimeoutMs?: number;
  /** Backoff of reconnects; `false`: never reconnect (any drop is terminal). */
  readonly reconnect?: Partial<ReconnectOptions> | false;
  /** Requests that may wait for a connection; more fail with QUEUE_FULL. Default 100. */
  readonly maxQueuedRequests?: number;
  /**
   * Automatic `refreshToken()` ahead of the token's `exp` (at the earlier of `beforeExpiryMs`
   * before it and half its remaining life). Default `{ beforeExpiryMs: 60_000 }`; `false`: never
   * (the server then closes 4001 at `exp`, and the client reauthenticates and reconnects).
   */
  readonly tokenRefresh?: { readonly beforeExpiryMs?: number } | false;
  /** Ping the server after `hello.heartbeatMs` of silence and drop a dead connection. Default true. */
  readonly heartbeat?: boolean;
}

/** `connecting`: fetching a token, handshaking or waiting for hello; `open`: hello received; `backoff`: waiting to retry. */
export type ClientState = 'connecting' | 'open' | 'backoff' | 'closed';

export interface ConnectedEvent {
  readonly hello: HelloPayload;
  /** False for the first connection of this client, true after any earlier one. */
  readonly reconnected: boolean;
}

export interface DisconnectedEvent {
  /** Close code; 1006 when the connection dropped without a close frame (or died silently). */
  readonly code: number;
  readonly reason: string;
  /** `closeAction(code)`; `stop` is followed by the `closed` event. */
  readonly action: CloseAction;
  /** Delay before the next attempt, undefined when there will be none. */
  readonly retryInMs: number | undefined;
}

/** A room joined with `joinRoom` that the client stopped tracking because the user is no longer in it. */
export interface RoomRemovedEvent {
  /** Lower case, as the server names rooms. */
  readonly roomId: string;
  /**
   * Why, in the shape of the `error` event: the refusal of the rejoin (FORBIDDEN: removed from the
   * room; NOT_FOUND), or FORBIDDEN with `details.change: 'removed'` for a `room.member` push.
   */
  readonly error: GigwireError;
}

export interface ClosedEvent {
  readonly code: number;
  readonly reason: string;
  /** True when `close()` ended it; false when the server's close code said stop. */
  readonly byClient: boolean;
}

/** Payload of each event of `on`. */
export interface ClientEvents {
  /** The `hello` of every new connection. */
  hello: HelloPayload;
  /** After `hello`, with whether this is a reconnect. */
  connected: ConnectedEvent;
  /** A connection that had opened is gone. */
  disconnected: DisconnectedEvent;
  /** Terminal: no more connections, every pending request failed. Emitted once. */
  closed: ClosedEvent;
  /** Presence of a subscribed user: the states of each `presence.subscribe` reply (resumes included), then every push. */
  presence: PresenceState;
  /** A stored notification of yours (dedupe by `id`: it may come again after a reconnect). */
  notification: NotificationPayload;
  /** Notifications were read on another device (or over REST): clear them, set the badge to `unreadCount`. */
  'notifications.read': NotificationsReadPushPayload;
  /** Your wallet's balance after it changed (whole balance: the latest push is the truth). */
  wallet: WalletPayload;
  /**
   * A job, bid, contract or review of yours changed: ids and states only (re-read it over REST).
   * At most once: after a reconnect, re-read what you show. Ignore `type`s you do not know.
   */
  market: MarketEventPayload;
  /** A new job matching the filter of `watchJobs`. */
  'job.posted': JobPostedPayload;
  /**
   * Messages of rooms joined with `joinRoom`: in seq order, each once, gaps filled through history
   * first, resumed after every reconnect. (Rooms joined with a raw `request` arrive here as pushed.)
   */
  'room.message': RoomMessage;
  /**
   * A joined room is no longer tracked (not rejoined, no more `room.message` events): a rejoin was
   * refused for good, or a `room.member` push removed you. `joinRoom` again to retry.
   */
  'room.removed': RoomRemovedEvent;
  /** Every valid server push, all types (rooms included); unknown push types are never emitted. */
  push: ServerPush;
  /** Non-fatal problems: failed attempts, failed resumes, unreadable frames, errors without id, throwing handlers. */
  error: GigwireError;
}

/** Fields of `d` for a request type, as the caller writes them (zod input: defaults optional, ids plain strings). */
export type RequestPayload<T extends ClientFrameType> = Extract<z.input<typeof ClientFrame>, { t: T }>['d'];

/** The filter of `watchJobs`: `categoryId?`, `skills?` (a job matches with any one of them). */
export type JobsWatchFilter = RequestPayload<'jobs.watch'>;

export interface RequestOptions {
  /** Overrides `requestTimeoutMs` for this request. */
  readonly timeoutMs?: number;
}

export interface SendMessageOptions {
  /** The idempotency key of this message (1–64 characters); default a fresh UUID. */
  readonly clientMsgId?: string;
  readonly meta?: RequestPayload<'room.send'>['meta'];
  /** Attempts in all, resends included. Default 10. */
  readonly attempts?: number;
  /** Per attempt (including time waiting for a connection). Default `requestTimeoutMs`. */
  readonly timeoutMs?: number;
}

export type SentMessage = ReplyPayload<'room.send'> & { readonly clientMsgId: string };

/** Arguments after the type: the payload is optional for types whose `d` is (ping). */
export type RequestArgs<T extends ClientFrameType> =
  undefined extends RequestPayload<T>
    ? [payload?: RequestPayload<T>, options?: RequestOptions]
    : [payload: RequestPayload<T>, options?: RequestOptions];

export interface GigwireClient {
  readonly state: ClientState;
  /** The `hello` of the current connection, undefined while not connected. */
  readonly hello: HelloPayload | undefined;
  /** Users whose presence subscription the server accepted and the client restores after reconnects. */
  readonly presenceSubscriptions: ReadonlySet<string>;
  /** Sends a request; resolves with its `ok` payload (validated), rejects with a GigwireError. */
  request<T extends ClientFrameType>(type: T, ...args: RequestArgs<T>): Promise<ReplyPayload<T>>;
  /** Subscribes to contacts' presence (any number; sent 100 per frame) and keeps it across reconnects. */
  subscribePresence(userIds: readonly string[]): Promise<PresenceState[]>;
  /** Ends presence subscriptions (on the server when connected; no longer restored in any case). */
  unsubscribePresence(userIds: readonly string[]): Promise<void>;
  /** The job-board filter the server accepted and the client restores after reconnects; undefined when not watching. */
  readonly jobsWatch: JobsWatchPayload | undefined;
  /**
   * Watches new jobs matching the filter (`job.posted` events; `{}`: every job), replacing the
   * previous watch, and keeps watching across reconnects.
   */
  watchJobs(filter?: JobsWatchFilter): Promise<void>;
  /** Stops watching jobs (on the server when connected; no longer restored in any case). */
  unwatchJobs(): Promise<void>;
  /**
   * Marks notifications read (`ids`, or with `'all'` every one, including those that arrived after
   * you listed: prefer `markAllRead`); your other devices get a `notifications.read` push. Resolves
   * with how many changed and how many stay unread.
   */
  readNotifications(which: readonly string[] | 'all'): Promise<ReplyPayload<'notifications.read'>>;
  /**
   * "Mark all read" of a list you showed: `upTo` is the id of its newest notification. That one and
   * every older one are marked read; one that arrived after you listed stays unread (and is still
   * mailed). Your other devices get a `notifications.read` push.
   */
  markAllRead(upTo: string): Promise<ReplyPayload<'notifications.read'>>;
  /**
   * Joins a room and keeps it joined across reconnects (rejoining with the last seq seen, so exactly
   * the missed messages arrive); `room.message` events then come in seq order without gaps.
   * A first join refused RATE_LIMITED with `retryAfterMs` (the user's room reads on the node) is
   * sent again after that time, a few times; one that fails leaves the room untracked (not
   * rejoined); after a TIMEOUT a best-effort `room.leave` follows, since the server may have joined
   * all the same.
   */
  joinRoom(roomId: string): Promise<{ lastSeq: number }>;
  /**
   * Leaves a room joined with `joinRoom`; it is no longer resumed. Offline it resolves at once (the
   * server forgot the closed connection's joins), unless a `joinRoom` of it waits to be sent: then a
   * `room.leave` follows that join on the next connection. A drop before its `ok` resolves it too
   * (as for `unsubscribePresence` and `unwatchJobs`). The room's pushes still on the way are dropped.
   */
  leaveRoom(roomId: string): Promise<void>;
  /**
   * Sends a room message exactly once: the `clientMsgId` (`options.clientMsgId`, else
   * `crypto.randomUUID()`) is drawn before the first attempt, and the same frame is sent again
   * after DISCONNECTED, TIMEOUT or UNAVAILABLE (each means "maybe stored") and after RATE_LIMITED
   * (a busy room: after `details.retryAfterMs` when given, else with backoff) until the `ok`, at
   * most `options.attempts` (default 10) attempts; other errors are final. The rejection's
   * `details.clientMsgId` names the key: call again with it to finish the same message. Messages
   * to one room keep their call order: after UNAVAILABLE or RATE_LIMITED the room's sends (the
   * refused ones and the later ones) wait for one shared backoff, then go again in that order.
   */
  sendMessage(roomId: string, body: string, options?: SendMessageOptions): Promise<SentMessage>;
  /**
   * Asks `getAccessToken({reason: 'refresh'})` and sends `auth.refresh`; the new token is used for
   * reconnects too. Once closed it rejects CLOSED without asking.
   */
  refreshToken(): Promise<AuthRefreshResult>;
  /** Resolves with the hello of the current connection, or of the next one; rejects once closed. */
  whenConnected(): Promise<HelloPayload>;
  on<E extends keyof ClientEvents>(event: E, handler: (payload: ClientEvents[E]) => void): () => void;
  /**
   * Closes the socket with 1000 and stops for good; pending and queued requests (a `sendMessage`
   * waiting to resend too) fail with CLOSED at once, and no timer of the client keeps running.
   */
  close(): void;
}

/** Creates the client and starts connecting at once (events are emitted asynchronously, so handlers registered right after see everything). */
export function createClient(options: ClientOptions): GigwireClient {
  return new Client(options);
}

// ---------------------------------------------------------------------------------------------
// Implementation
// ---------------------------------------------------------------------------------------------

type Timer = ReturnType<typeof setTimeout>;

const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
const DEFAULT_MAX_QUEUED = 100;
const DEFAULT_REFRESH_BEFORE_EXPIRY_MS = 60_000;
const MAX_PRESENCE_IDS_PER_FRAME = 100;
/** Handshake failures with no visible cause (browsers hide the HTTP status) before a fresh token is asked for. */
const UNEXPLAINED_FAILURES_BEFORE_FRESH_TOKEN = 3;
/** Pace below the server's bucket, so network jitter never makes us exceed it. */
const RATE_SAFETY = 0.9;
const MAX_TIMER_MS = 2 ** 31 - 1;
/** The longest `Retry-After` of a refused upgrade waited for (a misconfigured proxy may say hours). */
const MAX_UPGRADE_RETRY_AFTER_MS = 60_000;
/** Attempts given up for no `hello` in a row double the next one's wait, up to 2^this times `requestTimeoutMs`. */
const MAX_HELLO_WAIT_DOUBLINGS = 2;
/** `WebSocket.OPEN`: the readyState in which sent frames go out. */
const SOCKET_OPEN = 1;

/**
 * A clock of milliseconds that never runs backwards, for elapsed time (the rate bucket, the
 * heartbeat's silence, send pauses): a wall clock stepped back (an NTP correction, the user fixing
 * the time) froze the bucket and the heartbeat for as long as the step; here a step back counts as
 * no time. Forward, it follows the wall clock, so a machine waking from sleep sees the silence at
 * once (`performance.now()` stops during sleep on some platforms: that would delay it by a heartbeat).
 */
function steadyClock(): () => number {
  let wallClockLast = Date.now();
  let steadyMs = 0;
  return () => {
    const now = Date.now();
    steadyMs += Math.max(0, now - wallClockLast);
    wallClockLast = now;
    return steadyMs;
  };
}

interface Outgoing {
  readonly type: ClientFrameType;
  /** Validated frame without an id. */
  readonly frame: ClientFrame;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: GigwireError) => void;
  readonly timeoutMs: number;
  /** Made by the client at hello (resume frames, heartbeat pings, room reads): in `urgent`. */
  readonly urgent: boolean;
  /** Order of the calls: a frame refused by the connection's rate goes back to its place. */
  readonly order: number;
  /** A `sendMessage` frame: its room (lower case), whose pause waits for it while it is on the wire. */
  readonly sendRoom: string | undefined;
  /** Undefined until sent for a resume frame, whose timeout starts then. */
  timer: Timer | undefined;
  /** Set once sent. */
  id: number | undefined;
  /**
   * What the app withdrew while this presence.subscribe (its user ids) or jobs.watch (`true`)
   * awaited its ok: the late ok must not restore it.
   */
  readonly withdrawnUserIds: Set<string>;
  watchWithdrawn: boolean;
}

/**
 * room.send failures after which the same frame is sent again: "maybe stored" (DISCONNECTED,
 * TIMEOUT, UNAVAILABLE), or refused before anything happened by a busy room (RATE_LIMITED).
 */
const RESENDABLE = new Set<string>([
  ClientErrorCode.DISCONNECTED,
  ClientErrorCode.TIMEOUT,
  'UNAVAILABLE',
  'RATE_LIMITED',
]);
const DEFAULT_SEND_ATTEMPTS = 10;
/**
 * Error codes after which a resumed `presence.subscribe` or `jobs.watch` is sent again on the same
 * connection (as a room rejoin is): right after a reconnect the server's rate bucket may start low,
 * or a dependency blink; given up, the subscription would stay counted here and silent there.
 */
const RESUME_RETRYABLE = new Set<string>(['RATE_LIMITED', 'UNAVAILABLE', 'INTERNAL', 'TIMEOUT']);
/**
 * Failures of the scheduled token refresh tried again before the token expires: the token source
 * failing (its own network: TOKEN_UNAVAILABLE, or a RestError passed through), and the passing
 * refusals of `auth.refresh`. Not UNAUTHORIZED / FORBIDDEN: asking again would change nothing.
 */
const REFRESH_RETRYABLE = new Set<string>([
  ...RESUME_RETRYABLE,
  ClientErrorCode.TOKEN_UNAVAILABLE,
  ClientErrorCode.DISCONNECTED,
]);

/** A refusal's wait: a frame's `retryAfterMs`, or a REST problem's `retryAfterS` (capped alike). */
function refreshRetryAfter(details: Readonly<Record<string, unknown>> | undefined): number | undefined {
  const seconds = details?.retryAfterS;
  return (
    retryAfterWait(details?.retryAfterMs) ??
    retryAfterWait(typeof seconds === 'number' ? seconds * 1000 : undefined)
  );
}
/**
 * Types whose RATE_LIMITED with `retryAfterMs` may be the user's room reads on the node (PROTOCOL.md,
 * `room.join`): beyond one token's time of the connection's rate the room tracker (or the app)
 * retries those itself, and they say nothing of the connection's rate.
 */
const ROOM_READS = new Set<string>(['room.join', 'room.history']);

/**
 * A room whose `sendMessage` frames wait after one was refused for a passing reason (UNAVAILABLE,
 * RATE_LIMITED): every send of the room waits for one shared backoff and then goes again in call
 * order. Each waiting on its own random backoff, they were resent, and stored, shuffled.
 */
interface SendPause {
  /** When the shared backoff ends (this.steadyNow() ms). */
  until: number;
  /** The backoff is over: the sends go as soon as none of the room's is on the wire (it may be refused too). */
  due: boolean;
  /** Attempts waiting for the pause to end, started in call order. */
  readonly waiting: {
    readonly order: number;
    readonly start: () => void;
    readonly fail: (error: GigwireError) => void;
  }[];
}

class Client implements GigwireClient {
  private readonly urls: readonly string[];
  /** URL of the current attempt. */
  private url = '';
  /** Attempts started: attempt n uses urls[n % urls.length]. */
  private attemptsStarted = 0;
  private readonly encoding: Encoding;
  private readonly requestTimeoutMs: number;
  private readonly maxQueued: number;
  private readonly reconnectOptions: ReconnectOptions | undefined;
  private readonly refreshBeforeMs: number | undefined;
  private readonly heartbeat: boolean;
  private readonly WebSocketClass: WebSocketConstructor | undefined;
  private readonly codec = createCodec();
  private readonly events: Emitter<ClientEvents>;

  private phase: ClientState = 'connecting';
  /** Bumped for every attempt: callbacks of an older attempt or socket see a mismatch and do nothing. */
  private generation = 0;
  private socket: WebSocketLike | undefined;
  private opened = false;
  private handshakeFailure = '';
  /** The `Retry-After` of the current attempt's refused upgrade (`ws` only: browsers hide it). */
  private handshakeRetryAfterMs: number | undefined;
  /** Attempts given up in a row for want of a `hello`; reset by one. */
  private helloTimeouts = 0;
  private current: HelloPayload | undefined;
  private connections = 0;
  private token: string | undefined;
  private tokenReason: TokenReason = 'connect';
  private unexplainedFailures = 0;
  /** Elapsed time that a wall clock set back does not run backwards (steadyClock). */
  private readonly steadyNow = steadyClock();
  /** Unexplained failures in a row after which the next fresh token is asked for (doubles per ask). */
  private nextFreshTokenAt = UNEXPLAINED_FAILURES_BEFORE_FRESH_TOKEN;
  private attempt = 0;
  /** Server clock minus local clock, from the last hello (token `exp` is server time). */
  private clockOffsetMs = 0;

  private reconnectTimer: Timer | undefined;
  private stableTimer: Timer | undefined;
  private helloTimer: Timer | undefined;
  private refreshTimer: Timer | undefined;
  private flushTimer: Timer | undefined;
  private heartbeatTimer: ReturnType<typeof setInterval> | undefined;
  private lastReceivedAt = 0;
  private probing = false;

  /** Resume frames of the current connection (and heartbeat pings): first, then in turns with `queue`. */
  private readonly urgent: Outgoing[] = [];
  private readonly queue: Outgoing[] = [];
  /** Whether the next frame comes from `queue` when both lists wait: they take turns. */
  private queueTurn = false;
  /** While the resumers queue their frames at hello: nothing is sent until all of them are queued. */
  private resuming = false;
  private readonly inFlight = new Map<number, Outgoing>();
  private nextId = 1;
  private calls = 0;
  /** Rooms whose sends wait after a passing refusal (lower-case room id). */
  private readonly sendPauses = new Map<string, SendPause>();
  /**
   * Rooms (lower case) with a `leaveRoom` waiting for its `room.leave`, and how many: their pushes
   * still on the way are the app's no longer and are dropped, not emitted as `room.message`.
   */
  private readonly leaving = new Map<string, number>();
  private bucket = { tokens: 0, capacity: 0, perMs: 0, at: 0 };

  private readonly presence = new Set<string>();
  private jobsFilter: JobsWatchPayload | undefined;
  private refreshing: Promise<AuthRefreshResult> | undefined;
  /**
   * The one `getAccessToken` call in flight, shared by every caller until it settles, even after a
   * caller gave up on it (fetchToken's timeout): with single-use refresh tokens a second refresh
   * while the first runs is a reuse, and the server answers it by revoking the session. `fresh`:
   * asked with a reason that rules out a cached token.
   */
  private tokenCall: { readonly answer: Promise<unknown>; readonly fresh: boolean } | undefined;
  private waiters: { resolve: (hello: HelloPayload) => void; reject: (error: GigwireError) => void }[] = [];
  /**
   * Cancels the client's own waits (sendMessage's backoff, room rejoin delays, the token fetch's
   * timeout): close() runs each, so no timer outlives the client and their callers fail CLOSED at once.
   */
  private readonly cancelOnClose = new Set<() => void>();

  private readonly rooms = new RoomTracker({
    join: async (roomId, sinceSeq, resume) =>
      (await this.enqueue(
        'room.join',
        sinceSeq === undefined ? { roomId } : { roomId, sinceSeq },
        this.requestTimeoutMs,
        resume,
      )) as { lastSeq: number },
    leave: async (roomId) => {
      // Joins belong to a connection and the server forgets them with it: offline there is nothing
      // to leave (waiting for a connection, the leave timed out), unless a join waiting to be sent
      // would join the room on the next connection, so the leave has to follow it.
      if (this.phase !== 'open' && this.phase !== 'closed' && !this.joinUnsent(roomId)) return;
      await endedWithConnection(this.enqueue('room.leave', { roomId }, this.requestTimeoutMs, false));
    },
    history: async (roomId, beforeSeq, limit) =>
      (await this.enqueue('room.history', { roomId, beforeSeq, limit }, this.requestTimeoutMs, true)) as {
        messages: RoomMessage[];
      },
    // Not after close(), which a handler may call while a run of held messages is emitted.
    emit: (message) => {
      if (this.phase !== 'closed') this.events.emit('room.message', message);
    },
    delay: (ms) => this.pause(ms),
    onError: (error) => {
      if (
        error instanceof GigwireError &&
        error.code !== ClientErrorCode.DISCONNECTED &&
        error.code !== ClientErrorCode.CLOSED
      ) {
        this.emitError(error);
      }
    },
    onRemoved: (roomId, error) =>
      this.events.emit('room.removed', {
        roomId,
        error:
          error instanceof GigwireError
            ? error
            : new GigwireError('FORBIDDEN', 'the server refused to rejoin the room', {
                details: { roomId },
                cause: error,
              }),
      }),
  });

  /**
   * What is restored at every hello, in order, before queued requests: presence subscriptions,
   * then every joined room with `sinceSeq` (the highest gap-free seq held).
   */
  private readonly resumers: (() => void)[] = [
    () => this.resumePresence(),
    () => this.rooms.resume(),
    () => this.resumeJobsWatch(),
  ];

  constructor(options: ClientOptions) {
    this.urls = typeof options.url === 'string' ? [options.url] : [...options.url];
    if (this.urls.length === 0) throw new TypeError('createClient: url must name at least one URL');
    this.encoding = options.encoding ?? Encoding.MSGPACK;
    this.requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.maxQueued = options.maxQueuedRequests ?? DEFAULT_MAX_QUEUED;
    this.reconnectOptions =
      options.reconnect === false ? undefined : { ...DEFAULT_RECONNECT, ...options.reconnect };
    this.refreshBeforeMs =
      options.tokenRefresh === false
        ? undefined
        : (options.tokenRefresh?.beforeExpiryMs ?? DEFAULT_REFRESH_BEFORE_EXPIRY_MS);
    this.heartbeat = options.heartbeat ?? true;
    this.WebSocketClass = resolveWebSocket(options.WebSocket);
    this.getAccessToken = options.getAccessToken;
    this.events = new Emitter<ClientEvents>((event, error) => {
      if (event === 'error') return;
      this.events.emit(
        'error',
        new GigwireError(ClientErrorCode.HANDLER_FAILED, `a "${String(event)}" handler threw`, {
          cause: error,
        }),
      );
    });
    void this.connect();
  }

  private readonly getAccessToken: ClientOptions['getAccessToken'];

  // --- public API ------------------------------------------------------------------------------

  get state(): ClientState {
    return this.phase;
  }

  get hello(): HelloPayload | undefined {
    return this.current;
  }

  get presenceSubscriptions(): ReadonlySet<string> {
    return this.presence;
  }

  on<E extends keyof ClientEvents>(event: E, handler: (payload: ClientEvents[E]) => void): () => void {
    return this.events.on(event, handler);
  }

  request<T extends ClientFrameType>(type: T, ...args: RequestArgs<T>): Promise<ReplyPayload<T>> {
    const [payload, options] = args;
    return this.enqueue(type, payload, options?.timeoutMs ?? this.requestTimeoutMs, false) as Promise<
      ReplyPayload<T>
    >;
  }

  async subscribePresence(userIds: readonly string[]): Promise<PresenceState[]> {
    const ids = [...new Set(userIds.map(canonicalId))];
    const replies = await Promise.all(
      chunks(ids, MAX_PRESENCE_IDS_PER_FRAME).map((chunk) =>
        this.request('presence.subscribe', { userIds: chunk }),
      ),
    );
    return replies.flatMap((reply) => reply.presence);
  }

  async unsubscribePresence(userIds: readonly string[]): Promise<void> {
    const ids = [...new Set(userIds.map(canonicalId))];
    const subscribeQueued = this.withdrawPresence(ids);
    // Subscriptions belong to a connection: without one there is nothing to end on the server,
    // unless a subscribe waiting for the next connection would start one there.
    if (this.phase !== 'open' && !subscribeQueued) return;
    await Promise.all(
      chunks(ids, MAX_PRESENCE_IDS_PER_FRAME).map((chunk) =>
        endedWithConnection(this.request('presence.unsubscribe', { userIds: chunk })),
      ),
    );
  }

  get jobsWatch(): JobsWatchPayload | undefined {
    return this.jobsFilter;
  }

  async watchJobs(filter: JobsWatchFilter = {}): Promise<void> {
    await this.request('jobs.watch', filter);
  }

  readNotifications(which: readonly string[] | 'all'): Promise<ReplyPayload<'notifications.read'>> {
    return this.request('notifications.read', which === 'all' ? { all: true } : { ids: [...which] });
  }

  markAllRead(upTo: string): Promise<ReplyPayload<'notifications.read'>> {
    return this.request('notifications.read', { all: true, upTo });
  }

  async unwatchJobs(): Promise<void> {
    const watchQueued = this.withdrawJobsWatch();
    // A watch belongs to a connection: without one there is nothing to end on the server, unless a
    // watch waiting for the next connection would start one there.
    if (this.phase !== 'open' && !watchQueued) return;
    await endedWithConnection(this.request('jobs.unwatch', {}));
  }

  joinRoom(roomId: string): Promise<{ lastSeq: number }> {
    return this.rooms.join(roomId);
  }

  leaveRoom(roomId: string): Promise<void> {
    // Until its `room.leave` is answered (the server pushes nothing of the room after that ok) or
    // fails, the room's pushes still on the way are dropped: emitted, they looked as if the app
    // were still in the room.
    const room = canonicalId(roomId);
    this.leaving.set(room, (this.leaving.get(room) ?? 0) + 1);
    return this.rooms.leave(roomId).finally(() => {
      const left = (this.leaving.get(room) ?? 1) - 1;
      if (left > 0) this.leaving.set(room, left);
      else this.leaving.delete(room);
    });
  }

  async sendMessage(roomId: string, body: string, options: SendMessageOptions = {}): Promise<SentMessage> {
    const clientMsgId = options.clientMsgId ?? newClientMsgId();
    const attempts = Math.max(1, options.attempts ?? DEFAULT_SEND_ATTEMPTS);
    const timeoutMs = options.timeoutMs ?? this.requestTimeoutMs;
    const payload = {
      roomId,
      clientMsgId,
      body,
      ...(options.meta === undefined ? {} : { meta: options.meta }),
    };
    // Every attempt keeps the place of the first call among the requests still waiting: a resend
    // after a drop or a timeout went to the end of the queue, behind the app's later messages still
    // waiting there (for the rate bucket, or the next connection), and was stored after them.
    const order = ++this.calls;
    const room = canonicalId(roomId);
    for (let attempt = 1; ; attempt += 1) {
      try {
        const reply = (await this.sendInTurn(room, order, payload, timeoutMs)) as ReplyPayload<'room.send'>;
        this.resumeSends(room);
        return { ...reply, clientMsgId };
      } catch (error) {
        if (!(error instanceof GigwireError) || !RESENDABLE.has(error.code) || attempt >= attempts) {
          this.resumeSends(room);
          throw withClientMsgId(error, clientMsgId);
        }
        // DISCONNECTED / TIMEOUT: the request queue already waits for the next connection.
        // UNAVAILABLE / RATE_LIMITED: the room's sends pause together (our own rate: the server says
        // how long; a busy room or a failover: back off), then go again in call order.
        if (error.code === 'UNAVAILABLE' || error.code === 'RATE_LIMITED') {
          this.pauseSends(
            room,
            retryAfterWait(error.details?.retryAfterMs) ??
              backoffDelay(attempt - 1, this.reconnectOptions ?? DEFAULT_RECONNECT),
          );
        }
      }
    }
  }

  /** A `sendMessage` attempt: queued at once, or when the room's pause ends, in call order. */
  private sendInTurn(room: string, order: number, payload: unknown, timeoutMs: number): Promise<unknown> {
    const paused = this.sendPauses.get(room);
    const send = () => this.enqueue('room.send', payload, timeoutMs, false, order, room);
    // A frame that is not valid is refused now, not after the pause.
    if (
      paused === undefined ||
      this.phase === 'closed' ||
      !ClientFrame.safeParse({ t: 'room.send', d: payload }).success
    )
      return send();
    let waiting = this.queue.length;
    for (const pause of this.sendPauses.values()) waiting += pause.waiting.length;
    if (waiting >= this.maxQueued) {
      return Promise.reject(
        new GigwireError(ClientErrorCode.QUEUE_FULL, `${this.maxQueued} requests are already waiting`, {
          requestType: 'room.send',
        }),
      );
    }
    return new Promise((resolve, reject) => {
      paused.waiting.push({ order, start: () => void send().then(resolve, reject), fail: reject });
      this.resumeSends(room);
    });
  }

  /** Pauses the room's sends for `ms` (or longer, if a pause running ends later). */
  private pauseSends(room: string, ms: number): void {
    const until = this.steadyNow() + ms;
    let paused = this.sendPauses.get(room);
    if (paused === undefined) {
      paused = { until, due: false, waiting: [] };
      this.sendPauses.set(room, paused);
    } else if (paused.due || until > paused.until) {
      paused.until = until;
      paused.due = false;
    } else {
      return;
    }
    const pause = paused;
    this.pause(ms).then(
      () => {
        if (this.sendPauses.get(room) !== pause || pause.until !== until || pause.due) return;
        pause.due = true;
        this.resumeSends(room);
      },
      (closed: GigwireError) => {
        if (this.sendPauses.get(room) === pause) this.sendPauses.delete(room);
        for (const waiting of pause.waiting.splice(0)) waiting.fail(closed);
      },
    );
  }

  /**
   * Ends the room's pause once its backoff is over and none of its sends is on the wire (one still
   * unanswered may be refused too, and then goes before the later ones): the waiting attempts are
   * queued in call order, around the room's sends held in the queue, before any is sent.
   */
  private resumeSends(room: string): void {
    const paused = this.sendPauses.get(room);
    if (paused === undefined || !paused.due) return;
    for (const outgoing of this.inFlight.values()) if (outgoing.sendRoom === room) return;
    this.sendPauses.delete(room);
    const resuming = this.resuming;
    this.resuming = true;
    try {
      for (const waiting of paused.waiting.sort((a, b) => a.order - b.order)) waiting.start();
    } finally {
      this.resuming = resuming;
    }
    this.flush();
  }

  /** A `room.send` of a paused room waits in the queue (it would overtake the refused ones). */
  private held(outgoing: Outgoing): boolean {
    return outgoing.frame.t === 'room.send' && this.sendPauses.has(canonicalId(outgoing.frame.d.roomId));
  }

  refreshToken(): Promise<AuthRefreshResult> {
    // Closed for good (the user signed out, say): no refresh over REST, no timer left behind.
    if (this.phase === 'closed') return Promise.reject(closedError('the client is closed', 'auth.refresh'));
    this.refreshing ??= (async () => {
      const { accessToken: token } = await this.fetchToken('refresh');
      this.token = token;
      return this.request('auth.refresh', { accessToken: token });
    })().finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  whenConnected(): Promise<HelloPayload> {
    if (this.phase === 'closed') return Promise.reject(closedError('the client is closed'));
    if (this.phase === 'open' && this.current !== undefined) return Promise.resolve(this.current);
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  close(): void {
    if (this.phase === 'closed') return;
    const socket = this.socket;
    this.dropConnection(ClientErrorCode.CLOSED, 'the client was closed');
    if (socket !== undefined) {
      try {
        socket.close(1000, 'client closed');
      } catch {
        // already closing
      }
    }
    this.finish(1000, 'closed by the client', true);
  }

  // --- connecting ------------------------------------------------------------------------------

  private async connect(): Promise<void> {
    const generation = ++this.generation;
    this.phase = 'connecting';
    // Never emit from inside createClient: handlers registered right after it must see everything.
    await Promise.resolve();
    if (this.isStale(generation)) return;
    const WebSocketClass = this.WebSocketClass;
    if (WebSocketClass === undefined) {
      this.emitError(
        new GigwireError(
          ClientErrorCode.CONNECT_FAILED,
          'no WebSocket implementation: pass the WebSocket option (Node 20: the ws package)',
        ),
      );
      this.finish(1006, 'no WebSocket implementation', false);
      return;
    }
    let credential: { accessToken: string; connectToken: string | undefined };
    try {
      credential = await this.fetchToken(this.tokenReason);
      // A token whose exp has passed would only earn a 401: ask once for a fresh one instead.
      if (this.tokenReason !== 'expired' && this.isExpired(credential.accessToken))
        credential = await this.fetchToken('expired');
    } catch (error) {
      if (this.isStale(generation)) return;
      this.emitError(error instanceof GigwireError ? error : tokenError(error));
      this.retryOrFinish(1006, 'no access token');
      return;
    }
    if (this.isStale(generation)) return;
    this.token = credential.accessToken;
    this.tokenReason = 'connect';
    this.url = this.urls[this.attemptsStarted % this.urls.length] as string;
    this.attemptsStarted += 1;

    let socket: WebSocketLike;
    try {
      socket = new WebSocketClass(this.url, [
        SUBPROTOCOL[this.encoding],
        credential.connectToken === undefined
          ? `${BEARER_SUBPROTOCOL_PREFIX}${credential.accessToken}`
          : `${CONNECT_SUBPROTOCOL_PREFIX}${credential.connectToken}`,
      ]);
      socket.binaryType = 'arraybuffer';
    } catch (error) {
      this.emitError(
        new GigwireError(ClientErrorCode.CONNECT_FAILED, `cannot open a WebSocket to ${this.url}`, {
          cause: error,
        }),
      );
      this.retryOrFinish(1006, 'cannot open a WebSocket');
      return;
    }
    this.socket = socket;
    this.opened = false;
    this.handshakeFailure = '';
    this.handshakeRetryAfterMs = undefined;
    // A refused upgrade (429 of the per-address upgrade limit, 503 of a node shutting down) names
    // when to come back; on our own shorter backoff a reconnect storm would only be refused again.
    watchRefusedUpgrade(socket, (status, retryAfterMs) => {
      if (this.socket !== socket || this.opened) return;
      this.handshakeFailure = `Unexpected server response: ${status}`;
      this.handshakeRetryAfterMs = retryAfterMs;
    });
    // From the attempt's start, not from open: a path that swallows the handshake (a silent drop)
    // would otherwise hold this attempt forever. Each attempt given up so in a row gives the next
    // twice as long (up to 4 times): on a network (or from a loaded server) where the handshake
    // takes 11 s, a fixed 10 s gave up every attempt and the client never got in.
    const helloWaitMs = Math.min(
      this.requestTimeoutMs * 2 ** Math.min(this.helloTimeouts, MAX_HELLO_WAIT_DOUBLINGS),
      MAX_TIMER_MS,
    );
    this.helloTimer = setTimeout(() => {
      if (this.socket !== socket) return;
      this.helloTimeouts += 1;
      if (!this.opened) this.handshakeFailure = `no handshake within ${helloWaitMs} ms`;
      this.abandonSocket(1006, 'no hello from the server');
    }, helloWaitMs);
    // Handlers stay attached for the socket's life (`ws` throws on an error event nobody listens
    // to); a socket that is no longer current is recognised and ignored.
    socket.onopen = () => {
      if (this.socket === socket) this.onOpen();
    };
    socket.onmessage = (event: MessageEventLike) => {
      if (this.socket === socket) this.onMessage(event.data);
    };
    socket.onerror = (event: unknown) => {
      // The first cause stands: after a refused upgrade, `ws` reports only that it was aborted.
      if (this.socket === socket && !this.opened && this.handshakeFailure === '')
        this.handshakeFailure = describeErrorEvent(event);
    };
    socket.onclose = (event: CloseEventLike) => {
      if (this.socket === socket) this.onClose(event.code, event.reason);
    };
  }

  private async fetchToken(
    reason: TokenReason,
  ): Promise<{ accessToken: string; connectToken: string | undefined }> {
    let answer: unknown;
    let timer: Timer | undefined;
    let cancel: (() => void) | undefined;
    let waiting = true;
    try {
      // Bounded: a fetch that never settles (a refresh call on a dead network) would otherwise hold
      // this attempt, and with it every reconnect, forever. The call itself goes on: the next caller
      // waits for it rather than starting another.
      answer = await Promise.race([
        this.sharedTokenCall(reason, () => waiting),
        new Promise<never>((_, reject) => {
          cancel = () => {
            clearTimeout(timer);
            reject(closedError('the client is closed'));
          };
          this.cancelOnClose.add(cancel);
          timer = setTimeout(
            () =>
              reject(
                new GigwireError(
                  ClientErrorCode.TOKEN_UNAVAILABLE,
                  `getAccessToken did not answer within ${this.requestTimeoutMs} ms`,
                ),
              ),
            this.requestTimeoutMs,
          );
        }),
      ]);
    } catch (error) {
      throw tokenError(error);
    } finally {
      waiting = false;
      clearTimeout(timer);
      if (cancel !== undefined) this.cancelOnClose.delete(cancel);
    }
    if (typeof answer === 'string' && answer !== '') return { accessToken: answer, connectToken: undefined };
    if (typeof answer === 'object' && answer !== null) {
      const { accessToken, connectToken } = answer as { accessToken?: unknown; connectToken?: unknown };
      if (typeof accessToken === 'string' && accessToken !== '') {
        return {
          accessToken,
          connectToken: typeof connectToken === 'string' && connectToken !== '' ? connectToken : undefined,
        };
      }
    }
    throw new GigwireError(ClientErrorCode.TOKEN_UNAVAILABLE, 'getAccessToken returned no token');
  }

  /**
   * The answer of the `getAccessToken` call in flight, or of a new one when none runs. A `connect`
   * call may answer with a cached token, which will not do for a caller that needs a fresh one: that
   * caller waits for it to settle and then asks, so calls still never overlap.
   */
  private async sharedTokenCall(reason: TokenReason, stillWaiting: () => boolean): Promise<unknown> {
    const fresh = reason !== 'connect';
    for (let call = this.tokenCall; call !== undefined; call = this.tokenCall) {
      if (call.fresh || !fresh) return call.answer;
      await call.answer.catch(() => undefined);
      // Nobody would use the answer: a refresh made now would only spend a refresh token.
      if (!stillWaiting()) return undefined;
    }
    const request: TokenRequest = { reason, previous: this.token };
    // A synchronous throw becomes this call's rejection, shared like any answer.
    const answer = new Promise<unknown>((resolve) => resolve(this.getAccessToken(request)));
    const call = { answer, fresh };
    this.tokenCall = call;
    const settled = () => {
      if (this.tokenCall === call) this.tokenCall = undefined;
    };
    answer.then(settled, settled);
    return answer;
  }

  /** Resolves after `ms`; close() rejects it at once with CLOSED (and clears its timer). */
  private pause(ms: number): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.phase === 'closed') {
        reject(closedError('the client is closed'));
        return;
      }
      const cancel = () => {
        clearTimeout(timer);
        reject(closedError('the client is closed'));
      };
      const timer = setTimeout(
        () => {
          this.cancelOnClose.delete(cancel);
          resolve();
        },
        Math.min(ms, MAX_TIMER_MS),
      );
      this.cancelOnClose.add(cancel);
    });
  }

  private isExpired(token: string): boolean {
    const expiresAt = tokenExpiresAt(token);
    return expiresAt !== undefined && expiresAt - this.clockOffsetMs <= Date.now();
  }

  private isStale(generation: number): boolean {
    return this.phase === 'closed' || generation !== this.generation;
  }

  private onOpen(): void {
    this.opened = true;
    this.unexplainedFailures = 0;
    this.nextFreshTokenAt = UNEXPLAINED_FAILURES_BEFORE_FRESH_TOKEN;
    // hello is the server's first frame; its timer (started with the attempt) still runs.
    this.lastReceivedAt = this.steadyNow();
  }

  private onClose(code: number, reason: string): void {
    const wasOpen = this.opened;
    this.socket = undefined;
    this.dropConnection(ClientErrorCode.DISCONNECTED, `connection closed (${code})`);
    if (!wasOpen) {
      this.onHandshakeFailed();
      return;
    }
    const action = this.reconnectOptions === undefined ? CloseAction.STOP : closeAction(code);
    if (action === CloseAction.STOP) {
      this.events.emit('disconnected', { code, reason, action, retryInMs: undefined });
      this.finish(code, reason, false);
      return;
    }
    if (action === CloseAction.REAUTHENTICATE) this.tokenReason = 'expired';
    // Jittered from the first attempt, whatever the code: a 1006 is also what every client of a
    // crashed node (or one behind a restarted proxy) sees at the same instant, and going at once
    // would bring them all to the next node together.
    const retryInMs = this.scheduleReconnect();
    this.events.emit('disconnected', { code, reason, action, retryInMs });
  }

  /** The socket closed before it opened: server down, refused upgrade (401), network. */
  private onHandshakeFailed(): void {
    const cause = this.handshakeFailure;
    const retryAfterMs = this.handshakeRetryAfterMs;
    if (/\b401\b/.test(cause)) {
      this.tokenReason = 'expired';
    } else if (cause === '') {
      // Browsers hide the cause: after a few unexplained failures in a row, suspect the token. Still
      // failing with a fresh one (offline, a proxy that blocks WebSockets, a server down), the token
      // was not it: ask again after twice as many (3, 6, 12…), not a REST refresh every third
      // attempt for the whole outage, each a chance to lose a rotated refresh token on that network.
      this.unexplainedFailures += 1;
      if (this.unexplainedFailures >= this.nextFreshTokenAt) {
        this.nextFreshTokenAt *= 2;
        this.tokenReason = 'expired';
      }
    }
    this.emitError(
      new GigwireError(
        ClientErrorCode.CONNECT_FAILED,
        `could not connect to ${this.url}${cause === '' ? '' : `: ${cause}`}`,
        retryAfterMs === undefined ? {} : { details: { retryAfterMs } },
      ),
    );
    this.retryOrFinish(1006, cause === '' ? 'connection failed' : cause, retryAfterMs);
  }

  private retryOrFinish(code: number, reason: string, retryAfterMs?: number): void {
    if (this.phase === 'closed') return;
    if (this.reconnectOptions === undefined) this.finish(code, reason, false);
    else this.scheduleReconnect(retryAfterMs);
  }

  /**
   * The next attempt after a full-jitter delay (random below the current ceiling); each one grows
   * the ceiling until a connection has lasted `stableAfterMs`. A refused upgrade's `Retry-After`
   * (at most MAX_UPGRADE_RETRY_AFTER_MS) comes first, the jittered delay after it, so the clients
   * all told the same time do not come back together either.
   */
  private scheduleReconnect(retryAfterMs?: number): number | undefined {
    const options = this.reconnectOptions;
    if (options === undefined || this.phase === 'closed') return undefined;
    const delay =
      Math.min(retryAfterMs ?? 0, MAX_UPGRADE_RETRY_AFTER_MS) + backoffDelay(this.attempt, options);
    this.attempt += 1;
    this.phase = 'backoff';
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      void this.connect();
    }, delay);
    return delay;
  }

  /** Gives up on the current socket without waiting for its close event (dead TCP may take minutes). */
  private abandonSocket(code: number, reason: string): void {
    const socket = this.socket;
    if (socket === undefined) return;
    try {
      socket.close(1000, reason);
    } catch {
      // closing anyway
    }
    this.onClose(code, reason);
  }

  /** Forgets everything that belonged to the current connection; requests in flight fail with `code`. */
  private dropConnection(code: ClientErrorCode, message: string): void {
    this.socket = undefined;
    this.current = undefined;
    this.opened = false;
    this.probing = false;
    for (const timer of [this.helloTimer, this.stableTimer, this.refreshTimer, this.flushTimer]) {
      clearTimeout(timer);
    }
    clearInterval(this.heartbeatTimer);
    this.helloTimer = this.stableTimer = this.refreshTimer = this.flushTimer = undefined;
    this.heartbeatTimer = undefined;
    const inFlight = [...this.inFlight.values()];
    this.inFlight.clear();
    for (const outgoing of inFlight)
      this.settle(outgoing, new GigwireError(code, message, { requestType: outgoing.type }));
    // Resume frames were for that connection; the next one builds its own.
    for (const outgoing of this.urgent.splice(0)) {
      this.settle(outgoing, new GigwireError(code, message, { requestType: outgoing.type }));
    }
  }

  /** Terminal. */
  private finish(code: number, reason: string, byClient: boolean): void {
    if (this.phase === 'closed') return;
    this.phase = 'closed';
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    this.dropConnection(ClientErrorCode.CLOSED, 'the client is closed');
    for (const outgoing of this.queue.splice(0)) {
      this.settle(outgoing, closedError('the client is closed', outgoing.type));
    }
    for (const waiter of this.waiters.splice(0)) waiter.reject(closedError('the client is closed'));
    for (const cancel of [...this.cancelOnClose]) cancel();
    this.cancelOnClose.clear();
    this.events.emit('closed', { code, reason, byClient });
  }

  // --- receiving -------------------------------------------------------------------------------

  private onMessage(raw: unknown): void {
    this.lastReceivedAt = this.steadyNow();
    const data = messageData(raw);
    if (data === undefined) {
      this.emitError(new GigwireError(ClientErrorCode.BAD_REPLY, 'received a message of an unreadable type'));
      return;
    }
    const decoded = this.codec.decodeServer(data, this.encoding);
    if (!decoded.ok) {
      // A push type of a newer server: ignored, as PROTOCOL.md asks.
      if (decoded.code === 'UNKNOWN_TYPE' && decoded.id === undefined) return;
      const error = new GigwireError(ClientErrorCode.BAD_REPLY, `unreadable frame: ${decoded.message}`);
      const outgoing = decoded.id === undefined ? undefined : this.takeInFlight(decoded.id);
      if (outgoing === undefined) this.emitError(error);
      else this.settle(outgoing, error);
      return;
    }
    this.onFrame(decoded.frame);
  }

  private onFrame(frame: ServerFrame): void {
    switch (frame.t) {
      case 'ok': {
        const outgoing = this.takeInFlight(frame.id);
        if (outgoing !== undefined) this.settleOk(outgoing, frame.d);
        return;
      }
      case 'error': {
        const { code, message, details } = frame.d;
        const outgoing = frame.id === undefined ? undefined : this.takeInFlight(frame.id);
        if (outgoing !== undefined && code === 'RATE_LIMITED' && this.sendAgainLater(outgoing, details))
          return;
        const error = new GigwireError(code, message, {
          ...(details === undefined ? {} : { details }),
          ...(outgoing === undefined ? {} : { requestType: outgoing.type }),
        });
        if (outgoing === undefined) this.emitError(error);
        else this.settle(outgoing, error);
        return;
      }
      case 'hello':
        // One per connection: a second would arm a second heartbeat and stable timer over the
        // first ones, which then nothing clears, not even close().
        if (this.current !== undefined) return;
        this.onHello(frame.d);
        break;
      case 'presence':
        this.events.emit('presence', frame.d);
        break;
      case 'notification':
        this.events.emit('notification', frame.d);
        break;
      case 'notifications.read':
        this.events.emit('notifications.read', frame.d);
        break;
      case 'wallet':
        this.events.emit('wallet', frame.d);
        break;
      case 'market':
        this.events.emit('market', frame.d);
        break;
      case 'job.posted':
        this.events.emit('job.posted', frame.d);
        break;
      case 'room.message':
        // A room being left: pushes sent before the server had the leave are no longer the app's
        // (emitted raw, they looked as if it were still in the room).
        if (!this.rooms.onMessage(frame.d) && !this.leaving.has(canonicalId(frame.d.roomId)))
          this.events.emit('room.message', frame.d);
        break;
      case 'room.member':
        this.onRoomMember(frame.d);
        break;
      default:
        break;
    }
    this.events.emit('push', frame);
  }

  private onRoomMember({ roomId, userId, change }: Extract<ServerFrame, { t: 'room.member' }>['d']): void {
    // Removed from the room (on another device, or by its creator): rejoining would be refused.
    if (change !== 'removed' || userId !== this.current?.userId || !this.rooms.forget(roomId)) return;
    this.events.emit('room.removed', {
      roomId,
      error: new GigwireError('FORBIDDEN', 'you were removed from the room', {
        details: { roomId, userId, change },
      }),
    });
  }

  private onHello(hello: HelloPayload): void {
    clearTimeout(this.helloTimer);
    this.helloTimer = undefined;
    this.helloTimeouts = 0;
    this.clockOffsetMs = hello.serverTime - Date.now();
    this.current = hello;
    this.phase = 'open';
    this.bucket = {
      capacity: Math.max(1, Math.floor(hello.limits.maxBurst * RATE_SAFETY)),
      tokens: Math.max(1, Math.floor(hello.limits.maxBurst * RATE_SAFETY)),
      perMs: (hello.limits.maxMessagesPerSecond * RATE_SAFETY) / 1000,
      at: this.steadyNow(),
    };
    this.queueTurn = false;
    const socket = this.socket;
    const stableAfterMs = this.reconnectOptions?.stableAfterMs;
    if (stableAfterMs !== undefined) {
      this.stableTimer = setTimeout(() => {
        if (this.socket === socket) this.attempt = 0;
      }, stableAfterMs);
    }
    if (this.heartbeat) this.startHeartbeat(hello.heartbeatMs);
    const expiresAt = this.token === undefined ? undefined : tokenExpiresAt(this.token);
    if (expiresAt !== undefined) this.scheduleRefresh(expiresAt);

    const reconnected = this.connections > 0;
    this.connections += 1;
    // Each enqueue flushes: the first resume frame would otherwise let the app's queued requests out
    // before the later resumers queued theirs (a newer jobs.watch of the app overtaken by the old one).
    this.resuming = true;
    try {
      for (const resume of this.resumers) resume();
    } finally {
      this.resuming = false;
    }
    this.flush();
    for (const waiter of this.waiters.splice(0)) waiter.resolve(hello);
    this.events.emit('hello', hello);
    this.events.emit('connected', { hello, reconnected });
  }

  // --- sending ---------------------------------------------------------------------------------

  private enqueue(
    type: ClientFrameType,
    payload: unknown,
    timeoutMs: number,
    urgent: boolean,
    /** The place among waiting requests (a resend keeps its first call's); default: after every call so far. */
    order?: number,
    /** For `sendMessage`: the room (lower case). */
    sendRoom?: string,
  ): Promise<unknown> {
    return new Promise((resolve, reject) => {
      if (this.phase === 'closed') {
        reject(closedError('the client is closed', type));
        return;
      }
      const parsed = ClientFrame.safeParse(payload === undefined ? { t: type } : { t: type, d: payload });
      if (!parsed.success) {
        const errors = parsed.error.issues.map((issue) => ({
          path: issue.path.map(String).join('.'),
          message: issue.message,
        }));
        const first = errors[0];
        reject(
          new GigwireError(
            'VALIDATION_FAILED',
            `invalid "${type}" request${first === undefined ? '' : `: ${first.path}: ${first.message}`}`,
            { details: { errors }, requestType: type },
          ),
        );
        return;
      }
      if (!urgent && this.queue.length >= this.maxQueued) {
        reject(
          new GigwireError(ClientErrorCode.QUEUE_FULL, `${this.maxQueued} requests are already waiting`, {
            requestType: type,
          }),
        );
        return;
      }
      // Not waiting for the reply: the server forgets a subscription only with the connection.
      if (parsed.data.t === 'presence.unsubscribe') this.withdrawPresence(parsed.data.d.userIds);
      if (parsed.data.t === 'jobs.unwatch') this.withdrawJobsWatch();
      const outgoing: Outgoing = {
        type,
        frame: parsed.data,
        resolve,
        reject,
        timeoutMs,
        urgent,
        order: order ?? ++this.calls,
        sendRoom,
        timer: undefined,
        id: undefined,
        withdrawnUserIds: new Set(),
        watchWithdrawn: false,
      };
      // A resume frame, made at hello, may wait behind many others (every joined room) through no
      // fault of the server: its timeout starts when it is sent. Anything else waits for a
      // connection and is bounded from the call.
      if (!urgent || this.phase !== 'open') this.startTimer(outgoing);
      const list = urgent ? this.urgent : this.queue;
      const at = order === undefined ? -1 : list.findIndex((waiting) => waiting.order > order);
      list.splice(at === -1 ? list.length : at, 0, outgoing);
      this.flush();
    });
  }

  private startTimer(outgoing: Outgoing): void {
    outgoing.timer = setTimeout(
      () => this.expire(outgoing, outgoing.timeoutMs),
      Math.min(outgoing.timeoutMs, MAX_TIMER_MS),
    );
  }

  /** Every request not yet answered: sent, or waiting to be. */
  private *pending(): Iterable<Outgoing> {
    yield* this.inFlight.values();
    yield* this.urgent;
    yield* this.queue;
  }

  /**
   * The app no longer wants these users' presence: not restored, and a subscribe awaiting its ok
   * no longer adds them. Returns whether an unsent subscribe holds one of them (it will start a
   * subscription on the next connection, so an unsubscribe has to follow it).
   */
  private withdrawPresence(userIds: readonly string[]): boolean {
    const withdrawn = new Set(userIds);
    let unsent = false;
    for (const id of withdrawn) this.presence.delete(id);
    for (const outgoing of this.pending()) {
      if (outgoing.frame.t !== 'presence.subscribe') continue;
      for (const id of outgoing.frame.d.userIds) {
        if (!withdrawn.has(id)) continue;
        outgoing.withdrawnUserIds.add(id);
        if (outgoing.id === undefined) unsent = true;
      }
    }
    return unsent;
  }

  /** Whether a `room.join` of this (canonical) room id waits to be sent on the next connection. */
  private joinUnsent(roomId: string): boolean {
    for (const outgoing of this.pending()) {
      if (outgoing.frame.t === 'room.join' && outgoing.id === undefined && outgoing.frame.d.roomId === roomId)
        return true;
    }
    return false;
  }

  /** As withdrawPresence, for the job-board watch. */
  private withdrawJobsWatch(): boolean {
    let unsent = false;
    this.jobsFilter = undefined;
    for (const outgoing of this.pending()) {
      if (outgoing.frame.t !== 'jobs.watch') continue;
      outgoing.watchWithdrawn = true;
      if (outgoing.id === undefined) unsent = true;
    }
    return unsent;
  }

  /** Sends queued frames while connected and the rate bucket has tokens; waits for a token otherwise. */
  private flush(): void {
    if (this.phase !== 'open' || this.resuming || this.flushTimer !== undefined) return;
    const socket = this.socket;
    // Closing (the server's close frame arrived, its close event has not): a WebSocket drops what
    // is sent now without a word, and the request would fail DISCONNECTED ("maybe applied") though
    // it never left. It waits for the next connection instead; the close event comes next.
    if (socket === undefined || socket.readyState !== SOCKET_OPEN) return;
    for (;;) {
      // The first request of the queue that is not held by a paused room.
      const next =
        this.sendPauses.size === 0
          ? Math.min(0, this.queue.length - 1)
          : this.queue.findIndex((waiting) => !this.held(waiting));
      if (this.urgent.length === 0 && next === -1) return;
      const now = this.steadyNow();
      const bucket = this.bucket;
      bucket.tokens = Math.min(bucket.capacity, bucket.tokens + (now - bucket.at) * bucket.perMs);
      bucket.at = now;
      if (bucket.tokens < 1) {
        const waitMs = Math.max(1, Math.ceil((1 - bucket.tokens) / bucket.perMs));
        this.flushTimer = setTimeout(() => {
          this.flushTimer = undefined;
          this.flush();
        }, waitMs);
        return;
      }
      // Turns while both wait: resume frames first, but a long resume (hundreds of rooms at the
      // paced rate) must not hold the app's requests until they time out.
      const fromQueue =
        this.urgent.length === 0 ||
        (next !== -1 && this.queueTurn && this.mayOvertakeResume(this.queue[next]));
      const outgoing = fromQueue ? this.queue.splice(next, 1)[0] : this.urgent.shift();
      if (outgoing === undefined) return;
      this.queueTurn = !fromQueue;
      bucket.tokens -= 1;
      const id = this.allocateId();
      outgoing.id = id;
      this.inFlight.set(id, outgoing);
      if (outgoing.timer === undefined) this.startTimer(outgoing);
      try {
        socket.send(this.codec.encode({ ...outgoing.frame, id } as ClientFrame, this.encoding));
      } catch (error) {
        this.inFlight.delete(id);
        this.settle(
          outgoing,
          new GigwireError(ClientErrorCode.DISCONNECTED, 'the socket refused the frame', {
            requestType: outgoing.type,
            cause: error,
          }),
        );
      }
    }
  }

  /**
   * A frame the server refused RATE_LIMITED with `retryAfterMs` for the connection's rate was not
   * processed: it goes back to its place in its list, and nothing is sent before that time. The
   * server may start a reconnect from the bucket the user's closed socket left (PROTOCOL.md,
   * Limits), smaller than the `maxBurst` of hello this client paces from, so the requests queued
   * while offline were partly refused and their callers failed, though they kept to the limits.
   * Its timeout still runs (from the call, or from the first send of a resume frame).
   */
  private sendAgainLater(outgoing: Outgoing, details: Record<string, unknown> | undefined): boolean {
    const retryAfterMs = retryAfterWait(details?.retryAfterMs);
    if (retryAfterMs === undefined) return false;
    if (outgoing.timer === undefined) return false;
    // Within one token's time at the announced rate: the connection's bucket, whatever the type.
    const oneTokenMs = Math.ceil(1000 / (this.current?.limits.maxMessagesPerSecond ?? 1));
    if (ROOM_READS.has(outgoing.type) && retryAfterMs > oneTokenMs) return false;
    outgoing.id = undefined;
    const list = outgoing.urgent ? this.urgent : this.queue;
    const at = list.findIndex((waiting) => waiting.order > outgoing.order);
    list.splice(at === -1 ? list.length : at, 0, outgoing);
    // The server's bucket is empty: wait as it says before the next frame, then pace as before.
    const now = this.steadyNow();
    const bucket = this.bucket;
    bucket.tokens = Math.min(
      bucket.capacity,
      bucket.tokens + (now - bucket.at) * bucket.perMs,
      1 - retryAfterMs * bucket.perMs,
    );
    bucket.at = now;
    this.flush();
    // Off the wire, back in the queue: a pause of its room waiting for it may end.
    if (outgoing.sendRoom !== undefined) this.resumeSends(outgoing.sendRoom);
    return true;
  }

  /**
   * A queued jobs.watch / unwatch is the app's newer word than a resumed watch still waiting: sent
   * before it, the server would end up with the older filter.
   */
  private mayOvertakeResume(outgoing: Outgoing | undefined): boolean {
    const type = outgoing?.frame.t;
    if (type !== 'jobs.watch' && type !== 'jobs.unwatch') return true;
    return !this.urgent.some((waiting) => waiting.frame.t === 'jobs.watch');
  }

  private allocateId(): number {
    let id = this.nextId;
    while (this.inFlight.has(id)) id = id >= MAX_REQUEST_ID ? 1 : id + 1;
    this.nextId = id >= MAX_REQUEST_ID ? 1 : id + 1;
    return id;
  }

  private takeInFlight(id: number): Outgoing | undefined {
    const outgoing = this.inFlight.get(id);
    if (outgoing !== undefined) this.inFlight.delete(id);
    return outgoing;
  }

  private expire(outgoing: Outgoing, timeoutMs: number): void {
    outgoing.timer = undefined;
    if (outgoing.id !== undefined) {
      if (this.inFlight.get(outgoing.id) !== outgoing) return;
      this.inFlight.delete(outgoing.id);
    } else {
      for (const list of [this.urgent, this.queue]) {
        const index = list.indexOf(outgoing);
        if (index !== -1) list.splice(index, 1);
      }
    }
    outgoing.reject(
      new GigwireError(ClientErrorCode.TIMEOUT, `no reply to "${outgoing.type}" within ${timeoutMs} ms`, {
        requestType: outgoing.type,
      }),
    );
  }

  private settle(outgoing: Outgoing, error: GigwireError): void {
    clearTimeout(outgoing.timer);
    outgoing.timer = undefined;
    outgoing.reject(error);
  }

  /**
   * Validates an `ok` payload against the request type and applies its side effects synchronously,
   * before any later frame is handled (a presence push right behind a subscribe reply must be
   * emitted after the reply's states, not before).
   */
  private settleOk(outgoing: Outgoing, payload: unknown): void {
    clearTimeout(outgoing.timer);
    outgoing.timer = undefined;
    const schema: z.ZodType = ReplyPayloads[outgoing.type];
    const parsed = schema.safeParse(payload);
    if (!parsed.success) {
      if (schema instanceof z.ZodUndefined) {
        outgoing.resolve(undefined);
        return;
      }
      outgoing.reject(
        new GigwireError(
          ClientErrorCode.BAD_REPLY,
          `the reply to "${outgoing.type}" does not match the protocol`,
          {
            requestType: outgoing.type,
          },
        ),
      );
      return;
    }
    const frame = outgoing.frame;
    if (frame.t === 'presence.subscribe') {
      // An unsubscribe made meanwhile is the app's latest word (and reached the server after this).
      const withdrawn = outgoing.withdrawnUserIds;
      for (const id of frame.d.userIds) if (!withdrawn.has(id)) this.presence.add(id);
      for (const state of (parsed.data as ReplyPayload<'presence.subscribe'>).presence) {
        if (!withdrawn.has(state.userId)) this.events.emit('presence', state);
      }
    } else if (frame.t === 'jobs.watch') {
      if (!outgoing.watchWithdrawn) this.jobsFilter = frame.d;
    } else if (frame.t === 'auth.refresh') {
      this.scheduleRefresh((parsed.data as ReplyPayload<'auth.refresh'>).expiresAt);
    }
    outgoing.resolve(parsed.data);
  }

  // --- resume, token refresh, heartbeat ---------------------------------------------------------

  private resumePresence(): void {
    for (const chunk of chunks([...this.presence], MAX_PRESENCE_IDS_PER_FRAME)) this.resubscribe(chunk, true);
  }

  /**
   * After a passing refusal of a resumed frame: waits (the server's retryAfterMs, else the backoff)
   * and runs `again`, unless a newer connection took over meanwhile (its own resume sends it) or
   * the client closed.
   */
  private retryResume(error: GigwireError, attempt: number, again: () => void): void {
    const connection = this.current;
    this.pause(
      retryAfterWait(error.details?.retryAfterMs) ??
        backoffDelay(attempt, this.reconnectOptions ?? DEFAULT_RECONNECT),
    ).then(
      () => {
        if (connection !== undefined && this.current === connection) again();
      },
      () => undefined, // closed
    );
  }

  private resubscribe(userIds: string[], retry: boolean, attempt = 0): void {
    this.enqueue('presence.subscribe', { userIds }, this.requestTimeoutMs, true).catch((error: unknown) => {
      if (!(error instanceof GigwireError)) return;
      if (error.code === 'FORBIDDEN') {
        // A contact removed while we were away: drop the refused ids, keep the others.
        const refused = new Set(stringList(error.details?.userIds) ?? userIds);
        for (const id of refused) this.presence.delete(id);
        const rest = userIds.filter((id) => !refused.has(id));
        if (retry && rest.length > 0) this.resubscribe(rest, false);
      } else if (RESUME_RETRYABLE.has(error.code)) {
        // Still counted as subscribed here: subscribed again there, what the app still wants.
        this.retryResume(error, attempt, () => {
          const wanted = userIds.filter((id) => this.presence.has(id));
          if (wanted.length > 0) this.resubscribe(wanted, retry, attempt + 1);
        });
      }
      if (error.code !== ClientErrorCode.DISCONNECTED && error.code !== ClientErrorCode.CLOSED) {
        this.emitError(error);
      }
    });
  }

  private resumeJobsWatch(attempt = 0): void {
    const filter = this.jobsFilter;
    if (filter === undefined) return;
    this.enqueue('jobs.watch', filter, this.requestTimeoutMs, true).catch((error: unknown) => {
      if (!(error instanceof GigwireError)) return;
      if (RESUME_RETRYABLE.has(error.code)) {
        // Unless the app changed or ended its watch meanwhile (that request stands).
        this.retryResume(error, attempt, () => {
          if (this.jobsFilter === filter) this.resumeJobsWatch(attempt + 1);
        });
      }
      if (error.code !== ClientErrorCode.DISCONNECTED && error.code !== ClientErrorCode.CLOSED) {
        this.emitError(error);
      }
    });
  }

  /** Schedules `refreshToken()` ahead of `expiresAt` (server clock, ms). */
  private scheduleRefresh(expiresAt: number): void {
    clearTimeout(this.refreshTimer);
    this.refreshTimer = undefined;
    if (this.refreshBeforeMs === undefined || this.phase !== 'open') return;
    const remaining = expiresAt - this.clockOffsetMs - Date.now();
    if (remaining <= 0) return;
    const lead = Math.min(this.refreshBeforeMs, remaining / 2);
    this.refreshTimer = setTimeout(
      () => this.scheduledRefresh(expiresAt, 0),
      Math.min(remaining - lead, MAX_TIMER_MS),
    );
  }

  /**
   * The timer's `refreshToken()`. A failure for a passing reason (the token source's network, a
   * timeout, RATE_LIMITED, UNAVAILABLE) is tried again on the same connection after the server's
   * retry-after or a backoff, while that still comes before `expiresAt`: before, the connection was
   * closed 4001 at `exp` after one blip (review 33). A refusal (UNAUTHORIZED, FORBIDDEN…) is not.
   */
  private scheduledRefresh(expiresAt: number, attempt: number): void {
    this.refreshTimer = undefined;
    const connection = this.current;
    this.refreshToken().catch((error: unknown) => {
      // Not fatal: at exp the server closes 4001 and the client reauthenticates.
      if (!(error instanceof GigwireError) || error.code === ClientErrorCode.CLOSED) return;
      this.emitError(error);
      // Another connection (its hello schedules its own) or a newer schedule (an app's
      // `refreshToken()` that succeeded meanwhile) took over.
      if (!REFRESH_RETRYABLE.has(error.code) || this.phase !== 'open' || this.current !== connection) return;
      if (this.refreshTimer !== undefined) return;
      const delay =
        refreshRetryAfter(error.details) ?? backoffDelay(attempt, this.reconnectOptions ?? DEFAULT_RECONNECT);
      if (delay >= expiresAt - this.clockOffsetMs - Date.now()) return;
      this.refreshTimer = setTimeout(() => this.scheduledRefresh(expiresAt, attempt + 1), delay);
    });
  }

  private startHeartbeat(heartbeatMs: number): void {
    const socket = this.socket;
    this.heartbeatTimer = setInterval(() => {
      if (this.socket !== socket || this.probing || this.steadyNow() - this.lastReceivedAt < heartbeatMs)
        return;
      this.probing = true;
      this.enqueue('ping', undefined, heartbeatMs, true).then(
        () => {
          this.probing = false;
        },
        (error: unknown) => {
          this.probing = false;
          if (
            error instanceof GigwireError &&
            error.code === ClientErrorCode.TIMEOUT &&
            this.socket === socket
          ) {
            this.abandonSocket(1006, `no reply to ping within ${heartbeatMs} ms`);
          }
        },
      );
    }, heartbeatMs);
  }

  private emitError(error: GigwireError): void {
    this.events.emit('error', error);
  }
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

function stringList(value: unknown): string[] | undefined {
  return Array.isArray(value) && value.every((item) => typeof item === 'string') ? value : undefined;
}

function newClientMsgId(): string {
  const crypto = (
    globalThis as {
      crypto?: { randomUUID?: () => string; getRandomValues?: (array: Uint8Array) => Uint8Array };
    }
  ).crypto;
  if (typeof crypto?.randomUUID === 'function') return crypto.randomUUID();
  // Browsers outside secure contexts have no randomUUID, but do have getRandomValues.
  if (typeof crypto?.getRandomValues === 'function') {
    return [...crypto.getRandomValues(new Uint8Array(16))]
      .map((b) => b.toString(16).padStart(2, '0'))
      .join('');
  }
  throw new Error('no crypto.getRandomValues: pass options.clientMsgId');
}

/** The error of a send that gave up, naming its clientMsgId so the caller can finish the same message. */
function withClientMsgId(error: unknown, clientMsgId: string): unknown {
  if (!(error instanceof GigwireError)) return error;
  return new GigwireError(error.code, error.message, {
    details: { ...error.details, clientMsgId },
    ...(error.requestType === undefined ? {} : { requestType: error.requestType }),
    cause: error,
  });
}

/**
 * A leave, unsubscribe or unwatch whose connection dropped before its `ok` did what it asked all
 * the same: the server forgets a connection's joins, subscriptions and watch with it, and the
 * client no longer restores them. Offline such a call resolves at once; failing DISCONNECTED
 * there, it told the app that something still stood which did not.
 */
async function endedWithConnection(request: Promise<unknown>): Promise<void> {
  try {
    await request;
  } catch (error) {
    if (!(error instanceof GigwireError && error.code === ClientErrorCode.DISCONNECTED)) throw error;
  }
}

function closedError(message: string, requestType?: ClientFrameType): GigwireError {
  return new GigwireError(ClientErrorCode.CLOSED, message, requestType === undefined ? {} : { requestType });
}

function tokenError(cause: unknown): GigwireError {
  if (cause instanceof GigwireError) return cause;
  return new GigwireError(
    ClientErrorCode.TOKEN_UNAVAILABLE,
    `getAccessToken failed${cause instanceof Error ? `: ${cause.message}` : ''}`,
    { cause },
  );
}
