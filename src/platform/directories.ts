/** Creating the directories DATA_DIR needs. */
import { mkdirSync, statSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * `mkdir -p`, one level at a time. Node's `mkdirSync(…, { recursive: true })` never returns for a
 * path under /proc (procfs answers ENOENT for the missing level, and Node retries it forever), so
 * DATA_DIR=/proc/x hung the start instead of failing with the line that names DATA_DIR. `mode` is
 * that of the directories made.
 */
export function makeDirectories(path: string, mode?: number): void {
  try {
    if (statSync(path).isDirectory()) return;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    const parent = dirname(path);
    if (parent !== path) makeDirectories(parent, mode);
  }
  try {
    mkdirSync(path, mode === undefined ? undefined : { mode });
  } catch (error) {
    // Made by another process meanwhile is fine; a file in the way is not (EEXIST names it).
    if ((error as NodeJS.ErrnoException).code === 'EEXIST' && statSync(path).isDirectory()) return;
    throw error;
  }
}
