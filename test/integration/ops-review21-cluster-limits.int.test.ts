/**
 * `npm run cluster` (scripts/cluster.ts) is "the compose topology without Docker", but its gigwire
 * processes were spawned with the test harness's lifted per-IP limits (spawn.ts: 1 000 000 upgrades
 * per second, sockets and REST connections per IP, for tests whose clients all come from
 * 127.0.0.1): someone trying the topology, or load-testing it, saw no per-IP 429 that compose would
 * give. It now asks for the shipped limits, which override those lifts with gigwire's defaults.
 */
import { describe, expect, it } from 'vitest';
import { loadConfig, settings } from '../../src/config/index.js';
import { clusterEnvironment, SHIPPED_PER_IP_LIMITS } from '../support/cluster.js';

const context = { cwd: '/tmp', isRoot: false, stdoutIsTty: false, pid: 1 };
const cluster = { databaseUrl: 'postgres://127.0.0.1/gigwire', redisUrl: 'redis://127.0.0.1:6379' };
/** What spawn.ts puts under a test's environment: every per-IP limit lifted. */
const lifted = Object.fromEntries(Object.keys(SHIPPED_PER_IP_LIMITS).map((name) => [name, '1000000']));

describe('npm run cluster', () => {
  it('runs its processes with the per-IP limits compose ships, not the test lifts', () => {
    const env = { ...lifted, ...clusterEnvironment({ ...cluster, shippedLimits: true }, 'http://x') };
    const config = loadConfig(env, context);
    expect({
      upgradesPerSecond: config.ws.upgradesPerIpPerSecond,
      upgradeBurst: config.ws.upgradeBurstPerIp,
      sockets: config.ws.maxConnectionsPerIp,
      rest: config.httpEdge.maxConnectionsPerIp,
    }).toEqual({
      upgradesPerSecond: Number(settings.WS_UPGRADES_PER_IP_PER_SECOND.default),
      upgradeBurst: Number(settings.WS_UPGRADE_BURST_PER_IP.default),
      sockets: Number(settings.WS_MAX_CONNECTIONS_PER_IP.default),
      rest: Number(settings.HTTP_MAX_CONNECTIONS_PER_IP.default),
    });
  });

  it('scripts/cluster.ts asks for them', async () => {
    const { readFile } = await import('node:fs/promises');
    const script = await readFile(new URL('../../scripts/cluster.ts', import.meta.url), 'utf8');
    expect(script).toContain('shippedLimits: true');
  });
});
