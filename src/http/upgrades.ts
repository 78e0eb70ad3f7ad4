/**
 * Upgrade requests on a process that also serves WebSockets through Fastify (the gateway's /ws,
 * @fastify/websocket). Node hands every request with an Upgrade header to the server's 'upgrade'
 * listeners once there is one, and @fastify/websocket answered each of them as a WebSocket
 * handshake (review 33):
 * - a WebSocket upgrade of a REST path (`GET /v1/users`) was accepted, 101 Switching Protocols,
 *   and the socket closed at once: a client learnt nothing of its mistake;
 * - any other upgrade (`Upgrade: h2c`, which `curl --http2` sends with a plain-HTTP GET) was a
 *   text/plain 400 "Invalid Upgrade header", where a process without the gateway serves the request
 *   (RFC 9110 §7.8: a server may ignore Upgrade);
 * - a POST with an Upgrade header was a text/plain 405 "Invalid HTTP method".
 * Now a WebSocket upgrade (GET) of a WebSocket route goes on to @fastify/websocket as before, once its
 * Upgrade, Sec-WebSocket-Key and Sec-WebSocket-Version are what `ws` accepts (a text/plain 400 from
 * `ws` otherwise, after the token was checked); a GET or HEAD asking for another protocol is served as
 * if it had not asked (then its connection closes: Node has let go of it); anything else is a 400
 * problem+json naming the header.
 */

import { randomUUID } from 'node:crypto';
import { type IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { answerOnSocket } from './plugins/errors.js';

/** The scheme and authority of a request target in absolute form. */
const ABSOLUTE_FORM_PREFIX = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i;

type UpgradeListener = (request: IncomingMessage, socket: Duplex, head: Buffer) => void;

const asksForWebSocket = (request: IncomingMessage): boolean =>
  (request.headers.upgrade ?? '')
    .split(',')
    .some((protocol) => protocol.trim().toLowerCase() === 'websocket');

/** The Sec-WebSocket-Key of a handshake (RFC 6455 §4.1: 16 bytes in base64), as `ws` checks it. */
const WEBSOCKET_KEY = /^[+/0-9A-Za-z]{22}==$/;

/**
 * What `ws` would refuse in a WebSocket handshake, with a text/plain 400 written after the
 * route's hooks (token checked, upgrade admitted): found first, as problem+json naming the header.
 */
function handshakeProblem(
  request: IncomingMessage,
): { header: string; message: string; headers?: ReadonlyArray<readonly [string, string]> } | undefined {
  if (request.headers.upgrade?.toLowerCase() !== 'websocket')
    return { header: 'upgrade', message: 'must be exactly "websocket"' };
  const key = request.headers['sec-websocket-key'];
  if (key === undefined || !WEBSOCKET_KEY.test(key))
    return { header: 'sec-websocket-key', message: 'must be 16 bytes in base64 (RFC 6455 §4.1)' };
  const version = Number(request.headers['sec-websocket-version']);
  if (version !== 13 && version !== 8)
    return {
      header: 'sec-websocket-version',
      message: 'must be 13',
      headers: [['sec-websocket-version', '13, 8']],
    };
  return undefined;
}

/** A request Node took out of HTTP for its Upgrade header, answered by the app as a plain one. */
function serveWithoutUpgrade(app: FastifyInstance, request: IncomingMessage, socket: Duplex): void {
  const response = new ServerResponse(request);
  // Node's parser has let go of the connection: nothing more is read from it.
  response.shouldKeepAlive = false;
  response.assignSocket(socket as never);
  response.once('finish', () => socket.end());
  app.routing(request, response);
}

/**
 * Puts the rule above in front of the 'upgrade' listeners registered so far (@fastify/websocket's).
 * `webSocketPaths`: the paths of the routes declared `websocket: true`.
 */
export function routeUpgrades(
  app: FastifyInstance,
  webSocketPaths: ReadonlySet<string>,
  extraHeaders: ReadonlyArray<readonly [string, string]>,
): void {
  const listeners = app.server.listeners('upgrade') as UpgradeListener[];
  if (listeners.length === 0) return;
  app.server.removeAllListeners('upgrade');
  app.server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    // Origin-form, or absolute-form as a proxy may send it (`GET http://host/ws`).
    const path = (request.url ?? '/').replace(ABSOLUTE_FORM_PREFIX, '').split('?')[0] || '/';
    const webSocket = asksForWebSocket(request);
    const problem =
      webSocket && request.method === 'GET' && webSocketPaths.has(path) ? handshakeProblem(request) : null;
    if (problem === undefined) {
      // @fastify/websocket's, which listens for the socket's errors itself.
      for (const listener of listeners) listener.call(app.server, request, socket, head);
      return;
    }
    // Node took its own error listener off the socket when it handed it over: without one, a reset
    // of this connection would reach the process's uncaughtException handler.
    socket.on('error', () => socket.destroy());
    const refuse = (
      header: string,
      message: string,
      headers: ReadonlyArray<readonly [string, string]> = [],
    ) => {
      const requestId = randomUUID();
      app.log.debug({ code: 'VALIDATION_FAILED', requestId, header }, 'upgrade refused');
      answerOnSocket(
        socket,
        {
          status: 400,
          code: 'VALIDATION_FAILED',
          detail: `invalid headers: headers.${header}: ${message}`,
          requestId,
          instance: path,
          extensions: { errors: [{ path: `headers.${header}`, message }] },
        },
        [...headers, ...extraHeaders],
      );
    };
    if (problem !== null) {
      refuse(problem.header, problem.message, problem.headers);
      return;
    }
    if (!webSocket && (request.method === 'GET' || request.method === 'HEAD')) {
      serveWithoutUpgrade(app, request, socket);
      return;
    }
    const where = [...webSocketPaths].join(', ');
    refuse(
      'upgrade',
      webSocket
        ? `no WebSocket is opened here: a GET of ${where} opens one`
        : `is honoured only for a WebSocket (a GET of ${where}): send this request without it`,
    );
  });
}
