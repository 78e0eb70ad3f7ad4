/**
 * Review 31 (operator, logs): an AppError UNAVAILABLE thrown on a REST path was logged at `error`,
 * stack and all, once per request: the password-hashing line refuses every sign-in past its 64
 * waiting places with it (passwords.ts), so a sign-in flood spread over many networks wrote one
 * error line per refused request. It is load shedding with a Retry-After, not a fault: `warn`, as
 * a dependency that cannot serve is logged. INTERNAL stays an error.
 */
import { Writable } from 'node:stream';
import Fastify, { type FastifyBaseLogger } from 'fastify';
import { describe, expect, it } from 'vitest';
import { AppError } from '../../platform/errors.js';
import { createLogger } from '../../platform/logger.js';
import { registerErrorHandling } from './errors.js';

async function levelsOf(error: AppError): Promise<{ status: number; levels: number[] }> {
  const lines: Array<{ level: number; msg: string }> = [];
  const destination = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n')) if (line !== '') lines.push(JSON.parse(line));
      done();
    },
  });
  const app = Fastify({
    loggerInstance: createLogger({ level: 'info', pretty: false, destination }) as FastifyBaseLogger,
  });
  registerErrorHandling(app);
  app.get('/v1/thing', async () => {
    throw error;
  });
  const answer = await app.inject({ method: 'GET', url: '/v1/thing' });
  await app.close();
  return {
    status: answer.statusCode,
    levels: lines.filter((l) => l.msg === 'request failed').map((l) => l.level),
  };
}

describe('log level of AppErrors answered 5xx (review 31)', () => {
  it('logs a refused sign-in (UNAVAILABLE, 503) at warn, not error', async () => {
    const busy = new AppError(
      'UNAVAILABLE',
      'too many sign-ins and sign-ups at once on this server; try again in a moment',
      {
        details: { retryAfterS: 1 },
      },
    );
    expect(await levelsOf(busy)).toEqual({ status: 503, levels: [40] });
  });

  it('still logs INTERNAL at error', async () => {
    expect(await levelsOf(new AppError('INTERNAL', 'broken'))).toEqual({ status: 500, levels: [50] });
  });
});
