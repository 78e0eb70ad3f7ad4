/**
 * Removes cork-anchor socket files (src/gateway/uws.ts) that a gateway process killed without its
 * orderly stop left in the temp directory: a supervisor restarting crashed children, or a SIGKILL,
 * would otherwise leave one file per crash there for good. A file is stale when nothing accepts a
 * connection on it (ECONNREFUSED); a live one belongs to a running process — whatever its pid
 * namespace, so a pid check is not enough — and is kept. Best effort: an error is logged, never thrown.
 */
import { readdir, unlink } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import type { Logger } from '../platform/logger.js';

const ANCHOR_FILE = /^gigwire-uws-anchor-\d+-[0-9a-f]{8}\.sock$/;
/** A listener that neither accepts nor refuses within this is treated as alive. */
const PROBE_TIMEOUT_MS = 1_000;

export function anchorSocketFileName(pid: number, suffix: string): string {
  return `gigwire-uws-anchor-${pid}-${suffix}.sock`;
}

/** Whether a Unix socket file has no listener: only a refused connect says so. */
function isRefused(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(path);
    const done = (refused: boolean) => {
      socket.destroy();
      resolve(refused);
    };
    socket.setTimeout(PROBE_TIMEOUT_MS, () => done(false));
    socket.once('connect', () => done(false));
    socket.once('error', (error: NodeJS.ErrnoException) => done(error.code === 'ECONNREFUSED'));
  });
}

/** Removes the stale anchor files in `dir`; resolves with the names removed. */
export async function removeStaleAnchorSockets(dir: string, log: Logger): Promise<string[]> {
  const removed: string[] = [];
  try {
    const names = (await readdir(dir)).filter((name) => ANCHOR_FILE.test(name));
    for (const name of names) {
      const path = join(dir, name);
      if (!(await isRefused(path))) continue;
      await unlink(path).then(
        () => removed.push(name),
        (error: NodeJS.ErrnoException) => {
          if (error.code !== 'ENOENT') throw error;
        },
      );
    }
  } catch (error) {
    log.warn({ err: error, dir }, 'could not remove stale cork-anchor socket files');
  }
  if (removed.length > 0) log.info({ removed: removed.length }, 'removed stale cork-anchor socket files');
  return removed;
}
