import { describe, expect, it } from 'vitest';
import { createLogger } from './logger.js';
import { runShutdown } from './shutdown.js';

const log = createLogger({ level: 'silent', pretty: false });

describe('runShutdown', () => {
  it('runs steps in the given order and exits 0 when all succeed', async () => {
    const order: string[] = [];
    const step = (name: string) => ({ name, run: async () => void order.push(name) });
    const result = await runShutdown([step('http'), step('redis'), step('db')], { log, timeoutMs: 1_000 });
    expect(order).toEqual(['http', 'redis', 'db']);
    expect(result).toEqual({ exitCode: 0, failedSteps: [] });
  });

  it('keeps going after a failing step and reports it with exit code 1', async () => {
    const order: string[] = [];
    const result = await runShutdown(
      [
        { name: 'broken', run: async () => Promise.reject(new Error('boom')) },
        { name: 'db', run: async () => void order.push('db') },
      ],
      { log, timeoutMs: 1_000 },
    );
    expect(order).toEqual(['db']);
    expect(result).toEqual({ exitCode: 1, failedSteps: ['broken'] });
  });

  it('gives up at the deadline instead of hanging', async () => {
    const result = await runShutdown([{ name: 'stuck', run: () => new Promise<void>(() => undefined) }], {
      log,
      timeoutMs: 50,
    });
    expect(result).toEqual({ exitCode: 1, failedSteps: ['deadline'] });
  });
});
