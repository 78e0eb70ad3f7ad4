/**
 * What the two WebSocket transports (uWebSockets.js and @fastify/websocket) share with the
 * transport-agnostic connection layer: the upgrade decision before a socket exists, and a small
 * send/close surface after. Everything above this file is written once for both transports.
 */
import type { Encoding } from '../../protocol/src/version.js';
import type { Principal } from '../domain/auth/service.js';

/** The parts of an upgrade request that decide whether a socket is opened. */
export interface UpgradeInput {
  readonly authorization: string | undefined;
  /** Raw Sec-WebSocket-Protocol header: encodings and possibly `bearer.<jwt>`. */
  readonly protocols: string | undefined;
  /** Raw query string without `?` (may carry access_token). */
  readonly query: string;
}

export interface AcceptedUpgrade {
  readonly principal: Principal;
  readonly encoding: Encoding;
  /** The subprotocol to answer with ('' when the client offered none of ours). */
  readonly protocol: string;
}

/** Sending side of one socket, as the connection layer sees it. */
export interface SocketTransport {
  /** 'fastify-ws' or 'uws': for logs and metrics. */
  readonly kind: 'uws' | 'fastify-ws';
  /** Queues a frame; binary for msgpack, text for json. Returns false once the socket is closed. */
  readonly send: (data: Uint8Array | string, isBinary: boolean) => boolean;
  /** Bytes queued in user space and not yet written to the kernel. */
  readonly bufferedAmount: () => number;
  readonly close: (code: number, reason: string) => void;
  /** Sends a protocol ping now (the peer's stack answers with a pong: SocketHandler.onPong). */
  readonly ping?: () => void;
  /**
   * Native pub/sub (uWebSockets.js topics): the socket receives every frame later published to
   * `topic`, written by uWS in C++ once for all subscribers. Absent on the fallback transport, which
   * is sent the same bytes one socket at a time. Returns false once the socket is closed.
   */
  readonly subscribe?: (topic: string) => boolean;
  readonly unsubscribe?: (topic: string) => void;
}

/** Publishes bytes to every socket subscribed to a topic on this node (see SocketTransport.subscribe). */
export type TopicPublisher = (topic: string, data: Uint8Array | string, isBinary: boolean) => void;

/** Receiving side: what a transport calls for each event of an open socket. */
export interface SocketHandler {
  /** `data` is only valid during the call (uWS reuses the buffer). */
  readonly onMessage: (data: ArrayBuffer | Uint8Array, isBinary: boolean) => void;
  readonly onClose: (code: number) => void;
  /** A pong arrived: the peer is still there (absent: pongs are not reported). */
  readonly onPong?: () => void;
}

export type UpgradeAdmission =
  | { readonly ok: true; readonly release: () => void }
  | { readonly ok: false; readonly retryAfterS: number; readonly message: string };

export interface GatewayCore {
  /**
   * Called first for every upgrade request, before any auth work: takes a token from the client
   * network's bucket (an IPv4 address or an IPv6 /64) and a place among its open sockets
   * (WS_MAX_CONNECTIONS_PER_IP). Refused → HTTP 429 with Retry-After and `message`, no socket. `forwardedFor` is the raw
   * X-Forwarded-For header, resolved by the TRUST_PROXY rule; a transport whose framework already
   * resolved the client address passes that address and `undefined`. Admitted: the transport calls
   * `release` once the upgrade is refused or abandoned, or its socket closed (more calls are no-ops).
   */
  readonly admitUpgrade: (remoteAddress: string, forwardedFor: string | undefined) => UpgradeAdmission;
  /**
   * The credential check of an upgrade. Answers at once (not a promise) when it can decide from
   * memory — a connect token whose key and session row are cached, the common case — so a
   * transport that can upgrade synchronously does; otherwise a promise.
   * @throws AppError UNAUTHORIZED (→ HTTP 401, no socket) or UNAVAILABLE (503), thrown or rejected
   */
  readonly authenticateUpgrade: (input: UpgradeInput) => AcceptedUpgrade | Promise<AcceptedUpgrade>;
  readonly open: (upgrade: AcceptedUpgrade, transport: SocketTransport) => SocketHandler;
}
