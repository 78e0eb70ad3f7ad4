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
      err: pino.stdSerializers.err,
      req: (req: { method?: string; url?: string; id?: string; ip?: string }) => ({
        method: req.method,
        url: req.url === undefined ? undefined : redactUrl(req.url),
        remoteAddress: req.ip,
      }),
    },
  };
  return destination === undefined ? pino(config) : pino(config, destination);
}
