/**
 * A minimal RFC 6455 client over `net`, built for holding thousands of sockets per process: the
 * upgrade request is written by hand, frames are parsed in place from the socket's chunks, client
 * frames are masked, no extensions (no per-message deflate), no UTF-8 validation and no
 * Sec-WebSocket-Accept check (the peer is a local server under test). Pings are answered with
 * pongs; a close frame is echoed and the socket ended.
 */
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';

export interface LeanWsOptions {
  readonly url: string;
  readonly protocols: readonly string[];
  readonly localAddress?: string;
  readonly handshakeTimeoutMs?: number;
  readonly onMessage: (payload: Buffer) => void;
  readonly onClose: (reason: string) => void;
}

const OP_CONTINUATION = 0x0;
const OP_TEXT = 0x1;
const OP_BINARY = 0x2;
const OP_CLOSE = 0x8;
const OP_PING = 0x9;

/** Random bytes handed out 4 at a time as masking keys. */
const maskPool = randomBytes(64 * 1024);
let maskOffset = 0;

function encodeFrame(opcode: number, payload: Uint8Array): Buffer {
  const length = payload.length;
  const lengthBytes = length < 126 ? 0 : length < 65536 ? 2 : 8;
  const header = 2 + lengthBytes + 4;
  const frame = Buffer.allocUnsafe(header + length);
  frame[0] = 0x80 | opcode;
  if (lengthBytes === 0) {
    frame[1] = 0x80 | length;
  } else if (lengthBytes === 2) {
    frame[1] = 0x80 | 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 0x80 | 127;
    frame.writeBigUInt64BE(BigInt(length), 2);
  }
  if (maskOffset + 4 > maskPool.length) maskOffset = 0;
  const maskAt = 2 + lengthBytes;
  maskPool.copy(frame, maskAt, maskOffset, maskOffset + 4);
  maskOffset += 4;
  const m0 = frame[maskAt] as number;
  const m1 = frame[maskAt + 1] as number;
  const m2 = frame[maskAt + 2] as number;
  const m3 = frame[maskAt + 3] as number;
  for (let i = 0; i < length; i += 1) {
    const mask = (i & 3) === 0 ? m0 : (i & 3) === 1 ? m1 : (i & 3) === 2 ? m2 : m3;
    frame[header + i] = (payload[i] as number) ^ mask;
  }
  return frame;
}

export class LeanWebSocket {
  readonly #socket: Socket;
  readonly #options: LeanWsOptions;
  #open = false;
  #closed = false;
  /** Bytes of an incomplete frame (or of the HTTP response before the upgrade). */
  #pending: Buffer | null = null;
  /** Payloads of a fragmented message until its final frame. */
  #fragments: Buffer[] | null = null;

  private constructor(socket: Socket, options: LeanWsOptions) {
    this.#socket = socket;
    this.#options = options;
  }

  /** Resolves once the server answered 101 Switching Protocols. */
  static open(options: LeanWsOptions): Promise<LeanWebSocket> {
    const url = new URL(options.url);
    const port = Number(url.port || 80);
    const socket = connect({ host: url.hostname, port, localAddress: options.localAddress, noDelay: true });
    const client = new LeanWebSocket(socket, options);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error('handshake timeout'));
      }, options.handshakeTimeoutMs ?? 15_000);
      let settled = false;
      const fail = (error: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.destroy();
        reject(error);
      };
      socket.once('connect', () => {
        const key = randomBytes(16).toString('base64');
        const lines = [
          `GET ${url.pathname}${url.search} HTTP/1.1`,
          `Host: ${url.host}`,
          'Upgrade: websocket',
          'Connection: Upgrade',
          `Sec-WebSocket-Key: ${key}`,
          'Sec-WebSocket-Version: 13',
        ];
        if (options.protocols.length > 0)
          lines.push(`Sec-WebSocket-Protocol: ${options.protocols.join(', ')}`);
        socket.write(`${lines.join('\r\n')}\r\n\r\n`);
      });
      socket.on('error', (error) => {
        if (!settled) fail(error);
        else client.#close(`error: ${error.message}`);
      });
      socket.on('close', () => {
        if (!settled) fail(new Error('closed during handshake'));
        else client.#close('socket closed');
      });
      socket.on('data', (chunk: Buffer) => {
        if (client.#open) {
          client.#onData(chunk);
          return;
        }
        const buffered = client.#pending === null ? chunk : Buffer.concat([client.#pending, chunk]);
        const end = buffered.indexOf('\r\n\r\n');
        if (end < 0) {
          client.#pending = buffered;
          return;
        }
        const head = buffered.subarray(0, end).toString('latin1');
        const statusLine = head.slice(0, head.indexOf('\r\n'));
        if (!/^HTTP\/1\.1 101/.test(statusLine)) {
          fail(new Error(`upgrade refused: ${statusLine}`));
          return;
        }
        settled = true;
        clearTimeout(timer);
        client.#open = true;
        client.#pending = null;
        resolve(client);
        const rest = buffered.subarray(end + 4);
        if (rest.length > 0) client.#onData(Buffer.from(rest));
      });
    });
  }

  get isOpen(): boolean {
    return this.#open && !this.#closed;
  }

  sendBinary(payload: Uint8Array): void {
    if (!this.isOpen) return;
    this.#socket.write(encodeFrame(OP_BINARY, payload));
  }

  /** Sends a close frame and ends the socket; `destroy` skips the close handshake. */
  close(destroy = false): void {
    if (this.#closed) return;
    if (destroy) {
      this.#socket.destroy();
    } else if (this.#open) {
      const code = Buffer.from([0x03, 0xe8]); // 1000
      this.#socket.end(encodeFrame(OP_CLOSE, code));
    } else {
      this.#socket.destroy();
    }
    this.#close('closed by client');
  }

  #close(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#pending = null;
    this.#fragments = null;
    this.#options.onClose(reason);
  }

  #onData(chunk: Buffer): void {
    const buffer = this.#pending === null ? chunk : Buffer.concat([this.#pending, chunk]);
    let offset = 0;
    while (buffer.length - offset >= 2) {
      const b0 = buffer[offset] as number;
      const b1 = buffer[offset + 1] as number;
      let length = b1 & 0x7f;
      let header = 2;
      if (length === 126) {
        if (buffer.length - offset < 4) break;
        length = buffer.readUInt16BE(offset + 2);
        header = 4;
      } else if (length === 127) {
        if (buffer.length - offset < 10) break;
        length = Number(buffer.readBigUInt64BE(offset + 2));
        header = 10;
      }
      const masked = (b1 & 0x80) !== 0;
      if (masked) header += 4;
      if (buffer.length - offset < header + length) break;
      let payload = buffer.subarray(offset + header, offset + header + length);
      if (masked) {
        const mask = buffer.subarray(offset + header - 4, offset + header);
        payload = Buffer.from(payload);
        for (let i = 0; i < payload.length; i += 1)
          payload[i] = (payload[i] as number) ^ (mask[i & 3] as number);
      }
      offset += header + length;
      this.#onFrame((b0 & 0x80) !== 0, b0 & 0x0f, payload);
      if (this.#closed) return;
    }
    // Copy the tail so a small remainder does not pin the whole (up to 64 KiB) read chunk.
    this.#pending = offset < buffer.length ? Buffer.from(buffer.subarray(offset)) : null;
  }

  #onFrame(fin: boolean, opcode: number, payload: Buffer): void {
    if (opcode === OP_BINARY || opcode === OP_TEXT || opcode === OP_CONTINUATION) {
      if (!fin) {
        this.#fragments = [...(this.#fragments ?? []), Buffer.from(payload)];
        return;
      }
      if (this.#fragments !== null) {
        const whole = Buffer.concat([...this.#fragments, payload]);
        this.#fragments = null;
        this.#options.onMessage(whole);
        return;
      }
      this.#options.onMessage(payload);
    } else if (opcode === OP_PING) {
      this.#socket.write(encodeFrame(0xa, payload));
    } else if (opcode === OP_CLOSE) {
      const code = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
      if (!this.#socket.destroyed) this.#socket.end(encodeFrame(OP_CLOSE, payload.subarray(0, 2)));
      this.#close(`server closed ${code} ${payload.subarray(2).toString('utf8')}`);
    }
  }
}
