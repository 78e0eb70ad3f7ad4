import { describe, expect, it } from 'vitest';
import { SqlState } from '../db/errors.js';
import { checkDatabaseUrl } from './startup-errors.js';
import {
  endpointOf,
  isRedisStartupFailure,
  StartupWaitAborted,
  type StartupWaitOptions,
  startupWait,
} from './startup-wait.js';

const transient = (message = 'connect ECONNREFUSED 127.0.0.1:5432') =>
  Object.assign(new Error(message), { code: 'ECONNREFUSED' });
const permanent = () =>
  Object.assign(new Error('password authentication failed for user "app"'), { code: '28P01' });

/** A wait on a fake clock: pauses advance it; what was shown and paused is recorded. */
function fakeWait(boundMs: number, extra: Partial<StartupWaitOptions> = {}) {
  let clock = 0;
  const lines: string[] = [];
  const pauses: number[] = [];
  const wait = startupWait({
    boundMs,
    what: 'PostgreSQL at db:5432',
    isTransient: (error) => (error as { code?: unknown }).code === 'ECONNREFUSED',
    report: (line) => lines.push(line),
    now: () => clock,
    pause: async (ms) => {
      pauses.push(ms);
      clock += ms;
    },
    ...extra,
  });
  return { wait, lines, pauses, advance: (ms: number) => (clock += ms) };
}

/** Work failing with each of `failures` in turn, then returning 'ok'. */
function failing(...failures: Error[]) {
  let calls = 0;
  const work = async () => {
    const failure = failures[calls++];
    if (failure !== undefined) throw failure;
    return 'ok';
  };
  return { work, calls: () => calls };
}

describe('startupWait', () => {
  it('tries a transient failure again after pauses doubling from 0.25 s to 2 s, one line per wait', async () => {
    const { wait, lines, pauses } = fakeWait(30_000);
    const { work, calls } = failing(...Array.from({ length: 6 }, () => transient()));
    await expect(wait.run(work)).resolves.toBe('ok');
    expect(calls()).toBe(7);
    expect(pauses).toEqual([250, 500, 1000, 2000, 2000, 2000]);
    expect(lines).toHaveLength(6);
    expect(lines[0]).toBe(
      'waiting for PostgreSQL at db:5432 (connect ECONNREFUSED 127.0.0.1:5432), up to 30 s more (STARTUP_WAIT_S)',
    );
    expect(lines[5]).toContain('up to 25 s more');
  });

  it('throws a permanent failure at once, without a line or a pause', async () => {
    const { wait, lines, pauses } = fakeWait(30_000);
    const error = permanent();
    const { work, calls } = failing(transient(), error);
    await expect(wait.run(work)).rejects.toBe(error);
    expect(calls()).toBe(2);
    expect(lines).toHaveLength(1);
    expect(pauses).toEqual([250]);
  });

  it('throws the last failure once the bound is spent, never pausing past it', async () => {
    const { wait, pauses } = fakeWait(1_000);
    const last = transient('the last one');
    const { work } = failing(transient(), transient(), transient(), last);
    await expect(wait.run(work)).rejects.toBe(last);
    expect(pauses).toEqual([250, 500, 250]);
  });

  it('does not wait at all with a bound of 0', async () => {
    const { wait, lines } = fakeWait(0);
    const error = transient();
    await expect(wait.run(failing(error).work)).rejects.toBe(error);
    expect(lines).toEqual([]);
  });

  it('shares one bound between its runs (the first connection, then the migrations)', async () => {
    const { wait, advance } = fakeWait(1_000);
    await expect(wait.run(failing(transient()).work)).resolves.toBe('ok');
    advance(10_000);
    const error = transient();
    await expect(wait.run(failing(error).work)).rejects.toBe(error);
  });

  it('ends with StartupWaitAborted when shutdown begins', async () => {
    const shutdown = new AbortController();
    const { wait } = fakeWait(30_000, {
      signal: shutdown.signal,
      pause: async () => {
        shutdown.abort();
        throw new Error('aborted');
      },
    });
    const first = wait.run(failing(transient(), transient()).work);
    await expect(first).rejects.toBeInstanceOf(StartupWaitAborted);
    // A failure after the signal is not waited out either.
    await expect(wait.run(failing(transient()).work)).rejects.toBeInstanceOf(StartupWaitAborted);
  });
});

describe('checkDatabaseUrl with a wait', () => {
  const url = 'postgres://app:hunter22@db:5432/app';

  it('waits out "the database system is starting up", then succeeds', async () => {
    const starting = Object.assign(new Error('the database system is starting up'), {
      code: SqlState.CANNOT_CONNECT_NOW,
    });
    const { work, calls } = failing(starting, starting);
    const lines: string[] = [];
    const wait = startupWait({
      boundMs: 30_000,
      what: `PostgreSQL at ${endpointOf(url, 5432)}`,
      isTransient: (error) => (error as { code?: unknown }).code === SqlState.CANNOT_CONNECT_NOW,
      report: (line) => lines.push(line),
      pause: async () => undefined,
    });
    await checkDatabaseUrl({ ping: async () => void (await work()) }, url, wait);
    expect(calls()).toBe(3);
    expect(lines[0]).toBe(
      'waiting for PostgreSQL at db:5432 (the database system is starting up), up to 30 s more (STARTUP_WAIT_S)',
    );
  });

  it('names DATABASE_URL at once for a wrong password', async () => {
    const lines: string[] = [];
    const wait = startupWait({
      boundMs: 30_000,
      what: 'PostgreSQL at db:5432',
      isTransient: () => false,
      report: (line) => lines.push(line),
    });
    await expect(checkDatabaseUrl({ ping: () => Promise.reject(permanent()) }, url, wait)).rejects.toThrow(
      'DATABASE_URL postgres://app:***@db:5432/app: cannot use the database: password authentication failed for user "app"',
    );
    expect(lines).toEqual([]);
  });
});

describe('endpointOf', () => {
  it('shows host and port, with the default port, never credentials', () => {
    expect(endpointOf('postgres://app:hunter22@db/app', 5432)).toBe('db:5432');
    expect(endpointOf('postgresql://app@10.0.0.5:6543/app', 5432)).toBe('10.0.0.5:6543');
    expect(endpointOf('postgres:///app?host=/var/run/postgresql', 5432)).toBe('/var/run/postgresql:5432');
    expect(endpointOf('redis://:hunter22@redis:6380', 6379)).toBe('redis:6380');
    expect(endpointOf('rediss://cache.example.com', 6379)).toBe('cache.example.com:6379');
  });
});

describe('isRedisStartupFailure', () => {
  it('waits out a connection not made and LOADING, not an authentication failure', () => {
    expect(isRedisStartupFailure(transient('connect ECONNREFUSED 127.0.0.1:6379'))).toBe(true);
    expect(
      isRedisStartupFailure(Object.assign(new Error('getaddrinfo ENOTFOUND redis'), { code: 'ENOTFOUND' })),
    ).toBe(true);
    const loading = Object.assign(new Error('LOADING Redis is loading the dataset in memory'), {
      name: 'ReplyError',
    });
    expect(isRedisStartupFailure(loading)).toBe(true);
    expect(isRedisStartupFailure(new Error('wrapped', { cause: loading }))).toBe(true);
    const wrongPass = Object.assign(
      new Error('WRONGPASS invalid username-password pair or user is disabled.'),
      { name: 'ReplyError' },
    );
    expect(isRedisStartupFailure(wrongPass)).toBe(false);
    expect(isRedisStartupFailure(new Error('Reached the max retries per request limit'))).toBe(false);
  });
});
