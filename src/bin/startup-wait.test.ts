import { createServer, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { SqlState } from '../db/errors.js';
import { createLogger } from '../platform/logger.js';
import { closeRedisClient, createRedisClient } from '../platform/redis.js';
import { checkDatabaseUrl, checkRedisUrl } from './startup-errors.js';
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

  it('counts the bound from the start of the first failed attempt, not from its end', async () => {
    // An address that does not answer: each attempt takes the pool's 5 s connect timeout to fail.
    const { wait, lines, advance } = fakeWait(8_000);
    const error = transient('Connection terminated due to connection timeout');
    let calls = 0;
    const work = async () => {
      calls += 1;
      advance(5_000);
      throw error;
    };
    await expect(wait.run(work)).rejects.toBe(error);
    // 0–5 s fails, 5.25–10.25 s fails past the 8 s bound: two attempts, not a third ending at 15.75 s.
    expect(calls).toBe(2);
    expect(lines).toEqual([
      'waiting for PostgreSQL at db:5432 (Connection terminated due to connection timeout), up to 3 s more (STARTUP_WAIT_S)',
    ]);
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
    // A PING with no answer in time: an address that does not answer, or a Redis still loading.
    expect(isRedisStartupFailure(new Error('Command timed out'))).toBe(true);
  });
});

/**
 * A Redis still loading its dataset for `loadingMs` after it began listening, as ioredis meets
 * one: HELLO and CLIENT answer, INFO says `loading:1` (ioredis' ready check then holds every other
 * command), anything else is refused with LOADING; afterwards it answers PING.
 */
async function loadingRedis(loadingMs: number) {
  const sockets = new Set<Socket>();
  let pings = 0;
  let loadedAt = Number.POSITIVE_INFINITY;
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let buffered = '';
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('latin1');
      for (;;) {
        // One RESP array of bulk strings per command.
        const head = /^\*(\d+)\r\n/.exec(buffered);
        if (head === null) return;
        let at = head[0].length;
        const args: string[] = [];
        for (let i = 0; i < Number(head[1]); i++) {
          const bulk = /^\$(\d+)\r\n/.exec(buffered.slice(at));
          if (bulk === null || buffered.length < at + bulk[0].length + Number(bulk[1]) + 2) return;
          at += bulk[0].length;
          args.push(buffered.slice(at, at + Number(bulk[1])));
          at += Number(bulk[1]) + 2;
        }
        buffered = buffered.slice(at);
        const command = args[0]?.toLowerCase();
        const loading = Date.now() < loadedAt;
        if (command === 'hello') socket.write('%1\r\n+server\r\n+redis\r\n');
        else if (command === 'info') {
          const info = `# Persistence\r\nloading:${loading ? 1 : 0}\r\nloading_eta_seconds:0\r\n`;
          socket.write(`$${info.length}\r\n${info}\r\n`);
        } else if (command === 'client') socket.write('+OK\r\n');
        else if (loading) socket.write('-LOADING Redis is loading the dataset in memory\r\n');
        else if (command === 'ping') {
          pings += 1;
          socket.write('+PONG\r\n');
        } else socket.write('-ERR unknown command\r\n');
      }
    });
  });
  await new Promise<void>((listening) => server.listen(0, '127.0.0.1', () => listening()));
  loadedAt = Date.now() + loadingMs;
  const address = server.address();
  return {
    url: `redis://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`,
    pings: () => pings,
    close: () => {
      for (const socket of sockets) socket.destroy();
      server.close();
    },
  };
}

describe('checkRedisUrl with a wait', () => {
  it('waits out a Redis still loading its dataset (the PING times out meanwhile), then succeeds', async () => {
    const redisServer = await loadingRedis(1_500);
    const log = createLogger({
      level: 'warn',
      pretty: false,
      destination: new Writable({ write: (_c, _e, done) => done() }),
    });
    // REDIS_COMMAND_TIMEOUT_MS shorter than the load, as 2 s is beside a large dataset.
    const redis = createRedisClient({ endpoint: redisServer.url, name: 'main', log, commandTimeoutMs: 300 });
    const lines: string[] = [];
    try {
      await checkRedisUrl(
        redis,
        redisServer.url,
        startupWait({
          boundMs: 30_000,
          what: `Redis at ${endpointOf(redisServer.url, 6379)}`,
          isTransient: isRedisStartupFailure,
          report: (line) => lines.push(line),
        }),
      );
    } finally {
      await closeRedisClient(redis);
      redisServer.close();
    }
    // Answered once loaded (the PINGs that timed out meanwhile are still sent then, by ioredis).
    expect(redisServer.pings()).toBeGreaterThanOrEqual(1);
    expect(lines.length).toBeGreaterThan(0);
    expect(lines[0]).toMatch(/^waiting for Redis at 127\.0\.0\.1:\d+ \(Command timed out\), up to 30 s more/);
  });
});
