/**
 * deploy/nginx.conf (rendered as `npm run cluster` renders it: addresses and paths only) keeps the
 * secrets of query strings out of its access log, as gigwire keeps them out of its own: the mailed
 * password-reset and verification links (`?token=`) and a WebSocket client's `?access_token=`.
 * nginx's default format wrote them whole to the access log (compose: `docker logs proxy`).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
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
  dir = tempDir('firsttry-review20-nginx-log');
  chmodSync(dir, 0o755);
  const port = await freePort();
  // Nothing listens behind it: nginx answers 503 itself, and logs the request all the same.
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
