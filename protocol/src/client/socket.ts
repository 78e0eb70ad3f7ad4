import { retryAfterHeaderMs } from './backoff.js';

/**
 * The part of the WHATWG WebSocket the SDK uses. Browsers' `WebSocket` and the `ws` package's
 * `WebSocket` class (Node) both fit; the SDK never imports either. Event handler properties are
 * typed `unknown` because each implementation declares its own event classes: the SDK assigns its
 * handlers and reads only the fields of the `…EventLike` shapes below.
 */

export interface WebSocketLike {
  /** Set to 'arraybuffer' by the SDK, so binary frames arrive as ArrayBuffer everywhere. */
  binaryType: string;
  readonly readyState: number;
  /** The subprotocol the server picked ('' before open). */
  readonly protocol: string;
  send(data: string | Uint8Array): void;
  close(code?: number, reason?: string): void;
  onopen: unknown;
  onmessage: unknown;
  onclose: unknown;
  onerror: unknown;
}

export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

export interface MessageEventLike {
  readonly data: unknown;
}

export interface CloseEventLike {
  readonly code: number;
  readonly reason: string;
}

/** Browsers give a bare Event; `ws` adds `message` (e.g. "Unexpected server response: 401") and `error`. */
export interface ErrorEventLike {
  readonly message?: unknown;
  readonly error?: unknown;
}

/**
 * The HTTP answer to a refused upgrade, where the implementation shows it: the `ws` package (Node)
 * emits `unexpected-response` with the response; browsers show nothing. Handles `ws` only; calls
 * `onResponse` with the status and the `Retry-After` in ms (backoff.ts `retryAfterHeaderMs`; undefined when
 * absent or unreadable), then aborts the handshake, which `ws` no longer does once the event has a
 * listener (its error event then names no status: `onResponse` has to keep it).
 */
export function watchRefusedUpgrade(
  socket: WebSocketLike,
  onResponse: (status: number, retryAfterMs: number | undefined) => void,
): void {
  const emitter = socket as unknown as { on?: unknown };
  if (typeof emitter.on !== 'function') return;
  (emitter.on as (event: string, listener: (request: unknown, response: unknown) => void) => void).call(
    socket,
    'unexpected-response',
    (_request, response) => {
      const { statusCode, headers } = (response ?? {}) as {
        statusCode?: unknown;
        headers?: Record<string, unknown>;
      };
      try {
        // An HTTP date counts from the answer's own Date (the server's clock), not this device's.
        const answeredAt = Date.parse(String(headers?.date ?? ''));
        onResponse(
          typeof statusCode === 'number' ? statusCode : 0,
          retryAfterHeaderMs(headers?.['retry-after'], Number.isNaN(answeredAt) ? Date.now() : answeredAt),
        );
      } finally {
        try {
          socket.close();
        } catch {
          // already closing
        }
      }
    },
  );
}

/** The constructor passed in the options, else the global one (browsers, Node ≥ 22), else undefined. */
export function resolveWebSocket(
  injected: WebSocketConstructor | undefined,
): WebSocketConstructor | undefined {
  if (injected !== undefined) return injected;
  const global = (globalThis as { WebSocket?: unknown }).WebSocket;
  return typeof global === 'function' ? (global as WebSocketConstructor) : undefined;
}

/** What an error event says about the failure, '' when nothing (browsers hide the cause). */
export function describeErrorEvent(event: unknown): string {
  if (typeof event !== 'object' || event === null) return '';
  const { message, error } = event as ErrorEventLike;
  if (typeof message === 'string' && message !== '') return message;
  if (error instanceof Error) return error.message;
  return '';
}

/** Bytes or text of a received message, or undefined for a type the SDK does not read (Blob). */
export function messageData(data: unknown): Uint8Array | string | undefined {
  if (typeof data === 'string') return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return undefined;
}
