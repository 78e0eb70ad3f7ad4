/**
 * Review 31 (operator, logs): an upgrade to WS_PORT refused because PostgreSQL or Redis could not
 * serve (the session check's read, keys loading) was logged at `error`, stack and all, once per
 * upgrade: during a database outage every reconnect of every client wrote one (thousands a
 * second after a node restart), while REST logs the same failure of each request as a warning
 * (plugins/errors.ts) and the Fastify /ws transport goes through that handler. A dependency that
 * cannot serve is a warning here too; anything else (a bug) stays an error. Still 503 to the client.
 */
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createLogger } from '../platform/logger.js';
import { loadWebSocketEngine } from './engine.js';
import type { GatewayCore } from './transport.js';
import { upgradeFailure } from './upgrade.js';
import { listenUws, type UwsListener } from './uws.js';

const engine = loadWebSocketEngine();
let listener: UwsListener | undefined;
afterEach(() => {
  listener?.stopListening();
  listener = undefined;
});

async function refusedUpgrade(cause: Error): Promise<{ status: number; levels: number[] }> {
  const lines: Array<{ level: number; msg: string }> = [];
  const destination = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n')) if (line !== '') lines.push(JSON.parse(line));
      done();
    },
  });
  // Only what a refused upgrade reaches: the admission, then a credential check that fails the way
  // createUpgradeAuthenticator fails it (upgradeFailure around what the auth service threw).
  const core = {
    admitUpgrade: () => ({ ok: true, release: () => undefined }),
    authenticateUpgrade: () => Promise.reject(upgradeFailure(cause)),
  } as unknown as GatewayCore;
  if (engine.uws === undefined) throw new Error('no native uWebSockets.js build');
  listener = await listenUws({
    uws: engine.uws,
    host: '127.0.0.1',
    port: 0,
    core,
    limits: { maxFrameBytes: 64 * 1024, maxBufferedBytes: 1 << 20, idleTimeoutS: 60 },
    log: createLogger({ level: 'info', pretty: false, destination }),
  });
  const status = await new Promise<number>((resolve, reject) => {
    const socket = new WebSocket(`ws://127.0.0.1:${listener?.port}/ws`, {
      headers: { authorization: 'Bearer x' },
    });
    socket.on('unexpected-response', (_request, response) => {
      resolve(response.statusCode ?? 0);
      socket.terminate();
    });
    socket.on('open', () => reject(new Error('upgraded')));
    socket.on('error', () => undefined);
  });
  return { status, levels: lines.filter((l) => l.msg === 'WebSocket upgrade failed').map((l) => l.level) };
}

describe.runIf(engine.uws !== undefined)('a WS_PORT upgrade refused for our side (review 31)', () => {
  it('logs a database that cannot be reached as a warning', async () => {
    const down = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
    expect(await refusedUpgrade(down)).toEqual({ status: 503, levels: [40] });
  });

  it('still logs anything else as an error', async () => {
    expect(await refusedUpgrade(new TypeError('x is not a function'))).toEqual({ status: 503, levels: [50] });
  });
});
