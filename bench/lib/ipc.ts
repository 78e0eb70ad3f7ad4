/**
 * The messages between the orchestrator and its load-generator workers (bench/load/worker.ts),
 * carried over Node's child-process IPC channel (JSON). Each request names its type and gets one
 * reply with the same `reqId`; `Requests` maps every type to its request and result bodies.
 */
import type { HistogramData } from './histogram.js';
import type {
  JitterRunRequest,
  JitterRunResult,
  JitterSetupRequest,
  JitterSetupResult,
} from './jitter-ipc.js';

/** `ws`: the lean WebSocket client speaking gigwire frames (gigwire, raw uWS); `socketio`: socket.io-client. */
export type ClientKind = 'ws' | 'socketio';

export interface ClientSpec {
  /** Global index of the client in the scenario (credential index). */
  readonly index: number;
  readonly userId: string;
  readonly token: string;
  /** gigwire: open the socket with this connect token instead of the access token. */
  readonly connectToken?: string;
}

export interface ConnectRequest {
  readonly kind: ClientKind;
  readonly url: string;
  readonly clients: readonly ClientSpec[];
  /** Source addresses to rotate over (127.0.0.x), one per connection in turn. */
  readonly localAddresses: readonly string[];
  /** Connection attempts in flight at once in this worker. */
  readonly concurrency: number;
}

export interface ConnectResult {
  readonly connected: number;
  readonly failed: number;
  /** A few distinct failure messages, for the report. */
  readonly errors: readonly string[];
  /** Wall ms of the first attempt and of the last `hello` (or failure). */
  readonly startedAt: number;
  readonly finishedAt: number;
}

export interface JoinRequest {
  readonly joins: ReadonlyArray<{ readonly index: number; readonly roomId: string }>;
  readonly concurrency: number;
}

export interface JoinResult {
  readonly joined: number;
  readonly failed: number;
  /** Clients the server dropped after `hello` (see README "Known issue") that were reopened first. */
  readonly reopened: number;
  readonly errors: readonly string[];
}

/** Open-loop sending from this worker's clients at `rate` messages/s in total, round-robin. */
export interface PublishRequest {
  readonly step: number;
  /** Wall ms at which the schedule starts (the same in every worker). */
  readonly startAt: number;
  readonly durationMs: number;
  readonly rate: number;
  readonly senders: ReadonlyArray<{ readonly index: number; readonly roomId: string }>;
  readonly bodyBytes: number;
}

export interface ScheduleStats {
  readonly sent: number;
  /** Sends made more than the lateness threshold after their scheduled time. */
  readonly late: number;
  readonly maxLagMs: number;
}

export interface PublishResult extends ScheduleStats {
  readonly acked: number;
  readonly failed: number;
  readonly errors: readonly string[];
  /** Scheduled send → durable ack (`ok {seq}`), ms histogram in µs. */
  readonly ack: HistogramData;
}

export interface CollectRequest {
  readonly step: number;
}

/** Room messages of one step received by this worker's clients. */
export interface CollectResult {
  readonly received: number;
  /** Scheduled send → receive. */
  readonly latency: HistogramData;
}

export interface RequestReplyRequest {
  readonly startAt: number;
  readonly durationMs: number;
  readonly rate: number;
  /** Clients (global indexes) taking turns to send `ping` with an id. */
  readonly indexes: readonly number[];
}

export interface RequestReplyResult extends ScheduleStats {
  readonly replied: number;
  readonly failed: number;
  readonly errors: readonly string[];
  /** Scheduled send → reply. */
  readonly latency: HistogramData;
}

export interface CloseResult {
  readonly closed: number;
  /** Clients whose connection dropped (closed by the server or failed) since they connected. */
  readonly dropped: number;
}

export interface Requests {
  connect: { req: ConnectRequest; res: ConnectResult };
  join: { req: JoinRequest; res: JoinResult };
  publish: { req: PublishRequest; res: PublishResult };
  collect: { req: CollectRequest; res: CollectResult };
  reqrep: { req: RequestReplyRequest; res: RequestReplyResult };
  close: { req: Record<string, never>; res: CloseResult };
  jitterSetup: { req: JitterSetupRequest; res: JitterSetupResult };
  jitterRun: { req: JitterRunRequest; res: JitterRunResult };
}

export type RequestType = keyof Requests;

export interface RequestMessage<K extends RequestType = RequestType> {
  readonly reqId: number;
  readonly type: K;
  readonly body: Requests[K]['req'];
}

export type ReplyMessage =
  | { readonly reqId: number; readonly ok: true; readonly body: unknown }
  | { readonly reqId: number; readonly ok: false; readonly error: string };

export type WorkerMessage = { readonly type: 'ready' } | ({ readonly type: 'reply' } & ReplyMessage);
