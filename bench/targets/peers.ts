/**
 * The two comparison servers as TargetServers: the raw uWebSockets.js peer and the Socket.IO peer
 * (bench/peers/*), each a Node process with --expose-gc pinned to the server core. No auth (tokens
 * are empty, user ids synthetic), no persistence (rooms are just names).
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
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
  const { command, args } = pinned(SERVER_CORE, [
    process.execPath,
    '--expose-gc',
    ...NODE_TS.slice(1),
    script,
    '0',
  ]);
  const child = spawn(command, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  lineListenersOf(child); // drain stdout from the start
  const ready = await waitForLine(child, /^ready port=(\d+)$/, START_TIMEOUT_MS);
  const port = Number(ready[1]);
  const pid = child.pid;
  if (pid === undefined) throw new Error(`${name} peer has no pid`);

  return {
    name,
    wsUrl: urlFor(port),
    pid,
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
