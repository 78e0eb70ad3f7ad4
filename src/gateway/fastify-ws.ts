/**
 * The portable WebSocket transport: the same protocol at /ws on the Fastify port, through
 * @fastify/websocket (ws). Used beside uWebSockets.js, and alone where no native uWS build loads.
 * Auth runs in preValidation, so a refused upgrade is a 401 problem+json and no socket. Heartbeats:
 * one interval for the whole transport pings every socket and drops those that did not answer the
 * previous ping (no timer per socket).
 */
import websocket from '@fastify/websocket';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import { CloseCode } from '../../protocol/src/codes.js';
import { negotiateEncoding } from '../../protocol/src/version.js';
import { AppError } from '../platform/errors.js';
import type { AcceptedUpgrade, GatewayCore } from './transport.js';

export interface FastifyWsLimits {
  readonly maxFrameBytes: number;
  readonly idleTimeoutS: number;
}

/**
 * How long a slow consumer we closed (1013) may take to complete the closing handshake before it is
 * dropped: what uWS gives every socket after end() (its ping timeout: 4, 8 or 16 s by idleTimeout),
 * so both transports treat it alike. Our close frame waits behind the frames already queued; a
 * reader that stalled and reads again within this time still gets it (1013, not 1006). Other closes
 * keep 2 s (their peers read; a shutdown's 1012 must not wait for stalled readers).
 */
export function slowConsumerGraceMs(idleTimeoutS: number): number {
  let margin = 4;
  while (idleTimeoutS - margin * 2 >= margin * 2 && margin < 16) margin *= 2;
  return margin * 1000;
}

/**
 * Registers /ws on the app (before it is ready); returns the shutdown's stop function: the
 * heartbeat ends and slow consumers still in their closing grace are dropped.
 */
export async function registerFastifyWebSocket(
  app: FastifyInstance,
  core: GatewayCore,
  limits: FastifyWsLimits,
): Promise<{ readonly stopHeartbeat: () => void }> {
  await app.register(websocket, {
    options: {
      maxPayload: limits.maxFrameBytes,
      // The same choice as the upgrade's (client's first of ours), never the `bearer.<jwt>` entry.
      handleProtocols: (protocols: Set<string>) => negotiateEncoding([...protocols]).subprotocol ?? false,
    },
  });
  const accepted = new WeakMap<FastifyRequest, AcceptedUpgrade>();
  const slowConsumerGrace = slowConsumerGraceMs(limits.idleTimeoutS);
  /** Slow consumers closed and still in their grace: a shutdown does not wait for them. */
  const lingering = new Set<WebSocket>();
  const alive = new WeakMap<WebSocket, boolean>();

  app.route({
    method: 'GET',
    url: '/ws',
    websocket: true,
    schema: { hide: true },
    preValidation: async (request) => {
      // A plain GET /ws (no upgrade) is answered 404 by @fastify/websocket after this hook. Admitted
      // here, it held a place of WS_MAX_CONNECTIONS_PER_IP until its TCP connection closed: one
      // keep-alive connection repeating it locked every WebSocket of its address (a carrier NAT's
      // users) out with 429 on both ports. Refused before any admission or auth work instead.
      if ((request.raw as { readonly upgrade?: boolean }).upgrade !== true) {
        throw new AppError('NOT_FOUND', 'this is the WebSocket endpoint: send a WebSocket upgrade request');
      }
      // request.ip already follows TRUST_PROXY (Fastify's trustProxy).
      const admission = core.admitUpgrade(request.ip, undefined);
      if (!admission.ok) {
        throw new AppError('RATE_LIMITED', admission.message, {
          details: { retryAfterS: admission.retryAfterS },
        });
      }
      // The place (WS_MAX_CONNECTIONS_PER_IP) is given back when the TCP connection closes — the
      // upgraded socket's, or one abandoned meanwhile — or at once when the upgrade is refused.
      const connection = request.raw.socket;
      const { release } = admission;
      connection.once('close', release);
      if (connection.destroyed) release();
      const queryIndex = request.url.indexOf('?');
      try {
        accepted.set(
          request,
          await core.authenticateUpgrade({
            authorization: request.headers.authorization,
            protocols: request.headers['sec-websocket-protocol'],
            query: queryIndex === -1 ? '' : request.url.slice(queryIndex + 1),
          }),
        );
      } catch (error) {
        connection.off('close', release);
        release();
        throw error;
      }
    },
    handler: (socket, request) => {
      const upgrade = accepted.get(request);
      if (upgrade === undefined) {
        socket.close(1011, 'upgrade not authenticated');
        return;
      }
      alive.set(socket, true);
      socket.on('pong', () => alive.set(socket, true));
      let closed = false;
      const handler = core.open(upgrade, {
        kind: 'fastify-ws',
        send: (data, isBinary) => {
          if (closed || socket.readyState !== socket.OPEN) return false;
          socket.send(data, { binary: isBinary });
          return true;
        },
        bufferedAmount: () => socket.bufferedAmount,
        ping: () => {
          if (!closed && socket.readyState === socket.OPEN) socket.ping();
        },
        close: (code, reason) => {
          if (closed) return;
          closed = true;
          socket.close(code, reason);
          // A peer that stopped reading for good never completes the closing handshake.
          const slow = code === CloseCode.TRY_AGAIN_LATER;
          if (slow) lingering.add(socket);
          setTimeout(() => socket.terminate(), slow ? slowConsumerGrace : 2_000).unref();
        },
      });
      socket.on('pong', () => handler.onPong?.());
      socket.on('message', (data: Buffer, isBinary: boolean) => handler.onMessage(data, isBinary));
      socket.on('close', (code: number) => {
        closed = true;
        lingering.delete(socket);
        handler.onClose(code);
      });
      socket.on('error', () => socket.terminate());
    },
  });

  const heartbeat = setInterval(
    () => {
      for (const socket of app.websocketServer.clients) {
        if (alive.get(socket) === false) {
          socket.terminate();
          continue;
        }
        alive.set(socket, false);
        socket.ping();
      }
    },
    (limits.idleTimeoutS * 1000) / 2,
  );
  heartbeat.unref();
  return {
    stopHeartbeat: () => {
      clearInterval(heartbeat);
      // The node is shutting down: the HTTP server's close would wait out their grace.
      for (const socket of lingering) socket.terminate();
    },
  };
}
