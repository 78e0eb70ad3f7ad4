/**
 * `npm run config:table -- --write` is how the README's table is regenerated: a mistyped option
 * (`--wirte`) printed the table and exited 0, so the README silently stayed stale.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

describe('npm run config:table command line', () => {
  it('refuses an unknown option with one line and the usage (exit 2), writing nothing', async () => {
    const result = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', 'scripts/config-table.ts', '--wirte'],
      { env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } },
    ).then(
      ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
      (error: { code: number; stdout: string; stderr: string }) => ({
        code: error.code,
        stdout: error.stdout,
        stderr: error.stderr,
      }),
    );
    expect(result).toEqual({
      code: 2,
      stdout: '',
      stderr: "config:table: Unknown option '--wirte'\nusage: npm run config:table [-- --write]\n",
    });
  });
});
