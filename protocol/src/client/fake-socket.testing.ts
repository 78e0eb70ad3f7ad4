/**
 * A WebSocket the SDK's unit tests drive by hand (the SDK takes any `WebSocketLike`): what the client
 * sends is parsed into `sent`; `open`, `hello`, `receive`, `reply`, `serverClose` and `fail` are what
 * the network and the server do. Every socket the client makes is in `FakeSocket.instances`.
 */
import type { WebSocketLike } from './socket.js';

type Handler = ((event: unknown) => void) | null;

/** The user of the fake server's hello. */
export const FAKE_USER = '0b6f7c1e-1f0e-4a53-9d55-0c8e2a1b7f10';

export class FakeSocket implements WebSocketLike {
  static instances: FakeSocket[] = [];
  binaryType = 'blob';
  readyState = 0;
  protocol = '';
  onopen: unknown = null;
  onmessage: unknown = null;
  onclose: unknown = null;
  onerror: unknown = null;
  readonly sent: Record<string, unknown>[] = [];
  closedWith: { code?: number; reason?: string } | undefined;

  constructor(
    readonly url: string,
    readonly protocols?: string | string[],
  ) {
    FakeSocket.instances.push(this);
  }

  send(data: string | Uint8Array): void {
    this.sent.push(JSON.parse(String(data)) as Record<string, unknown>);
  }
  close(code?: number, reason?: string): void {
    this.closedWith = { code, reason };
  }

  // What the network does:
  open(): void {
    this.readyState = 1;
    (this.onopen as Handler)?.({});
  }
  receive(frame: Record<string, unknown>): void {
    (this.onmessage as Handler)?.({ data: JSON.stringify(frame) });
  }
  hello(limits: Partial<Record<string, number>> = {}, heartbeatMs = 30_000): void {
    this.receive({
      t: 'hello',
      d: {
        connectionId: `c${FakeSocket.instances.indexOf(this)}`,
        userId: FAKE_USER,
        serverTime: Date.now(),
        heartbeatMs,
        protocolVersion: 1,
        encoding: 'json',
        limits: {
          maxFrameBytes: 65536,
          maxMessagesPerSecond: 50,
          maxBurst: 100,
          maxBufferedBytes: 1 << 20,
          ...limits,
        },
      },
    });
  }
  serverClose(code: number, reason = ''): void {
    this.readyState = 3;
    (this.onclose as Handler)?.({ code, reason });
  }
  fail(message?: string): void {
    (this.onerror as Handler)?.(message === undefined ? {} : { message });
    this.serverClose(1006);
  }
  reply(index: number, d?: unknown): void {
    const id = this.sent[index]?.id;
    this.receive(d === undefined ? { t: 'ok', id } : { t: 'ok', id, d });
  }
  /** Opens and says hello at once. */
  greet(limits: Partial<Record<string, number>> = {}, heartbeatMs = 30_000): void {
    this.open();
    this.hello(limits, heartbeatMs);
  }
  /** A browser's failed handshake: an error event without a cause, then 1006. */
  failHidden(): void {
    this.fail();
  }
}
