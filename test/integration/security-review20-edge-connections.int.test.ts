/**
 * Security review 20, the REST listener's connections: a client cannot hold them for ever nor
 * take them all. Before, Fastify left Node's requestTimeout at 0 (none), so a request whose
 * headers had arrived and whose body never came kept its connection (and a file descriptor) open
 * for good, and nothing capped the connections one address held: one machine could use up the
 * node's descriptors. Raw sockets; short settings; no timing assertions (a missing bound shows as
 * a socket that never closes, which the test's own timeout turns into a failure). And near the
 * file-descriptor limit the uWS listener stops accepting (at EMFILE uSockets spun a core and the
 * whole process could open nothing), while REST keeps serving and /metrics says so.
 */
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestNode, type TestNode } from '../support/context.js';

interface Peer {
  readonly socket: Socket;
  readonly received: () => string;
  /** Resolves once the server has closed the socket. */
  readonly closed: Promise<void>;
}

function open(port: number): Promise<Peer> {
  return new Promise((resolve, reject) => {
    let received = '';
    const socket = connect(port, '127.0.0.1');
    const closed = new Promise<void>((done) => socket.once('close', () => done()));
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1');
    });
    socket.once('connect', () => {
      socket.on('error', () => undefined);
      resolve({ socket, received: () => received, closed });
    });
    socket.once('error', reject);
  });
}

/** A keep-alive GET /health/live on `peer`, resolved with the status line once answered. */
async function liveOn(peer: Peer): Promise<string> {
  const before = peer.received().length;
  peer.socket.write('GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n');
  while (!peer.received().slice(before).includes('\r\n\r\n')) {
    await new Promise((next) => setTimeout(next, 20));
  }
  return peer.received().slice(before).split('\r\n')[0] ?? '';
}

describe('REST connections of one client are bounded', () => {
  let node: TestNode;
  let port: number;
  beforeAll(async () => {
    node = await startTestNode(
      { HTTP_REQUEST_TIMEOUT_MS: '500', HTTP_MAX_CONNECTIONS_PER_IP: '3' },
      // A limit below what this process has open: the node is near its limit from the start.
      { openFileLimit: () => 8 },
    );
    port = Number(new URL(node.node.baseUrl).port);
  }, 60_000);
  afterAll(async () => {
    await node?.stop();
  });

  it('answers 408 and closes a request whose body never arrives, and a connection that sends nothing', async () => {
    const unfinished = await open(port);
    unfinished.socket.write(
      'POST /v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"a',
    );
    const silent = await open(port);
    await Promise.all([unfinished.closed, silent.closed]);
    expect(unfinished.received()).toMatch(/^HTTP\/1\.1 408 /);
    expect(unfinished.received()).toContain('"code":"VALIDATION_FAILED"');
  }, 8_000);

  it('closes a connection over HTTP_MAX_CONNECTIONS_PER_IP at once, serves again once one is gone, and counts it', async () => {
    const held = [await open(port), await open(port), await open(port)];
    // Each answered: the server has accepted and counted all three.
    for (const peer of held) expect(await liveOn(peer)).toBe('HTTP/1.1 200 OK');
    const fourth = await open(port);
    fourth.socket.write('GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n');
    await fourth.closed;
    expect(fourth.received()).toBe('');
    held[0]?.socket.destroy();
    await held[0]?.closed;
    // The server counts the close when it sees it: retry until a new connection is served.
    let status = '';
    while (status !== 'HTTP/1.1 200 OK') {
      const next = await open(port);
      next.socket.write('GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      await next.closed;
      status = next.received().split('\r\n')[0] ?? '';
      if (status === 'HTTP/1.1 200 OK') {
        expect(next.received()).toMatch(
          /gigwire_http_connections_refused_total\{reason="per_ip"[^}]*\} [1-9]/,
        );
      }
    }
    for (const peer of held) peer.socket.destroy();
  }, 8_000);

  it('stops accepting on WS_PORT when few file descriptors are left, and keeps serving REST', async () => {
    const wsPort = Number(new URL(node.node.uwsUrl ?? 'ws://127.0.0.1:1/ws').port);
    expect(wsPort).toBeGreaterThan(0);
    const refused = await new Promise<string>((resolve) => {
      const socket = connect(wsPort, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve('connected');
      });
      socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'));
    });
    expect(refused).toBe('ECONNREFUSED');
    const metrics = await fetch(`${node.node.baseUrl}/metrics`);
    expect(metrics.status).toBe(200);
    const text = await metrics.text();
    expect(text).toMatch(/^gigwire_ws_listener_paused\{[^}]*\} 1$/m);
    expect(text).toMatch(/^process_open_fds\{[^}]*\} \d+$/m);
  });
});
