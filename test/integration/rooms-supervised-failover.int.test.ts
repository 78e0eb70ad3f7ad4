/**
 * A room's owner among supervised gateway processes (GATEWAY_PROCESSES=2, `npm start` on one
 * machine, WS_PORT shared): the owner copy is SIGKILLed while ten SDK clients send, the room moves
 * to the surviving copy, the supervisor restarts the dead copy under the same name, and the room
 * moves back to it while the clients keep sending. Every acknowledged message is stored once and
 * every client ends with the whole sequence, in order. (The bench's jitterkill run saw slow gap
 * filling after such a kill on a saturated core; this pins down the correctness half.)
 */
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BusyRoom, openBusyRoom } from '../support/busy-room.js';
import { until } from '../support/cluster.js';
import {
  createMigratedDatabase,
  sharedRedisUrl,
  type TestDatabase,
  uniqueRedisPrefix,
} from '../support/context.js';
import { httpClient } from '../support/http.js';
import { freePort } from '../support/servers.js';
import { type GigwireProcess, spawnGigwire } from '../support/spawn.js';

const MEMBERS = 10;

describe('room failover between supervised gateway processes', () => {
  let db: TestDatabase;
  let sql: pg.Pool;
  let server: GigwireProcess | undefined;
  let room: BusyRoom | undefined;

  beforeAll(async () => {
    db = await createMigratedDatabase();
    sql = new pg.Pool({ connectionString: db.url, max: 2 });
  });
  afterAll(async () => {
    room?.close();
    await server?.stop('SIGTERM', 20_000).catch(() => server?.stop('SIGKILL'));
    await sql?.end();
    await db?.drop();
  });

  /** The pid of the copy named `name`, from the supervisor's latest "gateway process up" line. */
  const pidOf = (name: string) =>
    Number(
      (server as GigwireProcess)
        .logLines()
        .filter((l) => l.msg === 'gateway process up' && l.child === name)
        .at(-1)?.pid,
    );

  it('the owner copy SIGKILLed mid-burst: the room moves to the survivor, then back to the restarted copy', async () => {
    const wsPort = await freePort();
    server = spawnGigwire({
      GATEWAY_PROCESSES: '2',
      NODE_ID: 'sup',
      DATABASE_URL: db.url,
      REDIS_URL: sharedRedisUrl(),
      REDIS_PREFIX: uniqueRedisPrefix(),
      PORT: String(await freePort()),
      WS_PORT: String(wsPort),
      PRESENCE_LEASE_MS: '2000',
      WS_MAX_MESSAGES_PER_SECOND: '5000',
      WS_MAX_BURST: '5000',
      RATE_LIMIT_PER_MINUTE: '100000',
    });
    const up = await server.waitForLog((l) => String(l.msg).includes('×2 is up at '), 90_000);
    const r = await openBusyRoom({
      api: httpClient(String(up.msg).split(' is up at ')[1] ?? ''),
      wsUrl: `ws://127.0.0.1:${wsPort}/ws`,
      size: MEMBERS,
      sql,
    });
    room = r;
    await r.burst('warm', 10);
    await r.expectEveryoneHasAll();
    const first = await r.owner();
    expect(['sup-g1', 'sup-g2']).toContain(first.node);
    const victim = first.node ?? '';
    const victimPid = pidOf(victim);
    expect(victimPid).toBeGreaterThan(0);

    // Killed mid-burst; its clients reconnect through the shared port to the survivor. Owners are
    // sampled meanwhile: the supervisor may bring the copy back (and the room with it) before the
    // burst ends.
    const owners: string[] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const now = (await r.owner()).node ?? '';
        if (owners.at(-1) !== now) owners.push(now);
        await sleep(25);
      }
    })();
    const sending = r.burst('kill', 20);
    await until(() => r.members.every((m) => m.seqs.length >= r.sent() + 30), 10_000);
    process.kill(victimPid, 'SIGKILL');
    await sending;
    sampling = false;
    await sampler;
    await r.expectEveryoneHasAll();
    const survivor = victim === 'sup-g1' ? 'sup-g2' : 'sup-g1';
    expect(owners.slice(0, 2)).toEqual([victim, survivor]);
    expect((await r.owner()).epoch).toBeGreaterThan(first.epoch);

    // The supervisor brings the copy back under the same name; busy all along, the room follows it.
    await server.waitForLog(
      (l) => l.msg === 'gateway process up' && l.child === victim && l.pid !== victimPid,
      60_000,
    );
    let back = false;
    let round = 0;
    const busy = (async () => {
      while (!back) await r.burst(`back${round++}`, 2);
    })();
    back = await until(async () => (await r.owner()).node === victim, 20_000);
    const movedBack = back;
    back = true;
    await busy;
    expect(movedBack).toBe(true);
    await r.burst('after', 3);
    await r.expectEveryoneHasAll();
  }, 150_000);
});
