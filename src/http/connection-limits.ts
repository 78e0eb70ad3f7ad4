/**
 * Bounds on the REST listener's connections, so that no client can hold the process's file
 * descriptors (security review 20):
 * - a request has HTTP_REQUEST_TIMEOUT_MS from its first byte to arrive whole, body included (Fastify
 *   sets Node's requestTimeout to 0, none: a request whose headers had arrived and whose body never
 *   came held its connection for ever), and a new connection as long to send its first request; Node
 *   answers 408 and closes it. Node looks at the connections every quarter of that (at most 30 s).
 * - at most HTTP_MAX_CONNECTIONS_PER_IP open connections per client (an IPv6 client as its /64,
 *   as the per-IP rate limits count), and HTTP_MAX_CONNECTIONS in all (Node's maxConnections); one
 *   more is closed at once. The client of a connection is its peer: a peer TRUST_PROXY names (or
 *   any peer, with a hop count) is the proxy, whose connections carry many clients, and is not capped.
 */
import type { Server, ServerOptions } from 'node:http';
import type { Socket } from 'node:net';
import proxyAddr from '@fastify/proxy-addr';
import { Counter, type Registry } from 'prom-client';
import { clientNetwork } from '../platform/client-network.js';

export interface HttpEdgeLimits {
  readonly requestTimeoutMs: number;
  readonly maxConnectionsPerIp: number;
  readonly maxConnections: number;
}

/** Node's check interval for requestTimeout/headersTimeout: a quarter of the timeout, at most 30 s. */
const checkingIntervalMs = (timeoutMs: number) => Math.min(30_000, Math.max(100, Math.floor(timeoutMs / 4)));

/** The Fastify options that bound how long a request may take to arrive. */
export function requestTimeoutOptions(limits: HttpEdgeLimits): {
  requestTimeout: number;
  http: ServerOptions;
} {
  return {
    requestTimeout: limits.requestTimeoutMs,
    http: {
      // Node requires headersTimeout <= requestTimeout when it creates the server, before Fastify
      // sets requestTimeout: against Node's default (300 s) a value above it (HTTP_REQUEST_TIMEOUT_MS
      // may be 600 s) failed the start with a RangeError (review 30). So both are given here.
      requestTimeout: limits.requestTimeoutMs,
      // Its default (60 s) would outlast a short requestTimeout.
      headersTimeout: limits.requestTimeoutMs,
      connectionsCheckingInterval: checkingIntervalMs(limits.requestTimeoutMs),
      // An HTTP/1.1 request without Host is refused by the input guard, as problem+json naming the
      // header: Node's own check answered a bare 400 with no body (review 31).
      requireHostHeader: false,
    },
  };
}

/**
 * Caps the open connections of `server` per client and in all. Counts on 'connection' and 'close'
 * of each socket; a socket over the cap is destroyed at once (its descriptor is freed before the
 * next accept).
 */
export function capConnections(
  server: Server,
  limits: HttpEdgeLimits,
  trustProxy: number | readonly string[],
  registry: Registry,
): void {
  const refused = new Counter({
    name: 'gigwire_http_connections_refused_total',
    help: 'REST connections closed on arrival: per_ip = over HTTP_MAX_CONNECTIONS_PER_IP, total = over HTTP_MAX_CONNECTIONS.',
    labelNames: ['reason'],
    registers: [registry],
  });
  refused.inc({ reason: 'per_ip' }, 0);
  refused.inc({ reason: 'total' }, 0);
  server.maxConnections = limits.maxConnections;
  server.on('drop', () => refused.inc({ reason: 'total' }));
  // With a hop count every peer is the proxy; with addresses, only those named.
  const isProxy: (address: string) => boolean =
    typeof trustProxy === 'number'
      ? () => trustProxy > 0
      : (() => {
          const trusted = proxyAddr.compile([...trustProxy]);
          return (address: string) => trustProxy.length > 0 && trusted(address, 0);
        })();
  const open = new Map<string, number>();
  server.on('connection', (socket: Socket) => {
    const address = socket.remoteAddress;
    if (address === undefined || isProxy(address)) return;
    const client = clientNetwork(address);
    const count = (open.get(client) ?? 0) + 1;
    if (count > limits.maxConnectionsPerIp) {
      refused.inc({ reason: 'per_ip' });
      socket.destroy();
      return;
    }
    open.set(client, count);
    socket.once('close', () => {
      const left = (open.get(client) ?? 1) - 1;
      if (left <= 0) open.delete(client);
      else open.set(client, left);
    });
  });
}
