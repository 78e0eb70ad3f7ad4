/**
 * Socket.IO 4 peer: the same scenarios as gigwire with Socket.IO's own idioms, WebSocket transport
 * only, msgpack parser, no auth, no persistence. Events: `hello` pushed on connection; `join`
 * (roomId, ack) → socket.join + ack {lastSeq}; `send` ({roomId, clientMsgId, body}, ack) → per-room
 * seq, `message` broadcast with io.to(room).emit, ack {seq, sentAt}; `ping` (_, ack) → ack
 * {serverTime}. A second server on the same port, path `/recovery/`, serves the same events with
 * connection state recovery (the reconnect-jitter scenario); the first stays without it, so the other
 * scenarios measure plain Socket.IO.
 *
 * Usage: node --expose-gc --import tsx bench/peers/socketio-peer.ts <port>
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server, type ServerOptions, type Socket } from 'socket.io';
import msgpackParser from 'socket.io-msgpack-parser';
import { announceReady, exitOnTerm, handleGcSignal, portFromArgv } from './common.js';

type Ack = (payload: Record<string, unknown>) => void;

interface SendArgs {
  readonly roomId?: unknown;
  readonly clientMsgId?: unknown;
  readonly body?: unknown;
}

const roomSeqs = new Map<string, number>();
let connections = 0;

const httpServer = createServer();
const options: Partial<ServerOptions> = {
  parser: msgpackParser,
  transports: ['websocket'],
  serveClient: false,
  perMessageDeflate: false,
  httpCompression: false,
  maxHttpBufferSize: 64 * 1024,
};
const io = new Server(httpServer, options);

/** Recovery keeps each room's packets for 2 minutes and restores a returning socket's rooms. */
const recoveryIo = new Server(httpServer, {
  ...options,
  path: '/recovery/',
  connectionStateRecovery: { maxDisconnectionDuration: 2 * 60 * 1000 },
});

function isAck(value: unknown): value is Ack {
  return typeof value === 'function';
}

const serve = (io: Server) => (socket: Socket) => {
  connections += 1;
  const auth = socket.handshake.auth as { userId?: unknown };
  const userId = typeof auth.userId === 'string' ? auth.userId : `user-${connections}`;
  socket.emit('hello', {
    connectionId: socket.id,
    userId,
    serverTime: Date.now(),
    heartbeatMs: 25_000,
    protocolVersion: 1,
    encoding: 'msgpack',
  });

  socket.on('join', (roomId: unknown, ack: unknown) => {
    if (!isAck(ack)) return;
    if (typeof roomId !== 'string') {
      ack({ error: 'VALIDATION_FAILED' });
      return;
    }
    void socket.join(roomId);
    ack({ lastSeq: roomSeqs.get(roomId) ?? 0 });
  });

  socket.on('send', (args: SendArgs | undefined, ack: unknown) => {
    if (!isAck(ack)) return;
    const { roomId, clientMsgId, body } = args ?? {};
    if (typeof roomId !== 'string' || typeof clientMsgId !== 'string' || typeof body !== 'string') {
      ack({ error: 'VALIDATION_FAILED' });
      return;
    }
    const seq = (roomSeqs.get(roomId) ?? 0) + 1;
    roomSeqs.set(roomId, seq);
    const sentAt = new Date().toISOString();
    io.to(roomId).emit('message', { roomId, seq, senderId: userId, clientMsgId, body, sentAt });
    ack({ seq, sentAt });
  });

  socket.on('ping', (_args: unknown, ack: unknown) => {
    if (isAck(ack)) ack({ serverTime: Date.now() });
  });
};
io.on('connection', serve(io));
recoveryIo.on('connection', serve(recoveryIo));

handleGcSignal();
httpServer.listen(portFromArgv(), '127.0.0.1', () => {
  announceReady((httpServer.address() as AddressInfo).port);
});
exitOnTerm(() => {
  void io.close();
  void recoveryIo.close();
});
