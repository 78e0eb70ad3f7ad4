/**
 * `npm run cluster -- --port P` with P already taken (a second cluster, `npm start` on 8080) fails at
 * once, naming the port, before anything starts: it started PostgreSQL, Redis and every gigwire
 * process, then failed as "the proxy did not answer /health/live (last status 404)" (the other
 * server's answer to nginx's health probe) 40 s later.
 */
import { execFile } from 'node:child_process';
import { createServer } from 'node:net';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

describe('npm run cluster on a taken port', () => {
  it('refuses it at once with one line, exit 1, starting nothing', async () => {
    const holder = createServer();
    await new Promise<void>((listening) => holder.listen(0, '127.0.0.1', listening));
    const address = holder.address();
    const port = typeof address === 'object' && address !== null ? address.port : 0;
    try {
      const result = await promisify(execFile)(
        process.execPath,
        ['--import', 'tsx', 'scripts/cluster.ts', '--port', String(port), '--quiet'],
        // Without the check it starts everything first: SIGTERM (it then stops what it started).
        { env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, timeout: 8_000 },
      ).then(
        ({ stdout, stderr }) => ({ code: 0 as number | null, stdout, stderr }),
        (error: { code: number | null; stdout: string; stderr: string }) => ({
          code: error.code,
          stdout: error.stdout,
          stderr: error.stderr,
        }),
      );
      expect(result).toEqual({
        code: 1,
        stdout: '',
        stderr: `cluster: start failed: cannot listen on 127.0.0.1:${port} (EADDRINUSE); stop what uses it or choose another with --port\n`,
      });
    } finally {
      await new Promise((closed) => holder.close(closed));
    }
  });
});
