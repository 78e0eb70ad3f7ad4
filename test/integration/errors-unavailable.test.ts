/**
 * A database or Redis that cannot be reached is UNAVAILABLE 503 ("retry later", PROTOCOL.md), not
 * INTERNAL 500: which failures count as that (SQLSTATE classes, socket errors, the texts the pinned
 * pg and ioredis clients throw without a code), and what the client is told.
 */
import { createRequire } from 'node:module';
import Fastify from 'fastify';
import { Redis } from 'ioredis';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { registerErrorHandling } from '../../src/http/plugins/errors.js';
import { AppError, isDependencyUnavailable } from '../../src/platform/errors.js';

const withCode = (message: string, code: string) => Object.assign(new Error(message), { code });
const rejection = async (work: () => Promise<unknown>): Promise<unknown> => {
  try {
    await work();
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
};

describe('isDependencyUnavailable', () => {
  it.each([
    ['08006 connection failure', withCode('connection failure', '08006')],
    ['53300 too many connections', withCode('sorry, too many clients already', '53300')],
    ['57P01 admin shutdown', withCode('terminating connection due to administrator command', '57P01')],
    ['57014 statement timeout', withCode('canceling statement due to statement timeout', '57014')],
    ['58030 I/O error', withCode('could not write', '58030')],
    ['ECONNREFUSED', withCode('connect ECONNREFUSED 127.0.0.1:5432', 'ECONNREFUSED')],
    ['ECONNRESET', withCode('read ECONNRESET', 'ECONNRESET')],
    ['pg: a connection that ended', new Error('Connection terminated unexpectedly')],
    ['ioredis: a command without an answer', new Error('Command timed out')],
    [
      'pg-pool: a connect timeout wrapping the socket error',
      new Error('Connection terminated due to connection timeout', {
        cause: withCode('connect ETIMEDOUT', 'ETIMEDOUT'),
      }),
    ],
    ['a socket error as the cause', new Error('query failed', { cause: withCode('x', 'ECONNREFUSED') })],
  ])('%s: yes', (_label, error) => {
    expect(isDependencyUnavailable(error)).toBe(true);
  });

  it.each([
    ['23505 unique violation', withCode('duplicate key', '23505')],
    ['40001 serialization failure', withCode('could not serialize access', '40001')],
    ['22021 bad encoding', withCode('invalid byte sequence', '22021')],
    ['a plain error', new Error('boom')],
    ['a TypeError', new TypeError("Cannot read properties of undefined (reading 'id')")],
    [
      'an AppError, even caused by a socket error',
      new AppError('INTERNAL', 'x', { cause: withCode('x', 'ECONNREFUSED') }),
    ],
    ['not an error', 'ECONNREFUSED'],
    ['nothing', undefined],
  ])('%s: no', (_label, error) => {
    expect(isDependencyUnavailable(error)).toBe(false);
  });

  it('recognises what the real clients throw without a connection (no I/O)', async () => {
    const redis = new Redis({ lazyConnect: true });
    redis.disconnect();
    expect(isDependencyUnavailable(await rejection(() => redis.get('k')))).toBe(true);

    const MaxRetriesPerRequestError = createRequire(import.meta.url)(
      'ioredis/built/errors/MaxRetriesPerRequestError.js',
    ).default as new (
      retries: number,
    ) => Error;
    expect(isDependencyUnavailable(new MaxRetriesPerRequestError(2))).toBe(true);

    const pool = new pg.Pool();
    await pool.end();
    expect(isDependencyUnavailable(await rejection(() => pool.query('select 1')))).toBe(true);

    const client = new pg.Client();
    await client.end();
    expect(isDependencyUnavailable(await rejection(() => client.query('select 1')))).toBe(true);
  });
});

describe('the error handler', () => {
  const appThrowing = async (error: unknown) => {
    const app = Fastify();
    registerErrorHandling(app);
    app.get('/v1/thing', async () => {
      throw error;
    });
    await app.ready();
    return app;
  };

  it('answers a dependency that cannot be reached 503 UNAVAILABLE problem+json, naming no host', async () => {
    const app = await appThrowing(withCode('connect ECONNREFUSED 10.1.2.3:5432', 'ECONNREFUSED'));
    const response = await app.inject({ method: 'GET', url: '/v1/thing' });
    expect(response.statusCode).toBe(503);
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(response.json()).toMatchObject({
      type: 'urn:gigwire:problem:UNAVAILABLE',
      code: 'UNAVAILABLE',
      status: 503,
      instance: '/v1/thing',
    });
    expect(response.body).not.toContain('10.1.2.3');
    await app.close();
  });

  it('still answers anything else 500 INTERNAL', async () => {
    const app = await appThrowing(new Error('boom'));
    const response = await app.inject({ method: 'GET', url: '/v1/thing' });
    expect(response.statusCode).toBe(500);
    expect(response.json()).toMatchObject({ code: 'INTERNAL' });
    await app.close();
  });

  it("answers a client's aborted upload as the client's error, not 503 (its ECONNRESET is the client's)", async () => {
    const aborted = Object.assign(new Error('aborted'), { code: 'ECONNRESET', statusCode: 400 });
    expect(isDependencyUnavailable(aborted)).toBe(false);
    const app = await appThrowing(aborted);
    const response = await app.inject({ method: 'GET', url: '/v1/thing' });
    expect(response.statusCode).toBe(400);
    await app.close();
  });
});
