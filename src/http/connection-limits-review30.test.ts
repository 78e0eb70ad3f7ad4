/**
 * Review 30 (configuration): every HTTP_REQUEST_TIMEOUT_MS the configuration accepts (500 to
 * 600 000 ms) starts the REST listener. Node checked headersTimeout against its default
 * requestTimeout (300 s) when creating the server, before Fastify set the real one: a value above
 * 300 s failed the start with `RangeError: The value of "headersTimeout" is out of range`.
 */
import pino from 'pino';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../config/index.js';
import { buildApp } from './app.js';

describe('HTTP_REQUEST_TIMEOUT_MS', () => {
  it.each(['500', '300001', '600000'])(
    '%s ms builds the app, with that request and headers timeout',
    async (value) => {
      const config = loadConfig(
        { HTTP_REQUEST_TIMEOUT_MS: value },
        { cwd: '/tmp', isRoot: false, stdoutIsTty: false, pid: 1 },
      );
      const app = await buildApp({
        log: pino({ level: 'silent' }),
        metrics: new Registry(),
        health: { info: () => ({}), checks: {}, timeoutMs: 1_000, isDraining: () => false },
        httpEdge: config.httpEdge,
        trustProxy: 0,
      });
      try {
        expect(app.server.requestTimeout).toBe(Number(value));
        expect(app.server.headersTimeout).toBe(Number(value));
      } finally {
        await app.close();
      }
    },
  );
});
