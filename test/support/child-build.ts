/**
 * The server's sources compiled once per test run for the child processes tests start (cluster
 * nodes, crash and signal tests, operator commands). `npm start` loads them through tsx, which
 * compiles each file at every start: ~4 s of CPU per process on the 2-core CI box, against ~2 s for
 * the compiled files, over some hundred starts a run. The compiler is the one tsx uses (esbuild), file
 * by file with the same layout, so a child runs the same code as `npm start` and the Docker image
 * (which runs tsc's output the same way). Tests of the commands a user types (`npm start`, the
 * first-try files) still run them as typed.
 *
 * The output sits in the checkout (`.test-build/<run>/`): gigwire finds its package.json, web app
 * and node_modules upwards from its own files.
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';

const projectRoot = resolve(import.meta.dirname, '../..');

const SOURCE_DIRS = ['src', 'protocol/src'];

function serverSources(): string[] {
  return SOURCE_DIRS.flatMap((dir) =>
    readdirSync(join(projectRoot, dir), { recursive: true, encoding: 'utf8' })
      .filter((file) => file.endsWith('.ts') && !file.endsWith('.test.ts') && !file.endsWith('.d.ts'))
      .map((file) => join(projectRoot, dir, file)),
  );
}

export interface ChildBuild {
  /** The directory holding src/ and protocol/src/ as .js files. */
  readonly dir: string;
  readonly remove: () => void;
}

export async function buildForChildren(): Promise<ChildBuild> {
  const dir = join(projectRoot, '.test-build', randomBytes(4).toString('hex'));
  const remove = () => rmSync(dir, { recursive: true, force: true });
  try {
    await build({
      entryPoints: serverSources(),
      outdir: dir,
      outbase: projectRoot,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      logLevel: 'error',
    });
  } catch (error) {
    remove();
    throw error;
  }
  return { dir, remove };
}
