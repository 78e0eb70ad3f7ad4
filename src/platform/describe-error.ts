/**
 * One readable line for a failure that stops a command (`gigwire: start failed: …`). Most failures
 * are Errors, but not all: PGlite's file system (Emscripten) throws plain `ErrnoError` objects that
 * carry only a number, which `String()` turns into `[object Object]` — on a full disk the person
 * who ran `npm start` learned nothing.
 */

/**
 * Emscripten's errno numbers (its WASI-style table, not Linux's: ENOSPC is 51 there, 28 on Linux),
 * as PGlite 0.5 throws them in `{ name: 'ErrnoError', errno }`.
 */
const EMSCRIPTEN_ERRNO: Readonly<Record<number, string>> = {
  2: 'EACCES',
  19: 'EDQUOT',
  20: 'EEXIST',
  22: 'EFBIG',
  29: 'EIO',
  31: 'EISDIR',
  33: 'EMFILE',
  44: 'ENOENT',
  48: 'ENOMEM',
  51: 'ENOSPC',
  54: 'ENOTDIR',
  63: 'EPERM',
  69: 'EROFS',
};

const MEANING: Readonly<Record<string, string>> = {
  EACCES: 'permission denied',
  EDQUOT: 'disk quota exceeded',
  EEXIST: 'file exists',
  EFBIG: 'file too large',
  EIO: 'input/output error',
  EISDIR: 'is a directory',
  EMFILE: 'too many open files',
  ENOENT: 'no such file or directory',
  ENOMEM: 'out of memory',
  ENOSPC: 'no space left on device',
  ENOTDIR: 'not a directory',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
};

export interface DescribeErrorOptions {
  /**
   * Where the embedded database keeps its files: named in file-system failures that carry no path
   * (PGlite's ErrnoError).
   */
  readonly dir?: string;
}

const field = (value: object, key: string): unknown => (value as Record<string, unknown>)[key];
const text = (value: unknown): string | undefined =>
  typeof value === 'string' && value.trim() !== '' ? value.trim() : undefined;

function describeObject(value: object, options: DescribeErrorOptions): string {
  const name = text(field(value, 'name'));
  const message = text(field(value, 'message'));
  const errno = field(value, 'errno');
  const code =
    text(field(value, 'code')) ??
    (name === 'ErrnoError' && typeof errno === 'number' ? EMSCRIPTEN_ERRNO[errno] : undefined);
  const meaning = code === undefined ? undefined : MEANING[code];
  const where = options.dir === undefined ? '' : ` under ${options.dir}`;
  if (name === 'ErrnoError' && message === undefined) {
    // The embedded database's file system: no path, only a number.
    return meaning === undefined
      ? `file system error (errno ${String(errno)}, Emscripten numbering)${where}`
      : `${meaning}${where} (${code})`;
  }
  const parts = [
    message ?? meaning,
    name === undefined || name === 'Error' ? undefined : `name ${name}`,
    code === undefined ? undefined : `code ${code}`,
    errno === undefined || errno === null ? undefined : `errno ${String(errno)}`,
  ].filter((part): part is string => part !== undefined);
  if (parts.length > 0) return parts.join(', ');
  try {
    const json = JSON.stringify(value);
    if (json !== undefined && json !== '{}') return json.length > 300 ? `${json.slice(0, 300)}…` : json;
  } catch {
    // circular: fall through
  }
  return `${value.constructor?.name ?? 'object'} without a message`;
}

/** One line (no newlines) saying what went wrong, whatever was thrown. */
export function describeError(error: unknown, options: DescribeErrorOptions = {}): string {
  let line: string;
  if (error instanceof Error) {
    line = text(error.message) ?? describeObject(error, options);
    // An Error wrapping a file-system failure of the embedded database (e.g. "Aborted()").
    const cause = error.cause;
    if (typeof cause === 'object' && cause !== null && !(cause instanceof Error)) {
      line = `${line}: ${describeObject(cause, options)}`;
    }
  } else if (typeof error === 'object' && error !== null) {
    line = describeObject(error, options);
  } else {
    line = String(error);
  }
  return line.replace(/\s*\n\s*/g, ' ');
}
