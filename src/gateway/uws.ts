/**
 * The uWebSockets.js listener on WS_PORT: /ws only. Each upgrade first takes a token from its client
 * address's bucket (429 and no socket, before any auth work, otherwise); auth happens before the
 * upgrade completes (401 and no socket otherwise). When that decision can be made from memory (a
 * connect token whose key and session row are cached: `authenticateUpgrade` answers at once) the upgrade
 * completes synchronously inside the handler, as raw uWS does; otherwise it is asynchronous, with
 * uWS hygiene (ARCHITECTURE.md §3.11): headers are copied synchronously, onAborted is registered
 * before the await, the upgrade is corked, every send after an await is corked. Heartbeats are
 * uWS's automatic pings with idleTimeout (no JS timer per socket).
 *
 * Upstream bug worked around (uNetworking/uWebSockets #1928, fixed by PR #1929, which the only
 * build on npm for Node 20 predates): after an asynchronous upgrade inside res.cork(), cork() can
 * misread a socket upgraded in place as an HTTP response marked "Connection: close" and drop the
 * new WebSocket (1006) right after `open`. That check runs only when res.cork() corked the response
 * itself; when another socket holds the cork, res.cork() just calls its handler. So an
 * asynchronous upgrade is completed inside the cork of another open socket (the cork anchor): the
 * node's own anchor, a WebSocket this process opens to a secret path of this app over a Unix socket
 * only it listens on, before the listener is handed out (upgraded synchronously, which #1928 does
 * not affect), so even a node's first client socket is covered — and with GATEWAY_PROCESSES > 1
 * the anchor cannot land in a sibling process, as a connection to the shared WS_PORT could; while that is down (not expected on loopback; it is
 * reopened), a recently opened client socket; a plain res.cork() only when neither exists, counted
 * and logged. No npm build of uWS.js that loads here carries the fix (src/gateway/README.md).
 *
 * Room fan-out uses uWS topics: `publish` hands one buffer to C++, which writes it to every
 * subscriber; topic frames bypass the connection layer's send path, so their backlog is checked by
 * the node's backpressure sweep (each socket about once a second, a tenth of them every 100 ms)
 * and by the hub after every quarter of maxBufferedBytes published to a room (a busy room could
 * otherwise fill a stalled reader past maxBackpressure between two sweeps), and uWS itself closes a
 * socket past maxBackpressure rather than dropping a frame (closeOnBackpressureLimit) — without a
 * close frame, so the client would see 1006 instead of our 1013.
 */

import type { HttpRequest, HttpResponse, us_listen_socket, us_socket, WebSocket } from 'uWebSockets.js';
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocketClient from 'ws';
import type { ErrorCode } from '../../protocol/src/codes.js';
import { problem } from '../http/problem.js';
import { isDependencyUnavailable } from '../platform/errors.js';
import type { Logger } from '../platform/logger.js';
import type { UwsModule } from './engine.js';
import { anchorSocketFileName, removeStaleAnchorSockets } from './stale-anchor-sockets.js';
import type { AcceptedUpgrade, GatewayCore, SocketHandler, TopicPublisher } from './transport.js';
import { UPGRADE_UNAVAILABLE, upgradeFailure } from './upgrade.js';

export interface UwsLimits {
  readonly maxFrameBytes: number;
  /** A socket whose unsent bytes pass this is closed 1013 by the connection layer. */
  readonly maxBufferedBytes: number;
  readonly idleTimeoutS: number;
}

/** uWS's own frame cap, as a multiple of maxFrameBytes (1 MiB with the default 64 KiB). */
const UWS_PAYLOAD_HEADROOM = 16;

interface UserData {
  accepted: AcceptedUpgrade | undefined;
  /** Gives back the client's place under WS_MAX_CONNECTIONS_PER_IP (at close). */
  release: () => void;
  handler: SocketHandler | undefined;
  closed: boolean;
}

export interface UwsListener {
  readonly port: number;
  /** Stops listening; open sockets stay (the caller closes them with 1012 first). */
  readonly stopListening: () => void;
  /** Stops accepting for a while (fd-guard.ts: few file descriptors left); open sockets stay. */
  readonly pause: () => void;
  /** Listens again on the same port after pause(); false if that failed. */
  readonly resume: () => boolean;
  /** Writes one frame to every socket subscribed to `topic`. */
  readonly publish: TopicPublisher;
}

/** An upgrade refused before any WebSocket exists: problem+json as REST answers it, one request id each. */
const upgradeProblem = (code: ErrorCode, detail: string, extensions: Record<string, unknown> = {}) =>
  JSON.stringify(problem(code, detail, { instance: '/ws', requestId: randomUUID() }, extensions));

function rejectUpgrade(res: HttpResponse, status: string, body: string): void {
  res.cork(() => {
    res.writeStatus(status).writeHeader('content-type', 'application/problem+json').end(body);
  });
}

/**
 * The headers an upgrade reads that may come over several lines, each as one comma-separated
 * value with its lines in order, as Node's HTTP parser gives them to the Fastify transport (uWS's
 * getHeader() returns the first line only; one pass over the headers, which uWS hands over
 * lowercased):
 * - Sec-WebSocket-Protocol: RFC 6455 §11.3.4 lets a client split its list over several lines (an
 *   encoding or a `connect.` entry on a later line would be ignored);
 * - X-Forwarded-For: a proxy that appends its own line (HAProxy's `option forwardfor`) leaves the
 *   client's line first, so the first line alone would let a client pick its upgrade-limit bucket.
 */
function multiLineHeaders(req: HttpRequest): {
  protocols: string | undefined;
  forwardedFor: string | undefined;
} {
  let protocols = '';
  let forwardedFor = '';
  req.forEach((key, value) => {
    if (key === 'sec-websocket-protocol') protocols = protocols === '' ? value : `${protocols}, ${value}`;
    else if (key === 'x-forwarded-for')
      forwardedFor = forwardedFor === '' ? value : `${forwardedFor}, ${value}`;
  });
  return { protocols: protocols || undefined, forwardedFor: forwardedFor || undefined };
}

export async function listenUws(options: {
  readonly uws: UwsModule;
  readonly host: string;
  readonly port: number;
  readonly core: GatewayCore;
  readonly limits: UwsLimits;
  readonly log: Logger;
}): Promise<UwsListener> {
  const { uws, core, log } = options;
  const app = uws.App();
  /**
   * A few recently opened sockets still open (see the header for why upgrades borrow the cork of
   * one); several, so one closing does not leave upgrades without an anchor.
   */
  let corkAnchors: { readonly ws: WebSocket<UserData>; readonly data: UserData }[] = [];
  const CORK_ANCHORS = 8;
  /** The node's own anchor (see the header): the server side of the loopback socket, when open. */
  let selfAnchor: WebSocket<unknown> | undefined;
  let anchorClient: WebSocketClient | undefined;
  let stopped = false;
  let unanchored = 0;
  const corkedUpgrade = (res: HttpResponse, upgrade: () => void) => {
    const anchor = selfAnchor ?? corkAnchors.find((candidate) => !candidate.data.closed)?.ws;
    if (anchor !== undefined) {
      anchor.cork(() => res.cork(upgrade));
      return;
    }
    unanchored += 1;
    log.warn({ unanchored }, 'WebSocket upgrade without a cork anchor (exposed to uWS #1928)');
    res.cork(upgrade);
  };
  const anchorPath = `/.cork-anchor/${randomUUID()}`;
  app.ws(anchorPath, {
    compression: uws.DISABLED,
    maxPayloadLength: 125,
    idleTimeout: 0,
    sendPingsAutomatically: false,
    open: (ws) => {
      selfAnchor = ws;
    },
    close: (ws) => {
      if (selfAnchor === ws) selfAnchor = undefined;
    },
  });
  /** This process's own socket file for the anchor (nobody else listens on it). */
  const anchorSocketPath = join(tmpdir(), anchorSocketFileName(process.pid, randomUUID().slice(0, 8)));
  // Files of gateway processes killed before their stop (crash, SIGKILL) go; live ones stay.
  void removeStaleAnchorSockets(tmpdir(), log);
  /** Opens the anchor; settles once it is open or has failed (then retried every second). */
  const openAnchor = () =>
    new Promise<void>((settle) => {
      if (stopped) return settle();
      const client = new WebSocketClient(`ws+unix://${anchorSocketPath}:${anchorPath}`);
      anchorClient = client;
      client.on('open', () => settle());
      client.on('error', (error) => log.warn({ err: error }, 'uWS cork anchor failed'));
      client.on('close', () => {
        settle();
        if (!stopped) setTimeout(() => void openAnchor(), 1_000).unref();
      });
    });
  app.ws<UserData>('/ws', {
    compression: uws.DISABLED,
    // Above our limit, so a frame a little too big gets our close 1009; uWS itself drops the TCP
    // connection without a close frame (the peer sees 1006) past this hard cap.
    maxPayloadLength: options.limits.maxFrameBytes * UWS_PAYLOAD_HEADROOM,
    // Twice our own bound: a slow consumer is normally closed 1013 by us first (after a send, or by
    // the sweep for topic frames); past this, uWS closes it instead of dropping a frame silently.
    maxBackpressure: options.limits.maxBufferedBytes * 2 + options.limits.maxFrameBytes * 2,
    closeOnBackpressureLimit: 1,
    idleTimeout: options.limits.idleTimeoutS,
    sendPingsAutomatically: true,
    upgrade: (res, req, context) => {
      // MUST copy everything from req now: it is invalid after this callback returns.
      const { protocols, forwardedFor } = multiLineHeaders(req);
      const input = {
        authorization: req.getHeader('authorization') || undefined,
        protocols,
        query: req.getQuery() ?? '',
      };
      const key = req.getHeader('sec-websocket-key');
      const extensions = req.getHeader('sec-websocket-extensions');
      const admission = core.admitUpgrade(Buffer.from(res.getRemoteAddressAsText()).toString(), forwardedFor);
      if (!admission.ok) {
        res.cork(() => {
          res
            .writeStatus('429 Too Many Requests')
            .writeHeader('retry-after', String(admission.retryAfterS))
            .writeHeader('content-type', 'application/problem+json')
            .end(upgradeProblem('RATE_LIMITED', admission.message, { retryAfterS: admission.retryAfterS }));
        });
        return;
      }
      const { release } = admission;
      const refuse = (error: unknown) => {
        release();
        // Only a credential failure is the client's (401, its message); anything else is ours:
        // 503 with a neutral message, the cause logged here and never sent.
        const failure = upgradeFailure(error);
        if (failure.code === 'UNAUTHORIZED') {
          rejectUpgrade(res, '401 Unauthorized', upgradeProblem('UNAUTHORIZED', failure.message));
          return;
        }
        // A dependency that cannot serve is a warning, as REST logs it: at `error` a database
        // outage wrote one error line per reconnect of every client (review 31).
        const cause = failure.cause ?? failure;
        log[isDependencyUnavailable(cause) ? 'warn' : 'error']({ err: cause }, 'WebSocket upgrade failed');
        rejectUpgrade(res, '503 Service Unavailable', upgradeProblem('UNAVAILABLE', UPGRADE_UNAVAILABLE));
      };
      // The common case (a connect token, its key and session row in memory) is decided right here
      // and upgraded synchronously, as raw uWS does: no promise, no abort handler, no cork anchor
      // (#1928 concerns asynchronous upgrades only).
      let decision: AcceptedUpgrade | Promise<AcceptedUpgrade>;
      try {
        decision = core.authenticateUpgrade(input);
      } catch (error) {
        refuse(error);
        return;
      }
      if (!(decision instanceof Promise)) {
        res.upgrade<UserData>(
          { accepted: decision, release, handler: undefined, closed: false },
          key,
          decision.protocol,
          extensions,
          context,
        );
        return;
      }
      let aborted = false;
      res.onAborted(() => {
        aborted = true;
        release();
      });
      decision.then(
        (accepted) => {
          if (aborted) return;
          corkedUpgrade(res, () => {
            res.upgrade<UserData>(
              { accepted, release, handler: undefined, closed: false },
              key,
              accepted.protocol,
              extensions,
              context,
            );
          });
        },
        (error: unknown) => {
          if (!aborted) refuse(error);
        },
      );
    },
    open: (ws: WebSocket<UserData>) => {
      const data = ws.getUserData();
      if (data.accepted === undefined) return;
      if (corkAnchors.length < CORK_ANCHORS) corkAnchors.push({ ws, data });
      data.handler = core.open(data.accepted, {
        kind: 'uws',
        send: (payload, isBinary) => {
          if (data.closed) return false;
          // Corked: sends after an await (actors, Redis callbacks) would otherwise be a syscall each.
          ws.cork(() => {
            ws.send(payload, isBinary);
          });
          return true;
        },
        subscribe: (topic) => !data.closed && ws.subscribe(topic),
        unsubscribe: (topic) => {
          if (!data.closed) ws.unsubscribe(topic);
        },
        bufferedAmount: () => (data.closed ? 0 : ws.getBufferedAmount()),
        ping: () => {
          if (!data.closed) ws.cork(() => ws.ping());
        },
        close: (code, reason) => {
          if (data.closed) return;
          data.closed = true;
          ws.end(code, reason);
        },
      });
      data.accepted = undefined;
    },
    message: (ws, message, isBinary) => {
      if (message.byteLength > options.limits.maxFrameBytes) {
        const data = ws.getUserData();
        if (!data.closed) {
          data.closed = true;
          ws.end(1009, 'frame too big');
        }
        return;
      }
      ws.getUserData().handler?.onMessage(message, isBinary);
    },
    pong: (ws) => {
      ws.getUserData().handler?.onPong?.();
    },
    close: (ws, code) => {
      const data = ws.getUserData();
      data.closed = true;
      data.release();
      if (corkAnchors.some((anchor) => anchor.data === data)) {
        corkAnchors = corkAnchors.filter((anchor) => anchor.data !== data);
      }
      data.handler?.onClose(code);
      data.handler = undefined;
    },
  });
  app.any('/*', (res) => {
    res
      .writeStatus('404 Not Found')
      .writeHeader('content-type', 'text/plain')
      .end('WebSocket endpoint is /ws\n');
  });

  let listenSocket: us_listen_socket | undefined = await new Promise<us_listen_socket>((resolve, reject) => {
    app.listen(options.host, options.port, (socket) => {
      if (socket === false)
        reject(new Error(`uWebSockets.js could not listen on ${options.host}:${options.port}`));
      else resolve(socket);
    });
  });
  // The listen socket is a us_socket underneath; the typings keep the two apart.
  const port = uws.us_socket_local_port(listenSocket as unknown as us_socket);
  const closeListenSocket = () => {
    if (listenSocket !== undefined) uws.us_listen_socket_close(listenSocket);
    listenSocket = undefined;
  };
  const anchorListenSocket = await new Promise<us_listen_socket | undefined>((resolve) => {
    app.listen_unix((socket) => {
      if (!socket) log.warn({ path: anchorSocketPath }, 'uWS cork anchor socket could not listen');
      resolve(socket || undefined);
    }, anchorSocketPath);
  });
  // The server side opens (synchronous upgrade) before the client sees its 101.
  if (anchorListenSocket !== undefined) await openAnchor();
  log.info({ port, corkAnchor: selfAnchor !== undefined }, 'uWebSockets.js listening on /ws');
  return {
    port,
    stopListening: () => {
      stopped = true;
      closeListenSocket();
      if (anchorListenSocket !== undefined) uws.us_listen_socket_close(anchorListenSocket);
      rmSync(anchorSocketPath, { force: true });
      anchorClient?.terminate();
      selfAnchor?.close();
      selfAnchor = undefined;
    },
    pause: closeListenSocket,
    resume: () => {
      if (stopped) return false;
      if (listenSocket !== undefined) return true;
      // uWS calls back synchronously; the port is the one first bound (WS_PORT may be 0).
      app.listen(options.host, port, (socket) => {
        listenSocket = socket || undefined;
      });
      return listenSocket !== undefined;
    },
    publish: (topic, data, isBinary) => {
      app.publish(topic, data, isBinary);
    },
  };
}
