/**
 * deploy/nginx.conf (as compose mounts it, with only addresses and paths rewritten, as
 * `npm run cluster` does) answers the errors it makes itself in the API's own shape: problem+json
 * with a stable code, never nginx's HTML page. A body over the limit is PAYLOAD_TOO_LARGE; an api
 * or gateway that is down (restarting, crashed) is UNAVAILABLE, for REST and for the /ws upgrade.
 * And (review 20) its access log keeps the secrets of query strings out, as gigwire keeps them out of
 * its own: the mailed reset and verification links (`?token=`) and a WebSocket client's
 * `?access_token=` (nginx's default format wrote them whole: compose's `docker logs proxy`).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureNginx, NGINX_CONF, renderNginxConfig } from '../support/cluster.js';
import { tempDir } from '../support/context.js';
import { untilDefined } from '../support/poll.js';
import { freePort } from '../support/servers.js';

let nginx: ChildProcess | undefined;
let origin = '';
let dir = '';

beforeAll(async () => {
  const binary = await ensureNginx();
  dir = tempDir('firsttry-nginx');
  chmodSync(dir, 0o755);
  const port = await freePort();
  // Nothing listens on these: the api and the gateways are down.
  const [api, gateway] = [await freePort(), await freePort()];
  const conf = join(dir, 'nginx.conf');
  writeFileSync(
    conf,
    renderNginxConfig(readFileSync(NGINX_CONF, 'utf8'), {
      listen: `127.0.0.1:${port}`,
      api: `127.0.0.1:${api}`,
      gateways: [`127.0.0.1:${gateway}`],
      dir,
    }),
  );
  nginx = spawn(binary, ['-p', dir, '-c', conf, '-e', join(dir, 'error.log'), '-g', 'daemon off;'], {
    stdio: 'ignore',
  });
  origin = `http://127.0.0.1:${port}`;
  await untilDefined(
    () =>
      fetch(`${origin}/v1/jobs`).then(
        (response) => response,
        () => undefined,
      ),
    'nginx to answer',
    15_000,
  );
});

afterAll(() => {
  nginx?.kill('SIGTERM');
});

async function problemOf(response: Response) {
  return {
    status: response.status,
    contentType: response.headers.get('content-type'),
    body: (await response.json()) as Record<string, unknown>,
  };
}

describe('deploy/nginx.conf errors of its own', () => {
  it('answers a body over the limit with 413 problem+json PAYLOAD_TOO_LARGE', async () => {
    const response = await fetch(`${origin}/v1/auth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ padding: 'x'.repeat(100_000) }),
    });
    expect(await problemOf(response)).toMatchObject({
      status: 413,
      contentType: 'application/problem+json',
      body: { status: 413, code: 'PAYLOAD_TOO_LARGE', requestId: expect.stringMatching(/^[0-9a-f]{32}$/) },
    });
  });

  it('answers REST while the api is down with 503 problem+json UNAVAILABLE', async () => {
    const response = await fetch(`${origin}/v1/jobs`);
    expect(await problemOf(response)).toMatchObject({
      status: 503,
      contentType: 'application/problem+json',
      body: { status: 503, code: 'UNAVAILABLE' },
    });
    expect(response.headers.get('retry-after')).toBe('1');
  });

  it('answers a WebSocket upgrade while every gateway is down with 503 problem+json UNAVAILABLE', async () => {
    // fetch may not send Connection/Upgrade: a raw request, as a WebSocket client sends it.
    const answer = await new Promise<{ status: number; contentType: string; body: string }>(
      (resolve, reject) => {
        const req = request(`${origin}/ws`, {
          headers: {
            connection: 'Upgrade',
            upgrade: 'websocket',
            'sec-websocket-version': '13',
            'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
          },
        });
        req.on('response', (response) => {
          let body = '';
          response.on('data', (chunk: Buffer) => {
            body += chunk.toString();
          });
          response.on('end', () =>
            resolve({
              status: response.statusCode ?? 0,
              contentType: String(response.headers['content-type']),
              body,
            }),
          );
        });
        req.on('upgrade', () => reject(new Error('upgraded with no gateway running')));
        req.on('error', reject);
        req.end();
      },
    );
    expect({ ...answer, body: JSON.parse(answer.body) }).toMatchObject({
      status: 503,
      contentType: 'application/problem+json',
      body: { code: 'UNAVAILABLE' },
    });
  });
});

describe('deploy/nginx.conf access log', () => {
  it('writes no token of a query string, and keeps other queries', async () => {
    const paths = [
      '/reset-password?token=reset-secret-1',
      '/verify-email?token=verify-secret-2',
      '/v1/notifications/unsubscribe?token=unsub-secret-3',
      '/ws?encoding=json&access_token=jwt-secret-4',
      '/v1/auth/refresh?refresh_token=refresh-secret-5',
      '/v1/jobs?q=plumber&limit=5',
    ];
    for (const path of paths) await (await fetch(`${origin}${path}`)).arrayBuffer();
    const log = await untilDefined(async () => {
      const text = existsSync(join(dir, 'access.log')) ? readFileSync(join(dir, 'access.log'), 'utf8') : '';
      return text.includes('/v1/jobs?q=plumber') ? text : undefined;
    }, 'the access log to hold every request');
    expect(log).not.toMatch(/secret-\d/);
    expect(log).toContain('"GET /reset-password?[redacted] HTTP/1.1" 503');
    expect(log).toContain('"GET /ws?[redacted] HTTP/1.1" 503');
    expect(log).toContain('"GET /v1/jobs?q=plumber&limit=5 HTTP/1.1" 503');
  });
});
