/**
 * Smoke test of the gigwire benchmark target: `node --import tsx bench/targets/gigwire-smoke.ts
 * [users]`. Starts the target, seeds credentials (default 200) and 2 rooms of 100, checks a minted
 * token over REST and over the uWS WebSocket (msgpack frames: join, send, ok, room.message push), the
 * login body, forces a GC, prints the aux pids and the server's RSS, and stops.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Packr } from 'msgpackr';
import WebSocket from 'ws';
import { startGigwire } from './gigwire.js';

type Frame = { t: string; id?: number; d?: Record<string, unknown> };

// Standard msgpack both ways (no records); int64 (serverTime) as numbers, not BigInt.
const msgpack = new Packr({ useRecords: false, int64AsType: 'number' });

const rssKiB = (pid: number) =>
  Number(/VmRSS:\s*(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? Number.NaN);

const users = Number(process.argv[2] ?? 200);
const t0 = performance.now();
const target = await startGigwire({ quick: true });
const tStart = performance.now();
console.log(`started in ${((tStart - t0) / 1000).toFixed(2)} s: pid ${target.pid}`);
console.log(`wsUrl ${target.wsUrl}  httpUrl ${target.httpUrl}`);
try {
  const credentials = await target.credentials(users);
  const tCred = performance.now();
  console.log(`credentials(${users}) in ${((tCred - tStart) / 1000).toFixed(2)} s`);
  const roomIds = await target.prepareRooms(credentials, 2, 100);
  console.log(`prepareRooms(2 x 100) in ${((performance.now() - tCred) / 1000).toFixed(2)} s: ${roomIds}`);

  const last = credentials[credentials.length - 1];
  const first = credentials[0];
  const roomId = roomIds[0];
  if (last === undefined || first === undefined || roomId === undefined) throw new Error('nothing seeded');
  const me = await fetch(`${target.httpUrl}/v1/me`, { headers: { authorization: `Bearer ${last.token}` } });
  console.log(`GET /v1/me with the last minted token: ${me.status}`);

  const login = await fetch(`${target.httpUrl}/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: target.loginBody,
  });
  console.log(`POST /v1/auth/login with loginBody ${target.loginBody}: ${login.status}`);

  const frames: Frame[] = [];
  const waiters: (() => void)[] = [];
  const ws = new WebSocket(target.wsUrl, ['gigwire.v1.msgpack', `bearer.${first.token}`]);
  ws.on('message', (data: Buffer) => {
    frames.push(msgpack.unpack(data) as Frame);
    for (const wake of waiters.splice(0)) wake();
  });
  await new Promise<void>((done, fail) => {
    ws.once('open', done);
    ws.once('unexpected-response', (_req, res) => fail(new Error(`upgrade refused: ${res.statusCode}`)));
    ws.once('error', fail);
  });
  console.log(`WebSocket open, subprotocol ${JSON.stringify(ws.protocol)}`);
  const waitFor = async (match: (f: Frame) => boolean, ms = 5_000): Promise<Frame> => {
    const deadline = Date.now() + ms;
    for (;;) {
      const found = frames.find(match);
      if (found !== undefined) return found;
      if (Date.now() > deadline) throw new Error(`timeout; frames: ${JSON.stringify(frames)}`);
      await new Promise<void>((wake) => {
        waiters.push(wake);
        setTimeout(wake, 50);
      });
    }
  };
  const hello = await waitFor((f) => f.t === 'hello');
  console.log('hello', JSON.stringify(hello.d));
  ws.send(msgpack.pack({ t: 'room.join', id: 1, d: { roomId } }));
  console.log('join reply', JSON.stringify(await waitFor((f) => f.id === 1)));
  const clientMsgId = randomUUID();
  const sentAt = performance.now();
  ws.send(msgpack.pack({ t: 'room.send', id: 2, d: { roomId, clientMsgId, body: 'hi' } }));
  console.log('send reply', JSON.stringify(await waitFor((f) => f.id === 2)));
  const push = await waitFor((f) => f.t === 'room.message' && f.d?.clientMsgId === clientMsgId);
  console.log(`push after ${(performance.now() - sentAt).toFixed(1)} ms`, JSON.stringify(push));
  ws.close(1000);

  const rssBefore = rssKiB(target.pid);
  const tGc = performance.now();
  await target.gc();
  console.log(
    `gc() in ${(performance.now() - tGc).toFixed(1)} ms; server RSS ${rssBefore} KiB -> ${rssKiB(target.pid)} KiB`,
  );
  const aux = target.auxPids();
  console.log(
    'auxPids',
    aux.map((pid) => `${pid}:${readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim()}`),
  );
} finally {
  const tStop = performance.now();
  await target.stop();
  console.log(`stopped in ${((performance.now() - tStop) / 1000).toFixed(2)} s`);
}
