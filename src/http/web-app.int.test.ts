/**
 * The web app's static serving on a bare Fastify over a build-shaped folder: cache headers by file
 * kind, precompressed variants chosen by Accept-Encoding, the app's CSP, nothing but the built files
 * routed, and a 503 note (never a crash) when there is no build.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brotliCompressSync, gzipSync } from 'node:zlib';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerWebApp } from './web-app.js';

const JS = `console.log(${JSON.stringify('x'.repeat(4000))});`;
let root: string;
const apps: FastifyInstance[] = [];

async function appOver(dir: string): Promise<FastifyInstance> {
  const app = Fastify();
  apps.push(app);
  app.get('/v1/ping', async () => ({ pong: true }));
  await registerWebApp(app, { root: dir });
  await app.ready();
  return app;
}

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'web-dist-'));
  mkdirSync(join(root, 'assets'));
  writeFileSync(join(root, 'index.html'), '<!doctype html><title>app</title>');
  writeFileSync(join(root, 'assets', 'index-AbC123.js'), JS);
  writeFileSync(join(root, 'assets', 'index-AbC123.js.br'), brotliCompressSync(JS));
  writeFileSync(join(root, 'assets', 'index-AbC123.js.gz'), gzipSync(JS));
});

afterAll(async () => {
  for (const app of apps) await app.close();
  rmSync(root, { recursive: true, force: true });
});

describe('web app serving', () => {
  it('serves index.html at / with no-cache and a CSP allowing this origin only', async () => {
    const app = await appOver(root);
    const response = await app.inject({ url: '/', headers: { host: 'app.example:8080' } });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/^text\/html/);
    expect(response.headers['cache-control']).toBe('no-cache');
    const csp = String(response.headers['content-security-policy']);
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("style-src 'self'");
    expect(csp).toContain("connect-src 'self' ws://app.example:8080");
    expect(csp).toContain("object-src 'none'");
    expect(csp).not.toContain('unsafe');
  });

  it('serves hashed assets immutable, brotli or gzip as the client accepts', async () => {
    const app = await appOver(root);
    const url = '/assets/index-AbC123.js';
    const br = await app.inject({ url, headers: { 'accept-encoding': 'gzip, br' } });
    expect(br.statusCode).toBe(200);
    expect(br.headers['content-encoding']).toBe('br');
    expect(br.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(br.headers.vary).toMatch(/accept-encoding/i);
    const gz = await app.inject({ url, headers: { 'accept-encoding': 'gzip' } });
    expect(gz.headers['content-encoding']).toBe('gzip');
    const plain = await app.inject({ url, headers: { 'accept-encoding': 'identity' } });
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(plain.body).toBe(JS);
  });

  it('routes only the built files: the API and unknown paths are untouched, twins are not served by name', async () => {
    const app = await appOver(root);
    expect((await app.inject({ url: '/v1/ping' })).json()).toEqual({ pong: true });
    expect((await app.inject({ url: '/v1/nope' })).statusCode).toBe(404);
    expect((await app.inject({ url: '/assets/index-AbC123.js.br' })).statusCode).toBe(404);
    expect((await app.inject({ url: '/../package.json' })).statusCode).toBe(404);
  });

  it('decides immutable by the path under the web root: a root inside a folder named assets keeps index.html no-cache', async () => {
    const outer = mkdtempSync(join(tmpdir(), 'web-outer-'));
    try {
      const nested = join(outer, 'assets', 'dist');
      mkdirSync(join(nested, 'assets'), { recursive: true });
      writeFileSync(join(nested, 'index.html'), '<!doctype html><title>nested</title>');
      writeFileSync(join(nested, 'favicon.txt'), 'icon');
      writeFileSync(join(nested, 'assets', 'index-XyZ789.js'), 'console.log(1)');
      const app = await appOver(nested);
      for (const url of ['/', '/index.html', '/favicon.txt']) {
        const response = await app.inject({ url });
        expect(response.statusCode, url).toBe(200);
        expect(response.headers['cache-control'], url).toBe('no-cache');
      }
      const asset = await app.inject({ url: '/assets/index-XyZ789.js' });
      expect(asset.statusCode).toBe(200);
      expect(asset.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    } finally {
      rmSync(outer, { recursive: true, force: true });
    }
  });

  it('answers the pages the mails link to with the app (no-cache, CSP), token in the query or not', async () => {
    const app = await appOver(root);
    const index = (await app.inject({ url: '/' })).body;
    for (const url of [
      '/verify-email?token=abc',
      '/reset-password?token=abc',
      '/forgot-password',
      '/verify-email',
    ]) {
      const response = await app.inject({ url, headers: { 'accept-encoding': 'identity' } });
      expect(response.statusCode, url).toBe(200);
      expect(response.headers['content-type'], url).toMatch(/^text\/html/);
      expect(response.headers['cache-control'], url).toBe('no-cache');
      expect(String(response.headers['content-security-policy']), url).toContain("script-src 'self'");
      expect(response.body, url).toBe(index);
    }
    // Nothing else under those names.
    expect((await app.inject({ url: '/verify-email/x' })).statusCode).toBe(404);
    expect((await app.inject({ url: '/verify-emails' })).statusCode).toBe(404);
  });

  it('answers / with a 503 note when there is no build, and the server still starts', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'web-empty-'));
    try {
      const app = await appOver(join(empty, 'dist'));
      const response = await app.inject({ url: '/' });
      expect(response.statusCode).toBe(503);
      expect(response.headers['content-type']).toMatch(/^text\/html/);
      expect(response.headers['cache-control']).toBe('no-store');
      expect(response.body).toContain('scripts/web-build.mjs');
      // The mailed links say the same, not a 404.
      expect((await app.inject({ url: '/reset-password?token=abc' })).statusCode).toBe(503);
      expect((await app.inject({ url: '/v1/ping' })).statusCode).toBe(200);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });
});
