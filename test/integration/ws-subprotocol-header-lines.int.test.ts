/**
 * RFC 6455 §11.3.4: Sec-WebSocket-Protocol "MAY appear multiple times in an HTTP request (which is
 * logically the same as a single |Sec-WebSocket-Protocol| header field that contains all values)".
 * Both transports read every line: an encoding or a `connect.` credential on a later line counts
 * (uWS's getHeader() alone returns the first line only; Node's HTTP parser joins them). Raw
 * requests, since WebSocket clients send one line.
 */
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestNode, type TestNode } from '../support/context.js';
import { httpClient, registerUser } from '../support/http.js';

describe('Sec-WebSocket-Protocol over several header lines', () => {
  let test: TestNode;
  let connectToken: string;

  beforeAll(async () => {
    test = await startTestNode();
    const api = httpClient(test.node.baseUrl);
    const user = await registerUser(api);
    const login = await api.post<{ connectToken: string }>('/v1/auth/login', {
      login: user.username,
      password: user.password,
    });
    connectToken = login.body.connectToken;
  });
  afterAll(async () => {
    await test.stop();
  });

  /** The response head of a raw upgrade request to `port` carrying `protocolLines`. */
  const responseHead = (port: number, protocolLines: readonly string[]) =>
    new Promise<string>((resolve, reject) => {
      const socket = connect(port, '127.0.0.1');
      let data = '';
      socket.on('data', (chunk) => {
        data += chunk.toString('latin1');
        const end = data.indexOf('\r\n\r\n');
        if (end !== -1) {
          socket.destroy();
          resolve(data.slice(0, end));
        }
      });
      socket.on('error', reject);
      socket.on('connect', () => {
        socket.write(
          'GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
            `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\n` +
            protocolLines.map((line) => `Sec-WebSocket-Protocol: ${line}\r\n`).join('') +
            '\r\n',
        );
      });
    });

  /** The transport's port; undefined for uWS where no uWS build loads (the node then serves /ws on Fastify only). */
  const portOf = (transport: 'uws' | 'fastify-ws'): number | undefined => {
    if (transport === 'fastify-ws') return Number(new URL(test.node.baseUrl).port);
    return test.node.uwsUrl === undefined ? undefined : Number(new URL(test.node.uwsUrl).port);
  };

  it.for(['uws', 'fastify-ws'] as const)(
    'encoding first, connect token on a second line (%s)',
    async (t, { skip }) => {
      const port = portOf(t);
      if (port === undefined) return skip('no uWS build loads on this Node');
      const head = await responseHead(port, ['gigwire.v1.json', `connect.${connectToken}`]);
      expect(head).toMatch(/^HTTP\/1\.1 101 /);
      expect(head.toLowerCase()).toContain('sec-websocket-protocol: gigwire.v1.json');
    },
  );

  it.for(['uws', 'fastify-ws'] as const)(
    'connect token first, encoding on a second line (%s)',
    async (t, { skip }) => {
      const port = portOf(t);
      if (port === undefined) return skip('no uWS build loads on this Node');
      const head = await responseHead(port, [`connect.${connectToken}`, 'gigwire.v1.json']);
      expect(head).toMatch(/^HTTP\/1\.1 101 /);
      expect(head.toLowerCase()).toContain('sec-websocket-protocol: gigwire.v1.json');
    },
  );
});
