/**
 * Raw uWebSockets.js pub/sub peer: the lower bound for gigwire's socket paths. Same frames as
 * gigwire on /ws (msgpack, subprotocol gigwire.v1.msgpack; `bearer.*` ignored), no auth, no
 * persistence: `hello` on open, `room.join` subscribes a topic and answers `ok {lastSeq}`,
 * `room.send` numbers the message per room, publishes the `room.message` frame to the topic and
 * answers `ok {seq, sentAt}`, `ping` answers `ok {serverTime}` (or `pong` without an id).
 *
 * Usage: node --expose-gc --import tsx bench/peers/uws-peer.ts <port>
 */
import uWS from 'uWebSockets.js';
import { decodeFrame, encodeFrame, type Frame, MSGPACK_SUBPROTOCOL } from '../lib/wire.js';
import { announceReady, exitOnTerm, handleGcSignal, portFromArgv } from './common.js';

interface PeerSocketData {
  readonly userId: string;
  readonly connectionId: string;
  closed: boolean;
}

const roomSeqs = new Map<string, number>();
let connections = 0;

function reply(id: number | undefined, d?: Record<string, unknown>): Buffer | null {
  if (id === undefined) return null;
  return encodeFrame(d === undefined ? { t: 'ok', id } : { t: 'ok', id, d });
}

function errorFrame(id: number | undefined, code: string, message: string): Buffer {
  return encodeFrame(
    id === undefined ? { t: 'error', d: { code, message } } : { t: 'error', id, d: { code, message } },
  );
}

const app = uWS.App();

function handle(ws: uWS.WebSocket<PeerSocketData>, frame: Frame): void {
  const data = ws.getUserData();
  const d = frame.d ?? {};
  switch (frame.t) {
    case 'ping': {
      const answer =
        frame.id === undefined
          ? encodeFrame({ t: 'pong', d: { serverTime: Date.now() } })
          : reply(frame.id, { serverTime: Date.now() });
      if (answer !== null) ws.send(answer, true);
      return;
    }
    case 'room.join': {
      const roomId = d.roomId;
      if (typeof roomId !== 'string') {
        ws.send(errorFrame(frame.id, 'VALIDATION_FAILED', 'roomId'), true);
        return;
      }
      ws.subscribe(`room:${roomId}`);
      const answer = reply(frame.id, { lastSeq: roomSeqs.get(roomId) ?? 0 });
      if (answer !== null) ws.send(answer, true);
      return;
    }
    case 'room.send': {
      const { roomId, clientMsgId, body } = d;
      if (typeof roomId !== 'string' || typeof clientMsgId !== 'string' || typeof body !== 'string') {
        ws.send(errorFrame(frame.id, 'VALIDATION_FAILED', 'roomId, clientMsgId, body'), true);
        return;
      }
      const seq = (roomSeqs.get(roomId) ?? 0) + 1;
      roomSeqs.set(roomId, seq);
      const sentAt = new Date().toISOString();
      const message = encodeFrame({
        t: 'room.message',
        d: { roomId, seq, senderId: data.userId, clientMsgId, body, sentAt },
      });
      app.publish(`room:${roomId}`, message, true);
      const answer = reply(frame.id, { seq, sentAt });
      if (answer !== null) ws.send(answer, true);
      return;
    }
    default:
      ws.send(errorFrame(frame.id, 'UNKNOWN_TYPE', frame.t), true);
  }
}

app.ws<PeerSocketData>('/ws', {
  compression: uWS.DISABLED,
  maxPayloadLength: 64 * 1024,
  maxBackpressure: 16 * 1024 * 1024,
  idleTimeout: 60,
  sendPingsAutomatically: true,
  upgrade: (res, req, context) => {
    const offered = req.getHeader('sec-websocket-protocol');
    const protocol = offered
      .split(',')
      .map((entry) => entry.trim())
      .includes(MSGPACK_SUBPROTOCOL)
      ? MSGPACK_SUBPROTOCOL
      : '';
    connections += 1;
    const userData: PeerSocketData = {
      userId: `user-${connections}`,
      connectionId: `uws-${connections}`,
      closed: false,
    };
    res.upgrade(
      userData,
      req.getHeader('sec-websocket-key'),
      protocol,
      req.getHeader('sec-websocket-extensions'),
      context,
    );
  },
  open: (ws) => {
    // Not written inside `open`: uWS's cork can drop a socket written to during its upgrade.
    setImmediate(() => {
      const data = ws.getUserData();
      if (data.closed) return;
      ws.cork(() => {
        ws.send(
          encodeFrame({
            t: 'hello',
            d: {
              connectionId: data.connectionId,
              userId: data.userId,
              serverTime: Date.now(),
              heartbeatMs: 30_000,
              protocolVersion: 1,
              encoding: 'msgpack',
              limits: {
                maxFrameBytes: 65536,
                maxMessagesPerSecond: 1000,
                maxBurst: 1000,
                maxBufferedBytes: 1048576,
              },
            },
          }),
          true,
        );
      });
    });
  },
  message: (ws, message, isBinary) => {
    if (!isBinary) {
      ws.send(errorFrame(undefined, 'BAD_FRAME', 'text frame on a msgpack connection'), true);
      return;
    }
    let frame: Frame | null;
    try {
      frame = decodeFrame(new Uint8Array(message));
    } catch {
      frame = null;
    }
    if (frame === null) {
      ws.send(errorFrame(undefined, 'BAD_FRAME', 'undecodable'), true);
      return;
    }
    handle(ws, frame);
  },
  close: (ws) => {
    ws.getUserData().closed = true;
  },
});

handleGcSignal();
app.listen('127.0.0.1', portFromArgv(), (listenSocket) => {
  if (listenSocket === false) {
    process.stderr.write('uws-peer: listen failed\n');
    process.exit(1);
  }
  announceReady(uWS.us_socket_local_port(listenSocket));
  exitOnTerm(() => uWS.us_listen_socket_close(listenSocket));
});
