/**
 * A `ws` WebSocket for the SDK (its WebSocketLike) with hooks a test of a bad network needs: each
 * socket as it is made (to close it from the client side, as a phone changing networks does), each
 * incoming text frame (to lose or hold it) and each outgoing one (to watch what the SDK sends).
 */
import WebSocket from 'ws';
import type { WebSocketLike } from '../../protocol/src/client/socket.js';

type Handler = ((event: unknown) => void) | null;

/** A decoded JSON frame as the hooks see it. */
export type HookedFrame = { t?: unknown; id?: unknown; d?: { seq?: unknown } };

export interface SocketHooks {
  /** Each socket as it is made. */
  readonly created?: (socket: WebSocket) => void;
  /** Each incoming text frame: true passes it, false loses it, a number holds it that many ms. */
  readonly inbound?: (frame: HookedFrame) => boolean | number;
  /** Each outgoing text frame, before it is sent. */
  readonly outbound?: (frame: HookedFrame) => void;
}

export function hookedWebSocket(hooks: SocketHooks) {
  return class HookedSocket implements WebSocketLike {
    readonly #inner: WebSocket;
    onopen: unknown = null;
    onmessage: unknown = null;
    onclose: unknown = null;
    onerror: unknown = null;
    constructor(url: string, protocols?: string | string[]) {
      this.#inner = new WebSocket(url, protocols);
      this.#inner.binaryType = 'arraybuffer';
      this.#inner.onopen = (event) => (this.onopen as Handler)?.(event);
      this.#inner.onclose = (event) => (this.onclose as Handler)?.(event);
      this.#inner.onerror = (event) => (this.onerror as Handler)?.(event);
      this.#inner.onmessage = (event) => {
        const verdict =
          hooks.inbound !== undefined && typeof event.data === 'string'
            ? hooks.inbound(JSON.parse(event.data) as HookedFrame)
            : true;
        const pass = () => (this.onmessage as Handler)?.(event);
        if (verdict === true) pass();
        else if (typeof verdict === 'number') setTimeout(pass, verdict);
      };
      hooks.created?.(this.#inner);
    }
    get binaryType() {
      return this.#inner.binaryType;
    }
    set binaryType(_value: string) {
      // kept 'arraybuffer'
    }
    get readyState() {
      return this.#inner.readyState;
    }
    get protocol() {
      return this.#inner.protocol;
    }
    send(data: string | Uint8Array) {
      if (hooks.outbound !== undefined && typeof data === 'string')
        hooks.outbound(JSON.parse(data) as HookedFrame);
      this.#inner.send(data);
    }
    close(code?: number, reason?: string) {
      this.#inner.close(code, reason);
    }
  };
}
