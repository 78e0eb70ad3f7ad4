/**
 * One benchmark client per socket, behind a common interface: `GigwireClient` speaks gigwire frames
 * over the lean WebSocket client (used for gigwire and for the raw uWS peer, which accepts the same
 * frames), `SocketIoClient` drives socket.io-client (WebSocket transport only, msgpack parser)
 * against the Socket.IO peer's events. Room messages are handed to one callback per worker with
 * their body, which carries the step and send time stamped by the publisher.
 */
import { io, type Socket } from 'socket.io-client';
import msgpackParser from 'socket.io-msgpack-parser';
import type { ClientKind, ClientSpec } from '../lib/ipc.js';
import { BEARER_PREFIX, CONNECT_PREFIX, decodeFrame, encodeFrame, MSGPACK_SUBPROTOCOL } from '../lib/wire.js';
import { LeanWebSocket } from './lean-ws.js';

export interface BenchClient {
  join(roomId: string): Promise<void>;
  send(roomId: string, clientMsgId: string, body: string): Promise<void>;
  ping(): Promise<void>;
  close(): void;
}

export interface ClientOptions {
  readonly kind: ClientKind;
  readonly url: string;
  readonly spec: ClientSpec;
  readonly localAddress: string;
  /** Called with the body of every room message this client receives. */
  readonly onRoomMessage: (body: unknown) => void;
  /** Called once if the connection drops after it was established. */
  readonly onDrop: (reason: string) => void;
}

const REQUEST_TIMEOUT_MS = 15_000;

/** Opens a client and resolves when the server's greeting (`hello`) has arrived. */
export function openClient(options: ClientOptions): Promise<BenchClient> {
  return options.kind === 'socketio' ? SocketIoClient.open(options) : GigwireClient.open(options);
}

interface Pending {
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
}

class GigwireClient implements BenchClient {
  #socket: LeanWebSocket | undefined;
  /** Requests waiting for `ok`/`error`, created on first use (idle sockets hold none). */
  #pending: Map<number, Pending> | undefined;
  #nextId = 1;
  #hello: (() => void) | undefined;
  #helloFailed: ((error: Error) => void) | undefined;
  #dropped = false;

  static async open(options: ClientOptions): Promise<BenchClient> {
    const client = new GigwireClient();
    const hello = new Promise<void>((resolve, reject) => {
      client.#hello = resolve;
      client.#helloFailed = reject;
    });
    // Awaited below only once the upgrade succeeded: a connection refused or closed during the
    // upgrade rejects it too, and must not surface as an unhandled rejection.
    hello.catch(() => undefined);
    const protocols = [MSGPACK_SUBPROTOCOL];
    // The connect token when the scenario hands one (an HMAC check), else the access JWT (Ed25519).
    if (options.spec.connectToken !== undefined)
      protocols.push(`${CONNECT_PREFIX}${options.spec.connectToken}`);
    else if (options.spec.token !== '') protocols.push(`${BEARER_PREFIX}${options.spec.token}`);
    client.#socket = await LeanWebSocket.open({
      url: options.url,
      protocols,
      localAddress: options.localAddress,
      onMessage: (payload) => client.#onMessage(payload, options),
      onClose: (reason) => {
        client.#helloFailed?.(new Error(`closed before hello: ${reason}`));
        client.#failAll(new Error(`connection closed: ${reason}`));
        if (!client.#dropped && client.#hello === undefined) options.onDrop(reason);
        client.#dropped = true;
      },
    });
    const timer = setTimeout(() => client.#helloFailed?.(new Error('no hello')), REQUEST_TIMEOUT_MS);
    try {
      await hello;
    } catch (error) {
      client.close();
      throw error;
    } finally {
      clearTimeout(timer);
    }
    return client;
  }

  join(roomId: string): Promise<void> {
    return this.#request('room.join', { roomId });
  }

  send(roomId: string, clientMsgId: string, body: string): Promise<void> {
    return this.#request('room.send', { roomId, clientMsgId, body });
  }

  ping(): Promise<void> {
    return this.#request('ping', undefined);
  }

  close(): void {
    this.#dropped = true;
    this.#socket?.close(true);
  }

  #request(t: string, d: Record<string, unknown> | undefined): Promise<void> {
    const socket = this.#socket;
    if (socket === undefined || !socket.isOpen) return Promise.reject(new Error('not connected'));
    const id = this.#nextId;
    this.#nextId = id >= 0x7fffffff ? 1 : id + 1;
    this.#pending ??= new Map();
    const pending = this.#pending;
    return new Promise<void>((resolve, reject) => {
      pending.set(id, { resolve, reject });
      socket.sendBinary(encodeFrame(d === undefined ? { t, id } : { t, id, d }));
    });
  }

  #onMessage(payload: Buffer, options: ClientOptions): void {
    const frame = decodeFrame(payload);
    if (frame === null) return;
    switch (frame.t) {
      case 'room.message':
        options.onRoomMessage(frame.d?.body);
        return;
      case 'ok':
      case 'error': {
        if (frame.id === undefined) return;
        const pending = this.#pending?.get(frame.id);
        if (pending === undefined) return;
        this.#pending?.delete(frame.id);
        if (frame.t === 'ok') pending.resolve();
        else pending.reject(new Error(`${String(frame.d?.code)}: ${String(frame.d?.message)}`));
        return;
      }
      case 'hello':
        this.#hello?.();
        this.#hello = undefined;
        this.#helloFailed = undefined;
        return;
      default:
        return;
    }
  }

  #failAll(error: Error): void {
    const pending = this.#pending;
    if (pending === undefined) return;
    this.#pending = undefined;
    for (const entry of pending.values()) entry.reject(error);
  }
}

interface AckPayload {
  readonly error?: string;
}

class SocketIoClient implements BenchClient {
  readonly #socket: Socket;

  private constructor(socket: Socket) {
    this.#socket = socket;
  }

  static open(options: ClientOptions): Promise<BenchClient> {
    const socket = io(options.url, {
      transports: ['websocket'],
      parser: msgpackParser,
      forceNew: true,
      reconnection: false,
      timeout: REQUEST_TIMEOUT_MS,
      auth: { userId: options.spec.userId },
      // Passed through engine.io-client to `ws`; not in the published option types.
      ...({ localAddress: options.localAddress, perMessageDeflate: false } as Record<string, unknown>),
    });
    const client = new SocketIoClient(socket);
    socket.on('message', (message: { body?: unknown } | undefined) => options.onRoomMessage(message?.body));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        socket.close();
        reject(new Error('no hello'));
      }, REQUEST_TIMEOUT_MS);
      socket.once('hello', () => {
        clearTimeout(timer);
        socket.on('disconnect', (reason) => options.onDrop(String(reason)));
        resolve(client);
      });
      socket.once('connect_error', (error) => {
        clearTimeout(timer);
        socket.close();
        reject(error);
      });
    });
  }

  join(roomId: string): Promise<void> {
    return this.#emit('join', roomId);
  }

  send(roomId: string, clientMsgId: string, body: string): Promise<void> {
    return this.#emit('send', { roomId, clientMsgId, body });
  }

  ping(): Promise<void> {
    return this.#emit('ping', {});
  }

  close(): void {
    this.#socket.removeAllListeners('disconnect');
    this.#socket.close();
  }

  #emit(event: string, arg: unknown): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#socket.timeout(REQUEST_TIMEOUT_MS).emit(event, arg, (error: Error | null, ack?: AckPayload) => {
        if (error !== null) reject(error);
        else if (ack?.error !== undefined) reject(new Error(ack.error));
        else resolve();
      });
    });
  }
}
