/**
 * Idle scenario: open N authenticated connections as fast as the server admits them (a bounded
 * number of attempts in flight per worker), then hold them. Figures: connect rate, server CPU µs
 * per connect (window = connecting + a short settle, so deferred work such as batched presence
 * writes is included), and server RSS per connection after a forced GC (delta over the RSS after
 * GC before connecting). Postgres/Redis CPU and RSS are reported separately. gigwire's smaller
 * step connects with access JWTs, the larger with connect tokens (`credentialFor`).
 */
import { rssBytes, totalRss } from './proc.js';
import {
  type CaseResult,
  closeClients,
  connectClients,
  failedCase,
  loadgenCheck,
  MeasureWindow,
  type Scenario,
  type ScenarioContext,
} from './scenario.js';
import { sleep } from './stats.js';

export function idleSizes(quick: boolean): number[] {
  return quick ? [250, 500] : [10_000, 19_500];
}

const CONNECT_CONCURRENCY = 64;

/**
 * gigwire's first (smaller) step opens each socket with its access JWT (an Ed25519 check per new
 * token), the others with the connect token issued next to it (an HMAC check, what the SDK uses):
 * both paths measured in one run. The goal row reads the largest step.
 */
const credentialFor = (ctx: ScenarioContext, size: number): 'access' | 'connect' =>
  size === idleSizes(ctx.quick)[0] ? 'access' : 'connect';

async function measureSize(ctx: ScenarioContext, size: number): Promise<CaseResult> {
  const { target } = ctx;
  const caseId = `idle@${size}`;
  const label = `${size} conns`;
  const credential = credentialFor(ctx, size);
  // Access JWTs never seen by the server (its verified-token cache would answer an earlier run's
  // tokens without Ed25519); made before the window, with a pause for the revocation feed, which
  // reads new sessions into the server's cache, to settle.
  let credentials = ctx.credentials;
  if (credential === 'access' && target.name.startsWith('gigwire')) {
    credentials = await target.credentials(size);
    await sleep(1_500);
  }
  // Twice: the first collection may leave garbage of the previous scenario's sockets behind.
  await target.gc();
  await target.gc();
  const rssBefore = rssBytes(target.pid);
  const auxRssBefore = totalRss(target.auxPids());
  const window = new MeasureWindow(target, ctx.pool);
  const connectWindow = new MeasureWindow(target, ctx.pool);
  const connect = await connectClients(ctx, size, CONNECT_CONCURRENCY, credential, credentials);
  const connectPhase = connectWindow.end();
  await sleep(ctx.quick ? 300 : 1_000);
  const cpu = window.end();
  await target.gc();
  await sleep(200);
  const rssAfter = rssBytes(target.pid);
  const auxRssAfter = totalRss(target.auxPids());
  ctx.log(
    `${caseId}: ${connect.connected} connected, ${connect.failed} failed in ${connect.wallMs.toFixed(0)} ms`,
  );
  const n = connect.connected;
  const perConn = (value: number) => (n > 0 ? value / n : null);
  const dropped = await closeClients(ctx);
  // Let the server finish tearing the sockets down before the next measurement starts.
  await sleep(ctx.quick ? 300 : 2_000);
  return {
    scenario: 'idle',
    caseId,
    label,
    level: size,
    metrics: {
      connections: n,
      failed: connect.failed,
      dropped,
      connectPerSec: n > 0 && connect.wallMs > 0 ? n / (connect.wallMs / 1000) : null,
      serverCpuUsPerConnect: perConn(cpu.serverCpuUs),
      auxCpuUsPerConnect: target.auxPids().length > 0 ? perConn(cpu.auxCpuUs) : null,
      serverRssKbPerConn: perConn((rssAfter - rssBefore) / 1024),
      auxRssKbPerConn: target.auxPids().length > 0 ? perConn((auxRssAfter - auxRssBefore) / 1024) : null,
      serverRssMb: rssAfter / 2 ** 20,
      serverBusy: cpu.serverBusy,
    },
    loadgen: loadgenCheck(connectPhase, 0, 0),
    sustained: connect.failed === 0 && n === size,
    errors: connect.errors,
  };
}

export const idleScenario: Scenario = {
  id: 'idle',
  appliesTo: () => true,
  run: async (ctx) => {
    const cases: CaseResult[] = [];
    for (const size of idleSizes(ctx.quick)) {
      try {
        cases.push(await measureSize(ctx, size));
      } catch (error) {
        await closeClients(ctx).catch(() => 0);
        cases.push(failedCase('idle', `idle@${size}`, `${size} conns`, size, error));
      }
    }
    return cases;
  },
};
