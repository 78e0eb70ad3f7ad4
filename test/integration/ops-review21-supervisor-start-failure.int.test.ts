/**
 * `GATEWAY_PROCESSES=N npm start` whose copies cannot start (a wrong DATABASE_URL here; a taken PORT,
 * a database migrated by a newer version: the failures a single process reports in one line and
 * exits 1 on) stops with exit 1 and that one line, naming the copy, instead of restarting its copies
 * for ever with a backoff, one "start failed" line per attempt. Copies that crash after serving are
 * still restarted (gateway-processes.int.test.ts; the decision itself: src/bin/supervisor.test.ts).
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { sharedRedisUrl, uniqueRedisPrefix } from '../support/context.js';
import { type GigwireProcess, spawnGigwire } from '../support/spawn.js';

const running: GigwireProcess[] = [];
afterEach(async () => {
  for (const proc of running.splice(0)) await proc.stop('SIGKILL').catch(() => undefined);
});

function supervise(env: Record<string, string>): GigwireProcess {
  const proc = spawnGigwire({
    GATEWAY_PROCESSES: '2',
    NODE_ID: 'ops21',
    REDIS_URL: sharedRedisUrl(),
    REDIS_PREFIX: uniqueRedisPrefix(),
    LOG_LEVEL: 'info',
    ...env,
  });
  running.push(proc);
  return proc;
}

/**
 * How the supervisor ended (undefined: still running 75 s on, restarting its copies). Generous: on a
 * loaded CI box the two copies' start and stop took over 30 s.
 */
async function outcome(proc: GigwireProcess) {
  const exit = await Promise.race([proc.exited, sleep(75_000).then(() => undefined)]);
  const logs = proc.logLines();
  return {
    code: exit?.code,
    stderr: proc.stderr().trim().split('\n'),
    restarts: logs.filter((line) => String(line.msg).endsWith('; restarting it')).length,
  };
}

describe('GATEWAY_PROCESSES: a start that cannot succeed', () => {
  it('a missing database: exit 1 with the one line a single process prints, no restart', async () => {
    const missing = `${inject('postgresBaseUrl')}/nosuch_${randomBytes(4).toString('hex')}`;
    const proc = supervise({ DATABASE_URL: missing });
    const result = await outcome(proc);
    expect(result, proc.stdout()).toMatchObject({ code: 1, restarts: 0 });
    expect(result.stderr).toHaveLength(1);
    expect(result.stderr[0]).toMatch(
      /^gigwire: start failed: DATABASE_URL \S+: cannot use the database: .*does not exist.* \(gateway process ops21-g[12]; every gateway process stopped\)$/,
    );
  }, 120_000);
});
