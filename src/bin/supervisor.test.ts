import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../config/index.js';
import { childNodeId, judgeCopyDeath, restartDelayMs, START_FAILURES_LIMIT } from './supervisor.js';

const context = { cwd: '/srv/gigwire', isRoot: false, stdoutIsTty: false, pid: 4242 };
const external = { DATABASE_URL: 'postgres://db/gigwire', REDIS_URL: 'redis://redis:6379' };

describe('GATEWAY_PROCESSES', () => {
  it('is 1 by default: npm start stays one process', () => {
    expect(loadConfig({}, context).gatewayProcesses).toBe(1);
  });

  it('above 1 needs an external database and Redis, and a role with a WebSocket port', () => {
    expect(loadConfig({ ...external, GATEWAY_PROCESSES: '3' }, context).gatewayProcesses).toBe(3);
    expect(loadConfig({ ...external, GATEWAY_PROCESSES: '2', ROLE: 'gateway' }, context).role).toBe(
      'gateway',
    );
    expect(() => loadConfig({ GATEWAY_PROCESSES: '2' }, context)).toThrow(
      /GATEWAY_PROCESSES above 1 needs DATABASE_URL and REDIS_URL/,
    );
    expect(() => loadConfig({ ...external, GATEWAY_PROCESSES: '2', ROLE: 'api' }, context)).toThrow(
      ConfigError,
    );
    expect(() => loadConfig({ GATEWAY_PROCESSES: '0' }, context)).toThrow(/GATEWAY_PROCESSES must be/);
  });
});

describe('supervisor', () => {
  it('names each process after NODE_ID, within the 64 characters NODE_ID allows', () => {
    expect(childNodeId('host-1', 2)).toBe('host-1-g2');
    const long = childNodeId('x'.repeat(64), 12);
    expect(long).toHaveLength(64);
    expect(long.endsWith('-g12')).toBe(true);
  });

  it('restarts after 1 s, doubling for each death in a row up to 30 s', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 20].map(restartDelayMs)).toEqual([
      1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000,
    ]);
  });
});

describe('a copy that dies on its own', () => {
  const death = { code: 1, served: false, allServedOnce: true, startFailuresInRow: 0 };

  it('is restarted when it had served, however often', () => {
    expect(judgeCopyDeath({ ...death, served: true })).toEqual({ action: 'restart' });
    expect(judgeCopyDeath({ ...death, code: null, served: true, startFailuresInRow: 99 })).toEqual({
      action: 'restart',
    });
  });

  it('stops them all when it fails its first start: a single process would have exited 1', () => {
    expect(judgeCopyDeath({ ...death, allServedOnce: false })).toEqual({
      action: 'stop',
      exitCode: 1,
      why: 'start',
    });
  });

  it('stops them all after START_FAILURES_LIMIT failed starts in a row once all had served', () => {
    const verdicts = Array.from({ length: START_FAILURES_LIMIT }, (_, inRow) =>
      judgeCopyDeath({ ...death, startFailuresInRow: inRow }),
    );
    expect(verdicts.slice(0, -1).every((verdict) => verdict.action === 'restart')).toBe(true);
    expect(verdicts.at(-1)).toEqual({ action: 'stop', exitCode: 1, why: 'start-loop' });
  });

  it('stops them all with 2 on a refused configuration', () => {
    expect(judgeCopyDeath({ ...death, code: 2, served: true })).toEqual({
      action: 'stop',
      exitCode: 2,
      why: 'config',
    });
  });
});
