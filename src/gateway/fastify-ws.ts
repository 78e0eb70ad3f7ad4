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
import { negotiateEncoding } from '../../protocol/src/version.js';
import { AppError } from '../platform/errors.js';
import type { AcceptedUpgrade, GatewayCore } from './transport.js';

export interface FastifyWsLimits {
  readonly maxFrameBytes: number;
  readonly idleTimeoutS: number;
}

/** Registers /ws on the app (before it is ready); returns a stop function for the heartbeat. */
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
  const alive = new WeakMap<WebSocket, boolean>();

  app.route({
    method: 'GET',
    url: '/ws',
    websocket: true,
    schema: { hide: true },
    preValidation: async (request) => {
      // request.ip already follows TRUST_PROXY (Fastify's trustProxy).
      const admission = core.admitUpgrade(request.ip, undefined);
      if (!admission.ok) {
        throw new AppError('RATE_LIMITED', 'too many WebSocket upgrades from this address', {
          details: { retryAfterS: admission.retryAfterS },
        });
      }
      const queryIndex = request.url.indexOf('?');
      accepted.set(
        request,
        await core.authenticateUpgrade({
          authorization: request.headers.authorization,
          protocols: request.headers['sec-websocket-protocol'],
          query: queryIndex === -1 ? '' : request.url.slice(queryIndex + 1),
        }),
      );
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
          // A peer that stopped reading never completes the closing handshake.
          setTimeout(() => socket.terminate(), 2_000).unref();
        },
      });
      socket.on('pong', () => handler.onPong?.());
      socket.on('message', (data: Buffer, isBinary: boolean) => handler.onMessage(data, isBinary));
      socket.on('close', (code: number) => {
        closed = true;
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
  return { stopHeartbeat: () => clearInterval(heartbeat) };
}
