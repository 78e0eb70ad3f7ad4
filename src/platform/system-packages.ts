/**
 * Finding (and, where allowed, installing) the system programs gigwire runs beside itself:
 * `redis-server` for the embedded default, PostgreSQL and docker-compose for the test harness.
 * Installing uses Debian's apt-get and only happens when the caller allows it (as root, by default).
 */
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

export class MissingProgramError extends Error {
  override readonly name = 'MissingProgramError';
}

export interface ProgramSpec {
  /** Executable name looked up on PATH, e.g. `redis-server`. */
  readonly command: string;
  /** Debian package that provides it. */
  readonly debianPackage: string;
  /** Absolute paths tried when the command is not on PATH (e.g. /usr/lib/postgresql/15/bin/initdb). */
  readonly extraPaths?: readonly string[];
  /** Appended to the "not installed" message, e.g. "or set REDIS_URL". */
  readonly alternative?: string;
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Absolute path of the program, or undefined. */
export function findProgram(spec: ProgramSpec, searchPath: string): string | undefined {
  const onPath = searchPath
    .split(delimiter)
    .filter((dir) => dir !== '')
    .map((dir) => join(dir, spec.command));
  return [...onPath, ...(spec.extraPaths ?? [])].find(isExecutable);
}

function run(command: string, args: readonly string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolvePromise) => {
    const child = spawn(command, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', DEBIAN_FRONTEND: 'noninteractive', LANG: 'C.UTF-8' },
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.on('error', (error) => resolvePromise({ code: -1, output: `${output}${error.message}` }));
    child.on('close', (code) => resolvePromise({ code, output }));
  });
}

export interface EnsureProgramOptions {
  readonly install: boolean;
  readonly searchPath: string;
  readonly onInstall?: (debianPackage: string) => void;
}

/**
 * Returns the program's absolute path, installing its Debian package first when allowed.
 * @throws MissingProgramError with one line saying what to install.
 */
export async function ensureProgram(spec: ProgramSpec, options: EnsureProgramOptions): Promise<string> {
  const found = findProgram(spec, options.searchPath);
  if (found !== undefined) return found;
  const advice = `install it with \`apt-get install ${spec.debianPackage}\`${spec.alternative ? ` ${spec.alternative}` : ''}`;
  const aptGet = findProgram({ command: 'apt-get', debianPackage: 'apt' }, '/usr/bin:/bin');
  if (!options.install || aptGet === undefined) {
    throw new MissingProgramError(`${spec.command} is not installed: ${advice}`);
  }
  options.onInstall?.(spec.debianPackage);
  const installArgs = ['install', '-y', '-qq', '--no-install-recommends', spec.debianPackage];
  let result = await run(aptGet, installArgs);
  if (result.code !== 0) {
    // A fresh machine has no package lists yet: refresh them once and try again.
    await run(aptGet, ['update', '-qq']);
    result = await run(aptGet, installArgs);
  }
  const installed = findProgram(spec, `${options.searchPath}${delimiter}/usr/bin${delimiter}/usr/sbin`);
  if (result.code !== 0 || installed === undefined) {
    const reason = result.output.trim().split('\n').pop() ?? 'unknown error';
    throw new MissingProgramError(
      `${spec.command} is not installed and apt-get failed (${reason}): ${advice}`,
    );
  }
  return installed;
}
