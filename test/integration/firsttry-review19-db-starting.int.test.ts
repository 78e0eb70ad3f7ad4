/**
 * A node started before its PostgreSQL and Redis are up (docker compose without healthchecks, systemd
 * units started together, one Kubernetes pod) waits for them, up to STARTUP_WAIT_S, with one line on
 * stderr per wait, and then serves; a permanent failure (wrong password, missing database) still
 * ends the start at once. The ports that come up late are small TCP servers in this file: first
 * nothing listens (connection refused), then they answer as a PostgreSQL still starting up does
 * (SQLSTATE 57P03) or refusing a password (28P01), then they forward to the real PostgreSQL and
 * Redis of the test run. Three processes in all (two nodes, one `npm run migrate`), to stay cheap.
 */
import { spawn } from 'node:child_process';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterAll, describe, inject, it } from 'vitest';
import {
  createMigratedDatabase,
  sharedRedisUrl,
  type TestDatabase,
  uniqueRedisPrefix,
} from '../support/context.js';
import { httpClient } from '../support/http.js';
import { untilDefined } from '../support/poll.js';
import { freePort } from '../support/servers.js';
import { commandArguments, type GigwireProcess, spawnGigwire } from '../support/spawn.js';

/** PostgreSQL's ErrorResponse ('E') as a server sends it to a connection it refuses. */
function errorResponse(code: string, message: string): Buffer {
  const fields = ['SFATAL', 'VFATAL', `C${code}`, `M${message}`].map((field) => Buffer.from(`${field}\0`));
  const body = Buffer.concat([...fields, Buffer.from([0])]);
  const header = Buffer.alloc(5);
  header.write('E', 0);
  header.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([header, body]);
}

const STARTING_UP = errorResponse('57P03', 'the database system is starting up');
const WRONG_PASSWORD = errorResponse('28P01', 'password authentication failed for user "app"');

type Behaviour = (socket: Socket) => void;

/** Answers the startup message with `response` and closes. */
const answer =
  (response: Buffer): Behaviour =>
  (socket) => {
    socket.once('data', () => socket.end(response));
  };

/** Forwards the connection to the real server on `port`. */
const forwardTo =
  (port: number): Behaviour =>
  (socket) => {
    const upstream = connect(port, '127.0.0.1');
    upstream.on('error', () => socket.destroy());
    socket.on('close', () => upstream.destroy());
    upstream.on('close', () => socket.destroy());
    socket.pipe(upstream).pipe(socket);
  };

/** Registers what to undo when the test ends (the tests run concurrently: each undoes its own). */
type Finally = (cleanup: () => Promise<void> | void) => void;

/** A port on which nothing listens until `listen`; each connection then meets `behaviour`. */
function lateServer(port: number, onFinished: Finally) {
  let behaviour: Behaviour = (socket) => socket.destroy();
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
    behaviour(socket);
  });
  onFinished(
    () =>
      new Promise<void>((done) => {
        for (const socket of sockets) socket.destroy();
        if (server.listening) server.close(() => done());
        else done();
      }),
  );
  return {
    port,
    behave(next: Behaviour) {
      behaviour = next;
    },
    listen: (first: Behaviour) =>
      new Promise<void>((listening, failed) => {
        behaviour = first;
        server.once('error', failed);
        server.listen(port, '127.0.0.1', () => listening());
      }),
  };
}

let database: Promise<TestDatabase> | undefined;
afterAll(async () => {
  await (await database)?.drop();
});

const portOf = (url: string) => Number(new URL(url).port);
const postgresPort = () => portOf(inject('postgresBaseUrl'));

async function databaseName(): Promise<string> {
  database ??= createMigratedDatabase();
  return (await database).name;
}

function start(env: Record<string, string>, onFinished: Finally): GigwireProcess {
  const proc = spawnGigwire({ REDIS_URL: sharedRedisUrl(), REDIS_PREFIX: uniqueRedisPrefix(), ...env });
  onFinished(async () => void (await proc.stop('SIGKILL').catch(() => undefined)));
  return proc;
}

/** Resolves once stderr has a line containing `text`. */
const stderrShows = (stderr: () => string, text: string) =>
  untilDefined(async () => (stderr().includes(text) ? true : undefined), `stderr to show "${text}"`);

const waitLines = (stderr: string) => stderr.split('\n').filter((line) => line.includes(': waiting for '));

// Concurrent: most of each test is a process starting or waiting, and they share nothing but the
// migrated database (which none of them changes).
describe.concurrent('a start waits for PostgreSQL and Redis that are still starting up', () => {
  it('waits through a refused connection and "starting up", then for Redis, then is ready', async ({
    expect,
    onTestFinished,
  }) => {
    const postgres = lateServer(await freePort(), onTestFinished);
    const redis = lateServer(await freePort(), onTestFinished);
    const proc = start(
      {
        DATABASE_URL: `postgres://app@127.0.0.1:${postgres.port}/${await databaseName()}`,
        REDIS_URL: `redis://127.0.0.1:${redis.port}`,
        STARTUP_WAIT_S: '120',
      },
      onTestFinished,
    );
    await stderrShows(
      proc.stderr,
      `gigwire: waiting for PostgreSQL at 127.0.0.1:${postgres.port} (connect ECONNREFUSED`,
    );
    await postgres.listen(answer(STARTING_UP));
    await stderrShows(
      proc.stderr,
      `gigwire: waiting for PostgreSQL at 127.0.0.1:${postgres.port} (the database system is starting up), up to `,
    );
    postgres.behave(forwardTo(postgresPort()));
    await stderrShows(
      proc.stderr,
      `gigwire: waiting for Redis at 127.0.0.1:${redis.port} (connect ECONNREFUSED`,
    );
    await redis.listen(forwardTo(portOf(sharedRedisUrl())));

    const baseUrl = await proc.waitUntilUp(60_000);
    const ready = await httpClient(baseUrl).get('/health/ready');
    expect(ready.status, JSON.stringify(ready.body)).toBe(200);
    for (const line of waitLines(proc.stderr())) {
      expect(line).toMatch(
        /^gigwire: waiting for (PostgreSQL|Redis) at 127\.0\.0\.1:\d+ \(.+\), up to \d+ s more \(STARTUP_WAIT_S\)$/,
      );
    }
  });

  // A missing database failing at once (one stderr line under the default STARTUP_WAIT_S) is
  // firsttry-review16-start-errors.int.test.ts "names DATABASE_URL … when its database does not exist".
  it('fails at once on a wrong password met while waiting', async ({ expect, onTestFinished }) => {
    const postgres = lateServer(await freePort(), onTestFinished);
    let connections = 0;
    await postgres.listen((socket) => {
      connections += 1;
      answer(connections === 1 ? STARTING_UP : WRONG_PASSWORD)(socket);
    });
    // Far longer than the test may take: a start that went on waiting would time the test out.
    const proc = start(
      { DATABASE_URL: `postgres://app:hunter22@127.0.0.1:${postgres.port}/app`, STARTUP_WAIT_S: '3600' },
      onTestFinished,
    );
    expect((await proc.exited).code).toBe(1);
    expect(proc.stderr().trim().split('\n')).toEqual([
      `gigwire: waiting for PostgreSQL at 127.0.0.1:${postgres.port} (the database system is starting up), up to 3600 s more (STARTUP_WAIT_S)`,
      expect.stringContaining(
        `gigwire: start failed: DATABASE_URL postgres://app:***@127.0.0.1:${postgres.port}/app: cannot use the database: password authentication failed for user "app"`,
      ),
    ]);
    expect(connections).toBe(2);
  });

  it('npm run migrate waits for a PostgreSQL starting up too', async ({ expect, onTestFinished }) => {
    const postgres = lateServer(await freePort(), onTestFinished);
    await postgres.listen(answer(STARTING_UP));
    const child = spawn(process.execPath, commandArguments('src/bin/migrate.ts'), {
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        DATABASE_URL: `postgres://app@127.0.0.1:${postgres.port}/${await databaseName()}`,
        LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    onTestFinished(() => void child.kill('SIGKILL'));
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
    await stderrShows(
      () => stderr,
      `gigwire: waiting for PostgreSQL at 127.0.0.1:${postgres.port} (the database system is starting up)`,
    );
    postgres.behave(forwardTo(postgresPort()));
    expect(await exited, stderr).toBe(0);
  });
});
