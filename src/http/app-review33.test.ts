/**
 * Review 33 (the REST edge as an attacker and a careless client):
 * - an Expect other than 100-continue was answered by Node itself: a bare 417, no body, no helmet
 *   headers; now problem+json like every other refusal;
 * - an error answer kept the cache-control its route set before failing (the JWKS's `public,
 *   max-age=60` on its 500/503), and a 404 outside /v1/ had none: every error is `no-store`;
 * - without CORS_ORIGINS an OPTIONS of a path that exists was 404 "No route": 405 with `Allow`;
 * - a query string whose percent-escapes are not UTF-8 (`q=caf%E9`) was read as its raw text
 *   (a search for the literal `caf%E9`, answered 200): 400 naming `querystring`;
 * - the OpenAPI document left out answers the server gives on any operation (400) or on any
 *   that can carry a body (413, 415);
 * - where the gateway serves /ws through Fastify, every request with an Upgrade header went to
 *   @fastify/websocket: a WebSocket upgrade of a REST path was 101 then closed, `Upgrade: h2c`
 *   (curl --http2) a text/plain 400; now 400 problem+json, and the GET served as without it.
 * The app is the real one; the services a request reaches are stubs.
 */
import { request as httpRequest } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import websocket from '@fastify/websocket';
import { afterEach, describe, expect, it } from 'vitest';
import { restAppWithStubs } from './app.testing.js';
import { helmetHeaders } from './plugins/security.js';

const USER = '00000000-0000-4000-8000-000000000001';
const bearer = { authorization: 'Bearer token' };

let app: Awaited<ReturnType<typeof restAppWithStubs>> | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

const expectSecured = (headers: Record<string, unknown>) => {
  for (const [name, value] of helmetHeaders()) expect(headers[name.toLowerCase()], name).toBe(value);
  expect(headers['cache-control']).toBe('no-store');
};

describe('answers no route gives', () => {
  it('answers an Expect other than 100-continue 417 as problem+json naming the header, with helmet and no-store', async () => {
    app = await restAppWithStubs();
    await app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = app.server.address() as AddressInfo;
    const answer = await new Promise<{ status: number; headers: Record<string, unknown>; body: string }>(
      (resolve, reject) => {
        const sent = httpRequest(
          { host: '127.0.0.1', port, method: 'GET', path: '/v1/me?x=1', headers: { expect: 'foo' } },
          (res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (chunk: string) => {
              body += chunk;
            });
            res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
          },
        );
        sent.on('error', reject);
        sent.end();
      },
    );
    expect(answer.status).toBe(417);
    expect(answer.headers['content-type']).toContain('application/problem+json');
    expectSecured(answer.headers);
    const body = JSON.parse(answer.body) as { requestId: string };
    expect(body).toMatchObject({
      code: 'VALIDATION_FAILED',
      status: 417,
      instance: '/v1/me',
      errors: [expect.objectContaining({ path: 'headers.expect' })],
    });
    expect(answer.headers['x-request-id']).toBe(body.requestId);
  });

  it('keeps no error in a cache: a JWKS that cannot read its key set, and a 404 outside /v1/', async () => {
    app = await restAppWithStubs({
      tokens: {
        jwks: async () => {
          throw new Error('the key set cannot be read');
        },
      },
    });
    const jwks = await app.inject({ method: 'GET', url: '/.well-known/jwks.json' });
    expect(jwks.statusCode).toBe(500);
    expect(jwks.headers['cache-control']).toBe('no-store');
    for (const url of ['/V1/ME', '//v1/me', '/nope']) {
      const answer = await app.inject({ method: 'GET', url });
      expect(answer.statusCode, url).toBe(404);
      expect(answer.headers['cache-control'], url).toBe('no-store');
    }
  });

  it('answers an OPTIONS without CORS_ORIGINS 405 naming the methods of a path that exists, 404 elsewhere', async () => {
    app = await restAppWithStubs();
    const answer = await app.inject({ method: 'OPTIONS', url: '/v1/me' });
    expect(answer.statusCode).toBe(405);
    expect(answer.headers.allow).toBe('GET, HEAD, PATCH');
    expect(answer.json()).toMatchObject({ code: 'METHOD_NOT_ALLOWED', allow: ['GET', 'HEAD', 'PATCH'] });
    expect((await app.inject({ method: 'OPTIONS', url: '/v1/nope' })).statusCode).toBe(404);
  });
});

describe('query strings', () => {
  it('refuses percent-escapes that are not UTF-8 400 naming querystring, never reads them as text', async () => {
    const searched: unknown[] = [];
    app = await restAppWithStubs({
      auth: { authenticateNow: () => ({ userId: USER, roles: ['worker'], sessionId: 's' }) },
      users: {
        searchWorkers: async (query: unknown) => {
          searched.push(query);
          return { data: [], nextCursor: null };
        },
      },
    });
    for (const query of ['q=caf%E9', 'q=%ZZab', 'q=ab%C3', 'q=ab%ED%A0%80', 'cursor=%FF']) {
      const answer = await app.inject({ method: 'GET', url: `/v1/users?${query}`, headers: bearer });
      expect(answer.statusCode, query).toBe(400);
      expect(answer.headers['content-type']).toContain('application/problem+json');
      expect(answer.json(), query).toMatchObject({
        code: 'VALIDATION_FAILED',
        errors: [{ path: 'querystring' }],
      });
    }
    expect(searched).toEqual([]);
    const fine = await app.inject({
      method: 'GET',
      url: '/v1/users?q=caf%C3%A9+au+lait%25',
      headers: bearer,
    });
    expect(fine.statusCode).toBe(200);
    expect(searched).toEqual([expect.objectContaining({ q: 'café au lait%' })]);
  });
});

describe('the OpenAPI document', () => {
  it('declares 400 on every operation, and 413 and 415 on every one that can carry a body', async () => {
    app = await restAppWithStubs({
      payments: { idempotency: {} },
      wallet: { idempotency: {} },
      jobs: { marketplace: {}, idempotency: {} },
      notifications: {},
      contracts: { contracts: {}, idempotency: {} },
      reviews: { marketplace: {}, idempotency: {} },
    });
    const document = (await app.inject({ method: 'GET', url: '/openapi.json' })).json<{
      paths: Record<string, Record<string, { responses: Record<string, unknown> }>>;
    }>();
    const missing: string[] = [];
    for (const [path, item] of Object.entries(document.paths))
      for (const [method, operation] of Object.entries(item)) {
        const expected = [
          '400',
          ...(['post', 'put', 'patch', 'delete'].includes(method) ? ['413', '415'] : []),
        ];
        for (const status of expected)
          if (operation.responses[status] === undefined) missing.push(`${method} ${path} ${status}`);
      }
    expect(missing).toEqual([]);
    // Checked on the operations that lacked them.
    expect(document.paths['/.well-known/jwks.json']?.get?.responses).toHaveProperty('400');
    expect(document.paths['/v1/auth/logout-all']?.post?.responses).toHaveProperty('415');
    expect(document.paths['/v1/payments/webhook']?.post?.responses).toHaveProperty('413');
  });
});

/** Sends `head` and reads the answer's head and body (all of it, or up to a 101's head). */
function rawExchange(port: number, head: string): Promise<{ head: string; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(head));
    let text = '';
    const done = () => {
      const at = text.indexOf('\r\n\r\n');
      socket.destroy();
      resolve({ head: text.slice(0, at), body: text.slice(at + 4) });
    };
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      text += chunk;
      if (text.startsWith('HTTP/1.1 101 ') && text.includes('\r\n\r\n')) done();
    });
    socket.on('close', done);
    socket.on('error', reject);
  });
}

describe('upgrade requests where the gateway serves /ws through Fastify', () => {
  it('answers a WebSocket upgrade of a REST path 400 problem+json, serves a GET asking for h2c as without it, a handshake ws would refuse too, and still opens /ws', async () => {
    const searched: unknown[] = [];
    app = await restAppWithStubs(
      {
        auth: { authenticateNow: () => ({ userId: USER, roles: ['worker'], sessionId: 's' }) },
        users: {
          searchWorkers: async (query: unknown) => {
            searched.push(query);
            return { data: [], nextCursor: null };
          },
        },
      },
      async (fastify) => {
        await fastify.register(websocket);
        fastify.get('/ws', { websocket: true, schema: { hide: true } }, (socket) => socket.close());
      },
    );
    await app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = app.server.address() as AddressInfo;
    const webSocket =
      'Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n';
    const auth = 'Host: x\r\nAuthorization: Bearer t\r\n';

    const refused = await rawExchange(port, `GET /v1/users HTTP/1.1\r\n${auth}${webSocket}\r\n`);
    expect(refused.head).toMatch(/^HTTP\/1\.1 400 /);
    expect(refused.head.toLowerCase()).toContain('content-type: application/problem+json');
    expect(refused.head.toLowerCase()).toContain('x-content-type-options: nosniff');
    expect(JSON.parse(refused.body)).toMatchObject({
      code: 'VALIDATION_FAILED',
      instance: '/v1/users',
      errors: [expect.objectContaining({ path: 'headers.upgrade' })],
    });
    const post = await rawExchange(
      port,
      `POST /v1/me/contacts/${USER} HTTP/1.1\r\n${auth}Connection: Upgrade\r\nUpgrade: h2c\r\n\r\n`,
    );
    expect(post.head).toMatch(/^HTTP\/1\.1 400 /);
    expect(JSON.parse(post.body)).toMatchObject({
      errors: [expect.objectContaining({ path: 'headers.upgrade' })],
    });
    expect(searched).toEqual([]);

    const h2c = await rawExchange(
      port,
      `GET /v1/users?limit=3 HTTP/1.1\r\n${auth}Connection: Upgrade\r\nUpgrade: h2c\r\n\r\n`,
    );
    expect(h2c.head).toMatch(/^HTTP\/1\.1 200 /);
    expect(JSON.parse(h2c.body)).toEqual({ data: [], nextCursor: null });
    expect(searched).toEqual([expect.objectContaining({ limit: 3 })]);

    const badVersion = await rawExchange(
      port,
      `GET /ws HTTP/1.1\r\nHost: x\r\n${webSocket.replace(': 13', ': 12')}\r\n`,
    );
    expect(badVersion.head).toMatch(/^HTTP\/1\.1 400 /);
    expect(badVersion.head.toLowerCase()).toContain('sec-websocket-version: 13, 8');
    expect(JSON.parse(badVersion.body)).toMatchObject({
      errors: [expect.objectContaining({ path: 'headers.sec-websocket-version' })],
    });
    const opened = await rawExchange(port, `GET /ws HTTP/1.1\r\nHost: x\r\n${webSocket}\r\n`);
    expect(opened.head).toMatch(/^HTTP\/1\.1 101 /);
  });
});
