/**
 * The per-request logger made on first use (issue 15): a request that writes no line makes no pino
 * child, and the lines that are written are the child's — request id as `reqId` and `traceId`, the
 * process logger's serializers and redaction, a route's own log level honoured.
 */
import { Writable } from 'node:stream';
import Fastify, { type FastifyBaseLogger } from 'fastify';
import { describe, expect, it, vi } from 'vitest';
import type { LogLevel } from '../config/index.js';
import { createLogger } from '../platform/logger.js';
import { RequestLogger, requestLoggerFactory } from './request-logger.js';

function appLoggingAt(level: LogLevel) {
  const lines: Array<Record<string, unknown>> = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line !== '') lines.push(JSON.parse(line));
      done();
    },
  });
  const log = createLogger({ level, pretty: false, destination });
  const app = Fastify({
    loggerInstance: log as FastifyBaseLogger,
    childLoggerFactory: requestLoggerFactory,
    genReqId: () => 'req-1',
  });
  app.get('/quiet', async () => ({ ok: true }));
  app.get('/warns', async (request) => {
    request.log.info('not at warn');
    request.log.warn({ password: 'hunter2', detail: 'x' }, 'careful');
    return { ok: true };
  });
  app.get('/debug-route', { logLevel: 'debug' }, async (request) => {
    request.log.debug('route-level debug');
    return { ok: true };
  });
  return { app, lines };
}

describe('per-request logger', () => {
  it('makes no pino child for a request that writes no line', async () => {
    const { app, lines } = appLoggingAt('warn');
    await app.ready();
    const child = vi.spyOn(app.log, 'child');
    const response = await app.inject({ method: 'GET', url: '/quiet' });
    expect(response.statusCode).toBe(200);
    expect(child).not.toHaveBeenCalled();
    expect(lines).toEqual([]);
    await app.close();
  });

  it('writes the lines of an enabled level as the child would: ids bound, secrets redacted', async () => {
    const { app, lines } = appLoggingAt('warn');
    await app.inject({ method: 'GET', url: '/warns' });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      level: 40,
      reqId: 'req-1',
      traceId: 'req-1',
      password: '[Redacted]',
      detail: 'x',
      msg: 'careful',
    });
    await app.close();
  });

  it("keeps Fastify's request lines at info, with the ids and the req serializer", async () => {
    const { app, lines } = appLoggingAt('info');
    await app.inject({ method: 'GET', url: '/quiet?access_token=secret' });
    const incoming = lines.find((line) => line.msg === 'incoming request');
    expect(incoming).toMatchObject({ reqId: 'req-1', traceId: 'req-1', req: { method: 'GET' } });
    expect(JSON.stringify(incoming)).not.toContain('secret');
    expect(lines.find((line) => line.msg === 'request completed')).toMatchObject({
      reqId: 'req-1',
      traceId: 'req-1',
      res: { statusCode: 200 },
    });
    await app.close();
  });

  it("honours a route's own log level", async () => {
    const { app, lines } = appLoggingAt('warn');
    await app.inject({ method: 'GET', url: '/debug-route' });
    expect(lines.find((line) => line.msg === 'route-level debug')).toMatchObject({
      level: 20,
      reqId: 'req-1',
      traceId: 'req-1',
    });
    await app.close();
  });

  it('reports levels and makes children like a pino logger', () => {
    const lines: string[] = [];
    const parent = createLogger({
      level: 'warn',
      pretty: false,
      destination: { write: (line: string) => void lines.push(line) },
    }) as unknown as FastifyBaseLogger;
    const logger = new RequestLogger(parent, { reqId: 'r', traceId: 'r' });
    expect(logger.level).toBe('warn');
    expect(logger.isLevelEnabled('info')).toBe(false);
    expect(logger.isLevelEnabled('error')).toBe(true);
    logger.child({ part: 'x' }).error('from a grandchild');
    expect(JSON.parse(lines[0] ?? '{}')).toMatchObject({ reqId: 'r', traceId: 'r', part: 'x' });
    logger.level = 'debug';
    logger.debug('now enabled');
    expect(lines).toHaveLength(2);
  });
});
