/**
 * GATEWAY_PROCESSES=2: `npm start` supervises two processes that bind the same WS_PORT (the
 * uWebSockets.js build we ship sets SO_REUSEPORT) and share PORT through node:cluster. Proof from
 * the kernel's own tables (/proc/net/tcp): both processes hold a listening socket on WS_PORT and
 * both own accepted connections. A process SIGKILLed is restarted; SIGTERM stops everything with 0.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import type { Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createMigratedDatabase,
  sharedRedisUrl,
  type TestDatabase,
  uniqueRedisPrefix,
} from '../support/context.js';
import { httpClient, registerUser } from '../support/http.js';
import { freePort } from '../support/servers.js';
import { childPids, type GigwireProcess, isProcessAlive, spawnGigwire } from '../support/spawn.js';
import { openSocket, type TestSocket } from '../support/ws-client.js';

const TCP_LISTEN = '0A';
const TCP_ESTABLISHED = '01';

/**
 * Inodes of the IPv4/IPv6 TCP sockets whose local port is `port`, in the given state; with
 * `peers`, only those whose remote port is one of them (the server side of our own clients, not
 * the loopback cork anchors each gateway opens to its own port).
 */
function tcpSocketInodes(port: number, state: string, peers?: ReadonlySet<number>): Set<string> {
  const inodes = new Set<string>();
  const portOf = (address: string | undefined) => Number.parseInt(address?.split(':')[1] ?? '', 16);
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const row of readFileSync(table, 'utf8').trim().split('\n').slice(1)) {
      const cols = row.trim().split(/\s+/);
      if (portOf(cols[1]) !== port || cols[3] !== state || cols[9] === undefined) continue;
      if (peers === undefined || peers.has(portOf(cols[2]))) inodes.add(cols[9]);
    }
  }
  return inodes;
}

/** How many of `inodes` process `pid` has open. */
function ownedBy(pid: number, inodes: Set<string>): number {
  let count = 0;
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (match?.[1] !== undefined && inodes.has(match[1])) count += 1;
    } catch {
      // closed meanwhile
    }
  }
  return count;
}

describe('GATEWAY_PROCESSES: several gateway processes share the ports', () => {
  let db: TestDatabase;
  let server: GigwireProcess | undefined;
  const sockets: TestSocket[] = [];
  const env: Record<string, string> = {};

  beforeAll(async () => {
    db = await createMigratedDatabase();
    Object.assign(env, {
      GATEWAY_PROCESSES: '2',
      NODE_ID: 'multi',
      DATABASE_URL: db.url,
      REDIS_URL: sharedRedisUrl(),
      REDIS_PREFIX: uniqueRedisPrefix(),
      PORT: String(await freePort()),
      WS_PORT: String(await freePort()),
      WS_MAX_SOCKETS_PER_USER: '100',
    });
  });
  afterAll(async () => {
    for (const socket of sockets) socket.close();
    await server?.stop('SIGKILL').catch(() => undefined);
    await db.drop();
  });

  it('both processes listen on WS_PORT and both accept connections; a dead one comes back', async () => {
    server = spawnGigwire(env);
    const up = await server.waitForLog((l) => String(l.msg).includes('×2 is up at '), 90_000);
    const baseUrl = String(up.msg).split(' is up at ')[1] ?? '';
    expect(baseUrl).toBe(`http://127.0.0.1:${env.PORT}`);
    const wsPort = Number(env.WS_PORT);
    const pids = childPids(server.pid);
    expect(pids).toHaveLength(2);
    for (const pid of pids) expect(ownedBy(pid, tcpSocketInodes(wsPort, TCP_LISTEN))).toBe(1);
    const names = server
      .logLines()
      .filter((l) => l.msg === 'gateway process up')
      .map((l) => l.child);
    expect(names.sort()).toEqual(['multi-g1', 'multi-g2']);

    // REST on the shared PORT, then 24 sockets on the shared WS_PORT: the kernel hashes each new
    // connection to one of the two listeners (all on one of them: odds 2 in 2^24).
    const user = await registerUser(httpClient(baseUrl));
    for (let i = 0; i < 24; i++) {
      const socket = await openSocket(`ws://127.0.0.1:${wsPort}/ws`, user.accessToken, 'msgpack');
      sockets.push(socket);
      await socket.next((f) => f.t === 'hello');
    }
    const ours = new Set(
      sockets.map((socket) => (socket.ws as unknown as { _socket: Socket })._socket.localPort ?? 0),
    );
    const accepted = pids.map((pid) => ownedBy(pid, tcpSocketInodes(wsPort, TCP_ESTABLISHED, ours)));
    expect(accepted.reduce((a, b) => a + b, 0)).toBe(24);
    expect(accepted.every((n) => n > 0)).toBe(true);

    // /metrics, whichever copy node:cluster hands the connection to, shows both copies' series in
    // one valid exposition (each family once): the two connection gauges add up to the 24 sockets.
    for (let i = 0; i < 4; i++) {
      const text = await (await fetch(`${baseUrl}/metrics`)).text();
      expect(text.match(/^# TYPE gigwire_ws_connections /gm)).toHaveLength(1);
      const open = [
        ...text.matchAll(
          /^gigwire_ws_connections\{(?=[^}]*transport="uws")[^}]*node="(multi-g[12])"[^}]*\} (\d+)$/gm,
        ),
      ];
      expect(open.map((match) => match[1]).sort()).toEqual(['multi-g1', 'multi-g2']);
      expect(open.reduce((sum, match) => sum + Number(match[2]), 0)).toBe(24);
    }

    // One process dies: the supervisor starts it again under the same name; the port still serves.
    const [victim, survivor] = pids as [number, number];
    process.kill(victim, 'SIGKILL');
    for (let i = 0; i < 600 && !childPids(server.pid).some((p) => !pids.includes(p)); i++) await sleep(50);
    const restarted = childPids(server.pid).find((pid) => !pids.includes(pid));
    expect(restarted).toBeDefined();
    await server.waitForLog((l) => l.msg === 'gateway process up' && l.pid === restarted, 90_000);
    expect(ownedBy(restarted ?? 0, tcpSocketInodes(wsPort, TCP_LISTEN))).toBe(1);
    const again = await openSocket(`ws://127.0.0.1:${wsPort}/ws`, user.accessToken, 'msgpack');
    sockets.push(again);
    await again.next((f) => f.t === 'hello');

    // SIGTERM to the supervisor: every process runs its ordered shutdown, then it exits 0.
    const stopped = await server.stop('SIGTERM', 30_000);
    expect(stopped.code).toBe(0);
    for (const pid of [survivor, restarted ?? 0]) expect(isProcessAlive(pid)).toBe(false);
  }, 180_000);
});
