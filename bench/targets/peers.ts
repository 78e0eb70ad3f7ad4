/**
 * The two comparison servers as TargetServers: the raw uWebSockets.js peer and the Socket.IO peer
 * (bench/peers/*), each a Node process with --expose-gc pinned to the server core. No auth (tokens
 * are empty, user ids synthetic), no persistence (rooms are just names). `crash` SIGKILLs the peer
 * and starts it again on the same port, as a supervisor would: what it held in memory (Socket.IO's
 * connection-state-recovery sessions, uWS's subscriptions) is gone.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../test/support/servers.js';
import {
  lineListenersOf,
  NODE_TS,
  pinned,
  REPO_ROOT,
  SERVER_CORE,
  stopProcess,
  waitForLine,
} from '../lib/spawn.js';
import type { ClientCredential, TargetName, TargetServer } from '../lib/target.js';

const GC_TIMEOUT_MS = 1_000;
const START_TIMEOUT_MS = 20_000;

async function startPeer(
  name: TargetName,
  file: string,
  urlFor: (port: number) => string,
): Promise<TargetServer> {
  const script = fileURLToPath(new URL(`../peers/${file}`, import.meta.url));
  const launch = async (wantedPort: number): Promise<{ child: ChildProcess; port: number; pid: number }> => {
    const { command, args } = pinned(SERVER_CORE, [
      process.execPath,
      '--expose-gc',
      ...NODE_TS.slice(1),
      script,
      String(wantedPort),
    ]);
    const spawned = spawn(command, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    lineListenersOf(spawned); // drain stdout from the start
    const ready = await waitForLine(spawned, /^ready port=(\d+)$/, START_TIMEOUT_MS);
    if (spawned.pid === undefined) throw new Error(`${name} peer has no pid`);
    return { child: spawned, port: Number(ready[1]), pid: spawned.pid };
  };
  // An explicit port even at the first start: uSockets sets SO_REUSEADDR (and SO_REUSEPORT) only
  // when told a port, and a restart after `crash` must bind the same port while the killed
  // process's connections sit in TIME_WAIT, which needs SO_REUSEADDR on both sides.
  let { child, port, pid } = await launch(await freePort());

  return {
    name,
    wsUrl: urlFor(port),
    get pid() {
      return pid;
    },
    serverPids: () => [pid],
    crash: async () => {
      const killedPid = pid;
      const killedAt = performance.now();
      const exited = new Promise((done) => child.once('exit', done));
      child.kill('SIGKILL');
      await exited;
      ({ child, pid } = await launch(port));
      return { killedPid, replacedMs: performance.now() - killedAt };
    },
    auxPids: () => [],
    credentials: async (count: number): Promise<ClientCredential[]> =>
      Array.from({ length: count }, (_, i) => ({ userId: `user-${i}`, token: '' })),
    prepareRooms: async (_credentials, rooms) => Array.from({ length: rooms }, (_, r) => `room-${r}`),
    gc: async () => {
      const done = waitForLine(child, /^gc-done/, GC_TIMEOUT_MS).catch(() => undefined);
      child.kill('SIGUSR2');
      await done;
    },
    stop: () => stopProcess(child),
  };
}

export function startUwsPeer(): Promise<TargetServer> {
  return startPeer('uws', 'uws-peer.ts', (port) => `ws://127.0.0.1:${port}/ws`);
}

export function startSocketIoPeer(): Promise<TargetServer> {
  return startPeer('socketio', 'socketio-peer.ts', (port) => `http://127.0.0.1:${port}`);
}
