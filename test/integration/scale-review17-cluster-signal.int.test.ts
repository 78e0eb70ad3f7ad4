/**
 * `npm run cluster` stopped while it is still starting (Ctrl-C, or a SIGTERM to the script alone)
 * stops what it started and removes its temp directory. Before, its signal handlers were set only
 * once everything was up: a signal during the start ended the script by the default action and
 * left PostgreSQL (pg_ctl gives it a session of its own, so even the terminal's Ctrl-C never
 * reaches it), Redis and the gigwire processes running, and the data directory behind.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { untilDefined } from '../support/poll.js';
import { freePort } from '../support/servers.js';

/** Whether something accepts connections on 127.0.0.1:port. */
const listening = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });

/** Pids whose command line or environment names `needle` (only this test's own processes do). */
function processesNaming(needle: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const text = `${readFileSync(`/proc/${entry}/cmdline`, 'utf8')}\0${readFileSync(`/proc/${entry}/environ`, 'utf8')}`;
      if (text.includes(needle)) pids.push(Number(entry));
    } catch {
      // gone, or not ours to read
    }
  }
  return pids;
}

/** What a failed run left behind, named by its data directory or its Redis address: ended by pid. */
const leftovers: string[] = [];
afterEach(() => {
  for (const needle of leftovers.splice(0)) {
    for (const pid of processesNaming(needle)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    if (needle.startsWith('/')) rmSync(needle, { recursive: true, force: true });
  }
});

describe('npm run cluster stopped while starting', () => {
  it.each([
    ['Ctrl-C (SIGINT to its process group)', 'SIGINT', true],
    ['SIGTERM to the script alone', 'SIGTERM', false],
  ] as const)(
    '%s: exits 0, stops PostgreSQL, Redis and the processes, removes its directory',
    async (_name, signal, group) => {
      const child: ChildProcess = spawn(
        process.execPath,
        [
          '--import',
          'tsx',
          'scripts/cluster.ts',
          '--gateways',
          '1',
          '--port',
          String(await freePort()),
          '--quiet',
        ],
        {
          detached: true,
          stdio: ['ignore', 'pipe', 'pipe'],
          env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
        },
      );
      let output = '';
      child.stdout?.on('data', (chunk: Buffer) => {
        output += chunk.toString();
      });
      child.stderr?.on('data', (chunk: Buffer) => {
        output += chunk.toString();
      });
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      const started = await untilDefined(
        async () =>
          /PostgreSQL postgres:\/\/app@127\.0\.0\.1:(\d+)\/gigwire, Redis (redis:\/\/127\.0\.0\.1:(\d+)) \(data in ([^)]+)\); starting/.exec(
            output,
          ) ?? undefined,
        `the cluster script to start PostgreSQL and Redis (output: ${output})`,
        90_000,
      );
      const [, pgPort, redisUrl, redisPort, root] = started as unknown as [
        string,
        string,
        string,
        string,
        string,
      ];
      leftovers.push(root, `127.0.0.1:${redisPort}`);
      // The gigwire processes are starting now (they take seconds): the signal lands mid-start.
      process.kill(group ? -(child.pid as number) : (child.pid as number), signal);
      const code = await exited;
      const leftBehind = await untilDefined(
        async () => {
          const state = {
            postgres: await listening(Number(pgPort)),
            redis: await listening(Number(redisPort)),
            processes: processesNaming(redisUrl).length,
            directory: existsSync(root),
          };
          return Object.values(state).some(Boolean) ? undefined : state;
        },
        'everything the script started to be gone',
        30_000,
      ).catch(async () => ({
        postgres: await listening(Number(pgPort)),
        redis: await listening(Number(redisPort)),
        processes: processesNaming(redisUrl).length,
        directory: existsSync(root),
      }));
      expect({ code, ...leftBehind }, output).toEqual({
        code: 0,
        postgres: false,
        redis: false,
        processes: 0,
        directory: false,
      });
    },
    180_000,
  );
});
