/**
 * isDatabaseStartingUp on the errors the real pg client throws: a refused connection, a server that
 * answers 57P03 "the database system is starting up", one that closes the connection at once, and
 * the permanent ones (a wrong password, a missing database) that must not be waited out. The
 * "servers" are in-process sockets that write one PostgreSQL ErrorResponse, not a database.
 */
import { createServer, type Server } from 'node:net';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { isDatabaseStartingUp, SqlState } from './errors.js';

/** PostgreSQL's ErrorResponse ('E'): severity, SQLSTATE and message, as a server sends it on connect. */
function errorResponse(code: string, message: string): Buffer {
  const fields = Buffer.concat(
    [`SFATAL`, `VFATAL`, `C${code}`, `M${message}`].map((field) => Buffer.from(`${field}\0`)),
  );
  const body = Buffer.concat([fields, Buffer.from([0])]);
  const header = Buffer.alloc(5);
  header.write('E', 0);
  header.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([header, body]);
}

const servers: Server[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await new Promise((done) => server.close(done));
});

/** A port whose every connection gets `answer` to its startup message (or, undefined, is closed). */
async function fakeServer(answer: Buffer | undefined): Promise<number> {
  const server = createServer((socket) => {
    socket.on('error', () => undefined);
    socket.once('data', () => {
      if (answer === undefined) socket.destroy();
      else socket.end(answer);
    });
  });
  servers.push(server);
  await new Promise<void>((listening) => server.listen(0, '127.0.0.1', listening));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/** A port nothing listens on (it was free a moment ago). */
async function closedPort(): Promise<number> {
  const port = await fakeServer(undefined);
  await new Promise((done) => servers.pop()?.close(done));
  return port;
}

/** What the real client throws when connecting to 127.0.0.1:port. */
async function connectError(port: number): Promise<unknown> {
  const client = new pg.Client({ connectionString: `postgres://app:secret@127.0.0.1:${port}/app` });
  client.on('error', () => undefined);
  return client.connect().then(
    async () => {
      await client.end();
      throw new Error('connected');
    },
    (error: unknown) => error,
  );
}

describe('isDatabaseStartingUp', () => {
  it('waits out a refused connection, a server starting up and one closing the connection', async () => {
    const refused = await connectError(await closedPort());
    expect((refused as { code?: unknown }).code).toBe('ECONNREFUSED');
    expect(isDatabaseStartingUp(refused)).toBe(true);

    const starting = await connectError(
      await fakeServer(errorResponse(SqlState.CANNOT_CONNECT_NOW, 'the database system is starting up')),
    );
    expect(starting).toMatchObject({ code: '57P03', message: 'the database system is starting up' });
    expect(isDatabaseStartingUp(starting)).toBe(true);

    const closed = await connectError(await fakeServer(undefined));
    expect(isDatabaseStartingUp(closed)).toBe(true);

    const shutdown = await connectError(
      await fakeServer(
        errorResponse(SqlState.ADMIN_SHUTDOWN, 'terminating connection due to administrator command'),
      ),
    );
    expect(isDatabaseStartingUp(shutdown)).toBe(true);
  });

  it('does not wait out a wrong password, a missing database or role', async () => {
    for (const [code, message] of [
      ['28P01', 'password authentication failed for user "app"'],
      ['3D000', 'database "app" does not exist'],
      ['28000', 'role "app" does not exist'],
      ['57P04', 'database dropped'],
    ] as const) {
      const error = await connectError(await fakeServer(errorResponse(code, message)));
      expect(error).toMatchObject({ code, message });
      expect(isDatabaseStartingUp(error)).toBe(false);
    }
  });

  it('looks into causes and the attempts of an AggregateError, not into anything else', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED ::1:5432'), { code: 'ECONNREFUSED' });
    const notFound = Object.assign(new Error('getaddrinfo ENOTFOUND db'), { code: 'ENOTFOUND' });
    expect(isDatabaseStartingUp(new Error('wrapped', { cause: notFound }))).toBe(true);
    expect(isDatabaseStartingUp(new AggregateError([refused, refused]))).toBe(true);
    // A unix-socket URL before the server created its socket file.
    expect(
      isDatabaseStartingUp(
        Object.assign(new Error('connect ENOENT /run/postgresql/.s.PGSQL.5432'), {
          code: 'ENOENT',
          syscall: 'connect',
        }),
      ),
    ).toBe(true);
    expect(isDatabaseStartingUp(Object.assign(new Error('open'), { code: 'ENOENT', syscall: 'open' }))).toBe(
      false,
    );
    expect(isDatabaseStartingUp(new Error('self-signed certificate'))).toBe(false);
    expect(isDatabaseStartingUp(undefined)).toBe(false);
    expect(isDatabaseStartingUp('ECONNREFUSED')).toBe(false);
  });
});
