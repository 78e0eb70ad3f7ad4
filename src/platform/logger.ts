/**
 * The one pino logger of a process (Fastify receives it as `loggerInstance`).
 * Secrets never reach a log line: credentials are redacted by path, and access tokens that arrive in
 * a query string (`?access_token=`, WebSocket browsers) are cut from logged URLs.
 */
import { type DestinationStream, type Logger, pino } from 'pino';
import pretty from 'pino-pretty';
import type { LogLevel } from '../config/index.js';

export type { Logger } from 'pino';

const SECRET_FIELDS = [
  'password',
  'currentPassword',
  'newPassword',
  'token',
  'accessToken',
  'refreshToken',
  'connectToken',
  'access_token',
  'refresh_token',
  'secret',
];

/** Redacted paths: request headers plus secret fields at the top level and two levels down. */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["sec-websocket-protocol"]',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers.cookie',
  ...SECRET_FIELDS.flatMap((field) => [field, `*.${field}`, `*.*.${field}`]),
];

const SECRET_QUERY_KEYS = new Set(['access_token', 'refresh_token', 'token']);

/**
 * Whether a raw query parameter names a secret once decoded the way the server reads it
 * (URLSearchParams: percent-decoding, `+` as space): `access%5Ftoken` authenticates a socket
 * exactly like `access_token`, so it must be redacted alike.
 */
function isSecretParameter(pair: string): boolean {
  const [name] = new URLSearchParams(pair).keys();
  return name !== undefined && SECRET_QUERY_KEYS.has(name.trim().toLowerCase());
}

/** Removes token values from a URL before it is logged. */
export function redactUrl(url: string): string {
  const start = url.indexOf('?');
  if (start === -1) return url;
  const query = url
    .slice(start + 1)
    .split('&')
    .map((pair) => {
      if (!isSecretParameter(pair)) return pair;
      const equals = pair.indexOf('=');
      return `${equals === -1 ? pair : pair.slice(0, equals)}=[Redacted]`;
    });
  return `${url.slice(0, start + 1)}${query.join('&')}`;
}

/**
 * pino's error serializer, less the arguments of a Redis command. An ioredis error carries the
 * command it answered (`command: {name, args}`), and every property of an error is written: a
 * refused password wrote `{"name":"hello","args":["3","AUTH","default","<password>"]}` at each
 * reconnect, a failed publish the message it carried. The command's name stays.
 */
function serializeError(error: Error): Record<string, unknown> {
  const serialized = pino.stdSerializers.err(error) as unknown as Record<string, unknown>;
  dropCommandArguments(serialized, 0);
  return serialized;
}

function dropCommandArguments(value: unknown, depth: number): void {
  if (depth > 8 || typeof value !== 'object' || value === null) return;
  const record = value as Record<string, unknown>;
  const command = record.command;
  if (typeof command === 'object' && command !== null && 'args' in command) {
    record.command = { name: (command as { name?: unknown }).name };
  }
  dropCommandArguments(record.cause, depth + 1);
  if (Array.isArray(record.aggregateErrors)) {
    for (const inner of record.aggregateErrors) dropCommandArguments(inner, depth + 1);
  }
}

export interface LoggerOptions {
  readonly level: LogLevel;
  readonly pretty: boolean;
  readonly base?: Record<string, unknown>;
  /** Tests pass a stream to read what was logged. */
  readonly destination?: DestinationStream;
}

export function createLogger(options: LoggerOptions): Logger {
  // pino-pretty as a synchronous stream, not a transport: no worker thread to outlive shutdown.
  const destination =
    options.destination ??
    (options.pretty ? pretty({ sync: true, translateTime: 'SYS:HH:MM:ss.l' }) : undefined);
  const config = {
    level: options.level,
    base: options.base ?? null,
    redact: { paths: REDACTED_PATHS, censor: '[Redacted]' },
    serializers: {
      err: serializeError,
      req: (req: { method?: string; url?: string; id?: string; ip?: string }) => ({
        method: req.method,
        url: req.url === undefined ? undefined : redactUrl(req.url),
        remoteAddress: req.ip,
      }),
    },
  };
  const logger = destination === undefined ? pino(config) : pino(config, destination);
  joinNestedBindings(logger);
  return logger;
}

const { chindingsSym } = pino.symbols;
type ChildFunction = Logger['child'];

/**
 * pino appends a child's bindings to its parent's as text, so `log.child({ component: 'gateway' })
 * .child({ component: 'placement' })` would write `"component"` twice in one JSON line (parsers
 * keep one of them at random, log stores reject the line). Installed on the root, this `child`
 * (inherited by every descendant) joins nested components into one (`gateway.placement`) and lets
 * any other repeated key keep only the child's value. Only a child that repeats a key pays for the
 * rewrite; the per-request children (reqId) do not.
 */
function joinNestedBindings(root: Logger): void {
  const createChild: ChildFunction = root.child;
  const child = function (this: Logger, bindings, options) {
    const parentText = (this as unknown as Record<symbol, string>)[chindingsSym] ?? '';
    const repeats = Object.keys(bindings).some((key) => parentText.includes(`${JSON.stringify(key)}:`));
    if (!repeats) return createChild.call(this, bindings, options);
    const parent = this.bindings();
    const own =
      typeof bindings.component === 'string' && typeof parent.component === 'string'
        ? { ...bindings, component: `${parent.component}.${bindings.component}` }
        : bindings;
    const instance = createChild.call(this, own, options);
    const slot = instance as unknown as Record<symbol, string>;
    // JSON.parse keeps the last of repeated keys: the child's (already serialized and redacted) value.
    const merged = JSON.parse(`{${(slot[chindingsSym] ?? '').slice(1)}}`) as Record<string, unknown>;
    slot[chindingsSym] = `,${JSON.stringify(merged).slice(1, -1)}`;
    return instance;
  } as ChildFunction;
  root.child = child;
}
