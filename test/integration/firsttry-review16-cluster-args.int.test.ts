/**
 * `npm run cluster` refuses a wrong command line at once, with what is wrong and the usage (exit 2):
 * a mistyped option was a Node stack trace, and an out-of-range port started PostgreSQL and Redis
 * before failing on an unrelated-looking PUBLIC_URL error.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

async function cluster(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return promisify(execFile)(process.execPath, ['--import', 'tsx', 'scripts/cluster.ts', ...args], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
    timeout: 60_000,
  }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (error: { code: number; stdout: string; stderr: string }) => ({
      code: error.code,
      stdout: error.stdout,
      stderr: error.stderr,
    }),
  );
}

const USAGE = 'usage: npm run cluster -- [--gateways 1-16] [--port 1-65535] [--quiet]';

describe('npm run cluster command line', () => {
  it.each([
    [['--gatways', '2'], "cluster: Unknown option '--gatways'"],
    [['--port', '99999'], 'cluster: --port "99999": must be 1-65535'],
    [['--port', '0'], 'cluster: --port "0": must be 1-65535'],
    [['--gateways', '0'], 'cluster: --gateways "0": must be 1-16'],
  ])('refuses %j with one line and the usage, starting nothing', async (args, problem) => {
    const result = await cluster(args);
    expect(result).toEqual({ code: 2, stdout: '', stderr: `${problem}\n${USAGE}\n` });
  });
});
