import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../platform/logger.js';
import { anchorSocketFileName, removeStaleAnchorSockets } from './stale-anchor-sockets.js';

const log = createLogger({ level: 'silent', pretty: false });

/** A socket file whose listener was SIGKILLed: the file stays, nothing accepts on it. */
async function staleSocketFile(path: string): Promise<void> {
  const child = spawn(process.execPath, [
    '-e',
    `require('node:net').createServer().listen(${JSON.stringify(path)}, () => console.log('up'))`,
  ]);
  await new Promise<void>((resolve, reject) => {
    child.stdout.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`listener exited ${code}`)));
  });
  child.removeAllListeners('exit');
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}

describe('removeStaleAnchorSockets', () => {
  const dirs: string[] = [];
  const servers: Server[] = [];
  afterEach(() => {
    for (const server of servers.splice(0)) server.close();
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it('removes anchor files nobody listens on and keeps live ones and other files', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'anchors-'));
    dirs.push(dir);
    const stale = anchorSocketFileName(999_999, 'deadbeef');
    await staleSocketFile(join(dir, stale));
    expect(existsSync(join(dir, stale))).toBe(true);

    const live = anchorSocketFileName(process.pid, '0123abcd');
    const server = createServer((socket) => socket.destroy());
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(join(dir, live), resolve));

    const otherSocket = 'not-an-anchor.sock';
    await staleSocketFile(join(dir, otherSocket));
    writeFileSync(join(dir, 'notes.txt'), 'keep');

    const removed = await removeStaleAnchorSockets(dir, log);

    expect(removed).toEqual([stale]);
    expect(readdirSync(dir).sort()).toEqual([live, 'not-an-anchor.sock', 'notes.txt'].sort());
  });

  it('logs and resolves empty for a directory it cannot read', async () => {
    expect(await removeStaleAnchorSockets(join(tmpdir(), 'no-such-dir-for-anchors'), log)).toEqual([]);
  });
});
