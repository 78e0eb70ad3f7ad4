/**
 * Configuration: the only module that reads `process.env` (lint enforces it).
 *
 * Every setting is declared once in `settings` with its parser, default and a one-line doc that
 * names the unit. `loadConfig(env)` parses them all, reports every invalid value on one line
 * (naming the variable) and returns a frozen object that is passed down explicitly.
 * The README's configuration table is generated from `settings` (`npm run config:table`) and a test
 * keeps the two in sync.
 *
 * May import: protocol/ only.
 */
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { trustsEveryClient } from './trust-proxy-ranges.js';

const ROLES = ['all', 'api', 'gateway', 'worker'] as const;
/** Which parts a process runs: `all` (default) runs every part in one process. */
export type Role = (typeof ROLES)[number];

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

const wholeNumber = (min: number, max: number) =>
  z
    .string()
    .trim()
    .regex(/^\d+$/, { error: `must be a whole number between ${min} and ${max}` })
    .transform(Number)
    .pipe(
      z
        .number()
        .min(min, { error: `must be between ${min} and ${max}` })
        .max(max, { error: `must be between ${min} and ${max}` }),
    );

const oneOf = <const T extends readonly [string, ...string[]]>(values: T) =>
  z.enum(values, { error: `must be one of ${values.join(', ')}` });

const urlWithScheme = (schemes: readonly string[]) =>
  z
    .string()
    .trim()
    .refine(
      (value) => {
        try {
          return schemes.includes(new URL(value).protocol);
        } catch {
          return false;
        }
      },
      { error: `must be a URL starting with ${schemes.map((s) => `${s}//`).join(' or ')}` },
    );

/**
 * A base URL that paths are appended to (`${PUBLIC_URL}/reset-password?token=…`): http or https,
 * optionally with a path, never a query, fragment or credentials. Those were accepted and every
 * link was built after them: `https://app.example.com/#/jobs` (the web app's address as a browser
 * shows it) put every mailed token into a fragment the server never sees, `…/?ref=mail` made
 * `?ref=mail/reset-password?token=…`, and `https://user:pass@…` mailed its password to every
 * user (review 31).
 */
const baseUrl = z
  .string()
  .trim()
  .refine(
    (value) => {
      try {
        const url = new URL(value);
        return (
          (url.protocol === 'http:' || url.protocol === 'https:') &&
          url.username === '' &&
          url.password === '' &&
          url.search === '' &&
          url.hash === '' &&
          !/[?#]/.test(value)
        );
      } catch {
        return false;
      }
    },
    { error: 'must be a URL starting with http:// or https://, with no query, fragment or user name' },
  );

const optionalText = (max: number) => z.string().trim().min(1).max(max);

/** `Name <address>` (the name may be quoted) or a bare address; nothing else, one mailbox only. */
const MAILBOX = /^(?:(\s*"[^"\r\n]*"\s*|[^<>",\r\n]*)<([^<>\s]+)>|([^<>\s",]+))$/;
/**
 * The sender of every mail, its From header and its envelope sender. A value without an address
 * (`gigwire`, `gigwire <no-reply>`) was taken and every mail went out from the null sender with an
 * empty From, which mail servers refuse or file as spam: password resets and verifications lost.
 */
const mailbox = z
  .string()
  .trim()
  .max(200)
  .refine(
    (value) => {
      const match = MAILBOX.exec(value);
      const address = match?.[2] ?? match?.[3];
      return address !== undefined && z.email().safeParse(address).success;
    },
    { error: 'must be a sender such as `gigwire <no-reply@example.com>` or no-reply@example.com' },
  );

const ORIGIN_LIST_ERROR = 'must be a comma-separated list of origins such as https://app.example.com';

/**
 * One browser origin, as browsers send it in `Origin` (scheme, host, port; lower case, no default
 * port, no trailing slash), since the CORS allowlist compares exact strings: `https://app.example.com/`
 * or `https://App.example.com` would otherwise never match and silently refuse that app. A path,
 * query or credentials is refused rather than dropped: an origin has none.
 */
const browserOrigin = z.url({ error: ORIGIN_LIST_ERROR }).transform((value, context) => {
  const url = new URL(value);
  if (
    (url.protocol !== 'http:' && url.protocol !== 'https:') ||
    url.pathname !== '/' ||
    url.search !== '' ||
    url.hash !== '' ||
    url.username !== '' ||
    url.password !== ''
  ) {
    context.addIssue({ code: 'custom', message: `${ORIGIN_LIST_ERROR}: scheme, host and port only` });
    return z.NEVER;
  }
  return url.origin;
});

const commaList = z
  .string()
  .transform((value) =>
    value
      .split(',')
      .map((item) => item.trim())
      .filter((item) => item !== ''),
  )
  .pipe(z.array(browserOrigin));

const flag = z.enum(['auto', 'true', 'false'], { error: 'must be auto, true or false' });

/** `whsec_` + base64 of at least 24 bytes (Standard Webhooks), comma-separated, at least one. */
const webhookSecrets = z
  .string()
  .transform((value) =>
    value
      .split(',')
      .map((item) => item.trim())
      .filter((item) => item !== ''),
  )
  .pipe(
    z
      .array(
        z
          .string()
          .refine(
            (item) =>
              /^whsec_[A-Za-z0-9+/]+={0,2}$/.test(item) && Buffer.from(item.slice(6), 'base64').length >= 24,
            {
              error: 'must be secrets of the form whsec_<base64 of at least 24 bytes>, comma-separated',
            },
          ),
      )
      .min(1, { error: 'must name at least one secret' }),
  );

/**
 * Used when PAYMENTS_WEBHOOK_SECRETS is unset, so development works out of the box; it is public
 * (it is in the source), so the node warns at start while it is in use.
 */
export const DEVELOPMENT_WEBHOOK_SECRET = `whsec_${Buffer.from('gigwire development webhook secret, never in production').toString('base64')}`;

const PROXY_ADDRESS_NAMES = new Set(['loopback', 'linklocal', 'uniquelocal']);
const isProxyEntry = (entry: string) => {
  if (PROXY_ADDRESS_NAMES.has(entry)) return true;
  const [address = '', bits, extra] = entry.split('/');
  const family = isIP(address);
  if (family === 0 || extra !== undefined) return false;
  if (bits === undefined) return true;
  return /^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128);
};
/**
 * `false`/`0`, a hop count, or proxy addresses. `true` (trust every hop) is refused: then the
 * leftmost X-Forwarded-For entry, which the client writes, would be taken as its address.
 */
const trustProxy = z
  .string()
  .trim()
  .transform((value, ctx): number | string[] => {
    const lower = value.toLowerCase();
    if (lower === 'false') return 0;
    if (/^\d{1,2}$/.test(value)) return Number(value);
    const entries = value
      .split(',')
      .map((item) => item.trim())
      .filter((item) => item !== '');
    const valid = lower !== 'true' && entries.length > 0 && entries.every(isProxyEntry);
    // A range of every address (`0.0.0.0/0`, `::/0`) trusts every hop, as `true` does; so do
    // `::ffff:0.0.0.0/96` (every IPv4 client) and ranges that together hold a whole address family.
    const everyAddress = entries.find((entry) => /\/0+$/.test(entry) && isProxyEntry(entry));
    const everyClient = valid && everyAddress === undefined ? trustsEveryClient(entries) : undefined;
    if (valid && everyAddress === undefined && everyClient === undefined) return entries;
    const instead = 'give the number of proxies in front, e.g. 1, or their addresses';
    ctx.addIssue({
      code: 'custom',
      message:
        everyClient !== undefined
          ? `must not name ${everyClient.entries.join(', ')} (${everyClient.entries.length > 1 ? 'together they hold' : 'it holds'} every ${everyClient.family} address, so every hop is trusted and any client could choose its IP); ${instead}`
          : lower === 'true' || everyAddress !== undefined
            ? `must not ${everyAddress === undefined ? 'be true' : `name ${everyAddress}`} (it trusts every hop, so any client could choose its IP); ${instead}`
            : 'must be false, a number of proxies (0-99) or comma-separated proxy addresses/CIDRs',
    });
    return z.NEVER;
  });

/**
 * An ISO 4217 code this runtime knows, of a currency with two decimal places. Amounts are shown as
 * minor units divided by 100 everywhere (mail receipts, the web app): JPY (0 decimals) or KWD (3)
 * would show every amount 100 or 10 times off.
 */
const currencyWithCents = z
  .string()
  .trim()
  .superRefine((code, ctx) => {
    if (!/^[A-Z]{3}$/.test(code) || !Intl.supportedValuesOf('currency').includes(code)) {
      ctx.addIssue({ code: 'custom', message: 'must be an ISO 4217 currency code such as USD or EUR' });
      return;
    }
    const digits = new Intl.NumberFormat('en', { style: 'currency', currency: code }).resolvedOptions()
      .maximumFractionDigits;
    if (digits !== 2) {
      ctx.addIssue({
        code: 'custom',
        message: 'must be a currency with two decimal places such as USD or EUR',
      });
    }
  });

/**
 * Whether `d` is an Ed25519 private key and `x` its public key (both base64url). A key of the right
 * shape with a truncated `d`, or the `x` of another key (two JWKs pasted together), passed the shape
 * check and stopped every start later with `start failed: Invalid keyData`, naming no setting and
 * exiting 1 as if a dependency had failed (review 31).
 */
function isKeyPair(d: string, x: string): boolean {
  try {
    const key = createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', d, x }, format: 'jwk' });
    return createPublicKey(key).export({ format: 'jwk' }).x === x;
  } catch {
    return false;
  }
}

/**
 * A private Ed25519 JWK. Checked here so a malformed key stops the start with a message that does
 * not quote it (JSON.parse errors quote the text they fail on).
 */
const ed25519PrivateJwk = z
  .string()
  .trim()
  .refine(
    (value) => {
      try {
        const jwk = JSON.parse(value) as Record<string, unknown> | null;
        return (
          typeof jwk === 'object' &&
          jwk !== null &&
          jwk.kty === 'OKP' &&
          jwk.crv === 'Ed25519' &&
          typeof jwk.d === 'string' &&
          typeof jwk.x === 'string' &&
          isKeyPair(jwk.d, jwk.x)
        );
      } catch {
        return false;
      }
    },
    { error: 'must be an Ed25519 private JWK as JSON ({"kty":"OKP","crv":"Ed25519","d":…,"x":…})' },
  );

/**
 * How a rejected value may be quoted in the one-line error (which lands in terminals, CI logs and
 * log collectors): `secret` values are never shown; `url` values are shown without the password of
 * their user info or the values of query parameters that look like credentials.
 */
type Sensitivity = 'secret' | 'url';

interface Setting<S extends z.ZodType> {
  readonly schema: S;
  /** Shown in the README table; `undefined` means "unset unless given". */
  readonly default?: string;
  readonly doc: string;
  readonly sensitive?: Sensitivity;
}
const setting = <S extends z.ZodType>(
  schema: S,
  doc: string,
  defaultValue?: string,
  sensitive?: Sensitivity,
): Setting<S> => ({
  schema,
  doc,
  ...(defaultValue === undefined ? {} : { default: defaultValue }),
  ...(sensitive === undefined ? {} : { sensitive }),
});

const CREDENTIAL_QUERY_KEY = /pass|secret|token|key|auth|credential/i;

/**
 * A URL as it may be printed: `scheme://user:***@host/…`. Works on text that is not a valid URL
 * too (that is when it gets printed): everything up to the last `@` counts as user info, and a
 * query parameter whose name looks like a credential loses its value.
 */
export function redactUrlCredentials(value: string): string {
  let shown = value;
  const at = shown.lastIndexOf('@');
  if (at !== -1) {
    const scheme = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.exec(shown)?.[0] ?? '';
    const userInfo = shown.slice(scheme.length, at);
    const colon = userInfo.indexOf(':');
    shown = `${scheme}${colon === -1 ? '***' : `${userInfo.slice(0, colon)}:***`}${shown.slice(at)}`;
  }
  return shown.replace(/([?&;])([^=&;#]*)=([^&;#]*)/g, (pair, separator: string, key: string) =>
    CREDENTIAL_QUERY_KEY.test(key) ? `${separator}${key}=***` : pair,
  );
}

/** The rejected value as the error line may show it. */
function shownValue(raw: string | undefined, sensitive: Sensitivity | undefined): string {
  if (sensitive === 'secret') return 'value not shown: it is a secret';
  const value = sensitive === 'url' && raw !== undefined ? redactUrlCredentials(raw) : raw;
  return `got ${JSON.stringify(value)}`;
}

/** Every environment variable gigwire reads. Order here is the order of the README table. */
export const settings = {
  ROLE: setting(
    oneOf(ROLES),
    'What this process runs: `all`, `api` (REST), `gateway` (WebSocket edge), `worker` (tasks).',
    'all',
  ),
  HOST: setting(
    z.string().trim().min(1),
    'Interface the HTTP server binds to (`0.0.0.0` in containers).',
    '127.0.0.1',
  ),
  PORT: setting(wholeNumber(0, 65535), 'HTTP port for REST, health and metrics (0 = any free port).', '3000'),
  WS_PORT: setting(
    wholeNumber(0, 65535),
    'Port of the uWebSockets.js WebSocket listener (/ws); the same protocol is also served at /ws on PORT.',
    '3001',
  ),
  GATEWAY_PROCESSES: setting(
    wholeNumber(1, 64),
    'Processes `npm start` runs on this machine, supervised (restarted with backoff) and all sharing PORT and WS_PORT (SO_REUSEPORT); each is named `<NODE_ID>-g<i>`. Above 1 it needs DATABASE_URL and REDIS_URL and ROLE `all` or `gateway`.',
    '1',
  ),
  WS_MAX_MESSAGES_PER_SECOND: setting(
    wholeNumber(1, 100_000),
    'Sustained inbound frames per second per connection.',
    '50',
  ),
  WS_MAX_BURST: setting(
    wholeNumber(1, 100_000),
    'Inbound frames a connection may send at once above the sustained rate.',
    '100',
  ),
  WS_MAX_BUFFERED_BYTES: setting(
    wholeNumber(65_536, 1_073_741_824),
    'Bytes a connection may have waiting to be sent; a slower reader is closed 1013.',
    '1048576',
  ),
  WS_IDLE_TIMEOUT_S: setting(
    wholeNumber(8, 960),
    'Seconds of silence after which a socket is closed; the server pings at about half of it.',
    '60',
  ),
  WS_MAX_SOCKETS_PER_USER: setting(
    wholeNumber(1, 100_000),
    'Open WebSockets one user may have on one node; one more replaces a socket of that user that did not answer a ping (4100), else is closed right after opening: 4101 (retry) while the others are pinged, 1008 once they all answered.',
    '20',
  ),
  WS_UPGRADES_PER_IP_PER_SECOND: setting(
    wholeNumber(1, 1_000_000),
    'Sustained WebSocket upgrade requests per client IP (an IPv6 client as its /64) per second, per node; more get HTTP 429 before any auth work.',
    '20',
  ),
  WS_FD_RESERVE: setting(
    wholeNumber(0, 1_000_000),
    'File descriptors kept free (at most a quarter of the process limit) for PostgreSQL, Redis, REST and files: when fewer are left, WS_PORT stops accepting (open sockets stay) until twice as many are free; `gigwire_ws_listener_paused` shows it. 0 = never (Linux only).',
    '256',
  ),
  WS_MAX_CONNECTIONS_PER_IP: setting(
    wholeNumber(1, 1_000_000),
    'Open WebSockets and upgrades in progress per client IP (an IPv6 client as its /64, found by the TRUST_PROXY rule), per node, on WS_PORT and /ws on PORT; one more upgrade is answered HTTP 429 before any auth work. Mobile carriers put many users behind one IPv4 address (CGNAT): keep it well above the sockets one such address carries.',
    '1000',
  ),
  WS_UPGRADE_BURST_PER_IP: setting(
    wholeNumber(1, 1_000_000),
    'WebSocket upgrade requests one client IP (an IPv6 /64) may make at once above the sustained rate.',
    '40',
  ),
  ROOMS_MAX_PER_USER: setting(
    wholeNumber(1, 1_000_000),
    'Rooms one user may be a member of; creating or being added to one more answers 409 ROOM_LIMIT_REACHED.',
    '1000',
  ),
  CONTACTS_MAX_PER_USER: setting(
    wholeNumber(1, 1_000_000),
    'Contacts one user may add; adding one more answers 409 CONFLICT (GET /v1/me/contacts returns them all in one page).',
    '1000',
  ),
  PRESENCE_LEASE_MS: setting(
    wholeNumber(1000, 600_000),
    'Lease of a node in the presence registry; users of a node that died go offline within it plus 3 s.',
    '10000',
  ),
  DATA_DIR: setting(
    z.string().trim().min(1),
    'Directory for the embedded database and the managed Redis (used only when their URLs are unset).',
    './data',
  ),
  DATABASE_URL: setting(
    urlWithScheme(['postgres:', 'postgresql:']),
    'PostgreSQL URL. Unset: embedded PGlite stored under `DATA_DIR/pglite`.',
    undefined,
    'url',
  ),
  DB_POOL_MAX: setting(wholeNumber(1, 1000), 'Most connections in the PostgreSQL pool, per process.', '10'),
  DATABASE_QUERY_TIMEOUT_MS: setting(
    wholeNumber(1000, 3_600_000),
    'Milliseconds a PostgreSQL statement of a running node may wait for its answer; then it fails UNAVAILABLE (503) and its connection is dropped, so a silently dead network path stalls requests for this long, not ~15 min. PostgreSQL itself also ends a statement running 1 s longer (`statement_timeout`) and a transaction idle longer between statements (`idle_in_transaction_session_timeout`: the locks of a frozen node). Migrations, the scheduled ledger audit and one-shot commands are not bounded.',
    '30000',
  ),
  REDIS_URL: setting(
    urlWithScheme(['redis:', 'rediss:']),
    'Redis URL. Unset: a supervised `redis-server` child with data under `DATA_DIR/redis`.',
    undefined,
    'url',
  ),
  REDIS_PREFIX: setting(
    z
      .string()
      .trim()
      .regex(/^[A-Za-z0-9_.-]{1,32}$/, { error: 'must be 1-32 characters of A-Z a-z 0-9 _ . -' }),
    'Prefix of every Redis key and queue, so several deployments can share one Redis.',
    'gw',
  ),
  REDIS_COMMAND_TIMEOUT_MS: setting(
    wholeNumber(50, 60_000),
    'Milliseconds a Redis command on a request path (publish, subscribe, counters, presence) may wait for an answer; a stalled Redis fails it instead of hanging the request.',
    '2000',
  ),
  STARTUP_WAIT_S: setting(
    wholeNumber(0, 3600),
    'Seconds a starting node (and `npm run migrate`) waits for a PostgreSQL (DATABASE_URL) or Redis (REDIS_URL) that is not up yet: a refused connection, a host name not resolving yet, PostgreSQL answering "the database system is starting up" or Redis answering LOADING is tried again, with one line on stderr per wait, until this runs out; then the start fails. A wrong password, a missing database or any other error fails at once. 0 = no wait.',
    '30',
  ),
  BUS_FANOUT_QUEUE_MAX: setting(
    wholeNumber(1, 1_000_000),
    'Room fan-out publishes (messages, typing, read marks) that may wait for a slow Redis; beyond it the oldest is dropped (counted) and receivers fill the gap from history.',
    '10000',
  ),
  INSTALL_SYSTEM_PACKAGES: setting(
    flag,
    'Install a missing `redis-server` with apt-get: `auto` = only when running as root.',
    'auto',
  ),
  NODE_ID: setting(
    z
      .string()
      .trim()
      .regex(/^[A-Za-z0-9_.-]{1,64}$/, { error: 'must be 1-64 characters of A-Z a-z 0-9 _ . -' }),
    'Name of this process in logs, metrics and health (default: `<hostname>-<pid>`).',
  ),
  PUBLIC_URL: setting(
    baseUrl,
    'Base URL users reach gigwire at (http or https, optionally a path; no query, fragment or user name); links in emails point here (default: `http://localhost:<PORT>`).',
    undefined,
    'url',
  ),
  CORS_ORIGINS: setting(
    commaList,
    'Comma-separated browser origins allowed to call the API (CORS); empty = none.',
    '',
  ),
  TRUST_PROXY: setting(
    trustProxy,
    'Which X-Forwarded-For hops to trust for the client IP (per-IP limits, login throttling): `false`, the number of proxies in front (`1` behind one nginx), or their addresses/CIDRs, comma-separated. `true` is refused, and so are ranges that together hold every IPv4 or every IPv6 address (`0.0.0.0/0`, `::/0`, `::ffff:0.0.0.0/96`, `0.0.0.0/1,128.0.0.0/1`): they would let any client choose its IP.',
    'false',
  ),
  RATE_LIMIT_PER_MINUTE: setting(
    wholeNumber(1, 1_000_000),
    'REST requests per client IP per minute, counted in each process that serves REST (behind a load balancer, N api processes allow up to N times as many).',
    '600',
  ),
  HTTP_REQUEST_TIMEOUT_MS: setting(
    wholeNumber(500, 600_000),
    'Milliseconds a REST request (headers and body) has to arrive from its first byte, and a new connection to send its first request; a later one is answered 408 and its connection closed. Idle keep-alive connections close after 72 s.',
    '30000',
  ),
  HTTP_MAX_CONNECTIONS_PER_IP: setting(
    wholeNumber(1, 1_000_000),
    'Open connections to PORT per client IP (an IPv6 client as its /64), per process; one more is closed at once. Peers named in TRUST_PROXY (or any peer with a hop count) are the proxy and not capped.',
    '256',
  ),
  HTTP_MAX_CONNECTIONS: setting(
    wholeNumber(1, 1_000_000),
    'Open connections to PORT per process; one more is closed at once (keeps file descriptors for WS_PORT, PostgreSQL and Redis).',
    '10000',
  ),
  JWT_ISSUER: setting(optionalText(200), 'The `iss` claim of access tokens.', 'gigwire'),
  JWT_AUDIENCE: setting(optionalText(200), 'The `aud` claim of access tokens.', 'gigwire'),
  JWT_PRIVATE_KEY: setting(
    ed25519PrivateJwk,
    'Ed25519 signing key as a private JWK (JSON). Unset: keys are generated and kept in the database.',
    undefined,
    'secret',
  ),
  ACCESS_TOKEN_TTL_S: setting(wholeNumber(30, 86_400), 'Seconds an access token is valid.', '900'),
  REFRESH_IDLE_TTL_S: setting(
    wholeNumber(60, 31_536_000),
    'Seconds a refresh token stays valid unused (sliding).',
    '604800',
  ),
  REFRESH_ABSOLUTE_TTL_S: setting(
    wholeNumber(60, 31_536_000),
    'Seconds after login when a session ends whatever its use.',
    '2592000',
  ),
  REFRESH_REUSE_GRACE_S: setting(
    wholeNumber(0, 60),
    'Seconds a spent refresh token still returns the same new pair (racing tabs); later use revokes the session.',
    '10',
  ),
  LOGIN_MAX_FAILURES: setting(
    wholeNumber(1, 1000),
    "Failed logins per login name (an account's username and its email each) from one client IP (an IPv6 /64) within LOGIN_WINDOW_S before that IP gets 429 for that name; other IPs, the owner included, are not affected.",
    '10',
  ),
  LOGIN_IP_MAX_FAILURES: setting(
    wholeNumber(1, 100_000),
    'Failed logins per client IP (an IPv6 /64), over all accounts, within LOGIN_WINDOW_S before that IP gets 429.',
    '100',
  ),
  LOGIN_WINDOW_S: setting(wholeNumber(1, 86_400), 'Seconds of the failed-login windows.', '900'),
  PASSWORD_HASHES_PER_IP: setting(
    wholeNumber(1, 1_000_000),
    'Places of the per-process password-hashing line (2 running, 64 waiting) one client IP (an IPv6 /64) may hold at once; its register, login, password change or reset beyond them is answered 429 at once, so one source cannot deny everyone sign-ins.',
    '8',
  ),
  ADMIN_EMAIL: setting(
    z.email({ error: 'must be an email address' }),
    'With ADMIN_PASSWORD: ensures this admin account exists at start.',
  ),
  ADMIN_PASSWORD: setting(
    z
      .string()
      .min(10, { error: 'must be 10 to 128 characters', abort: true })
      .max(128, { error: 'must be 10 to 128 characters' })
      // Counted as hashed, in NFC (as NewPassword): five decomposed accented letters are 5 characters.
      .refine((password) => [...password.normalize('NFC')].length >= 10, {
        error: 'must be 10 to 128 characters',
      }),
    'Password of the ADMIN_EMAIL account when it is created.',
    undefined,
    'secret',
  ),
  SMTP_URL: setting(
    urlWithScheme(['smtp:', 'smtps:']),
    'SMTP server for outgoing mail, e.g. `smtp://user:pass@mail:587`. Unset: mail goes to the outbox (GET /v1/admin/emails). An `smtp:` URL must upgrade with STARTTLS, or nothing is sent (the password and the mails, which carry reset tokens, never go in clear), unless its host is loopback or the URL sets `requireTLS`, `ignoreTLS` or `opportunisticTLS` itself: `?requireTLS=false` for a catcher without TLS such as mailpit. `smtps:` is TLS from the first byte.',
    undefined,
    'url',
  ),
  MAIL_FROM: setting(
    mailbox,
    'Sender of outgoing mail: `Name <address>` or an address.',
    'gigwire <no-reply@gigwire.local>',
  ),
  OUTBOX_POLL_MS: setting(
    wholeNumber(10, 60_000),
    'Milliseconds between polls of the event outbox by the relay.',
    '250',
  ),
  RETENTION_INTERVAL_S: setting(
    wholeNumber(0, 86_400),
    'Seconds between runs of the retention job in worker processes (deletes published outbox events after 7 days, idempotency keys after 48 h, expired email tokens, settled mail after 30 days, refresh tokens a day after expiry and their sealed successor pairs an hour after use, sessions 90 days after they ended except the newest of each user); 0 turns it off.',
    '3600',
  ),
  TASK_LOCK_MS: setting(
    wholeNumber(1000, 600_000),
    'Milliseconds a worker holds a task before it counts as stalled and is retried elsewhere.',
    '30000',
  ),
  CURRENCY: setting(
    currencyWithCents,
    'Currency (ISO 4217) of every wallet, escrow and fee account; amounts are its minor units. It must have two decimal places (USD, EUR, GBP; not JPY or KWD): amounts are shown as hundredths everywhere.',
    'USD',
  ),
  PLATFORM_FEE_BPS: setting(
    wholeNumber(0, 10_000),
    'Platform fee on escrow payouts to workers, in basis points (1000 = 10 %).',
    '1000',
  ),
  PAYMENTS_PROVIDER: setting(
    oneOf(['sandbox']),
    'Payment provider for top-ups and withdrawals: `sandbox` (deterministic test cards and bank accounts, webhooks to PUBLIC_URL or this node).',
    'sandbox',
  ),
  PAYMENTS_WEBHOOK_SECRETS: setting(
    webhookSecrets,
    'Comma-separated Standard Webhooks secrets (`whsec_` + base64 of ≥ 24 bytes) that may sign provider webhooks, newest first (two during a rotation; the sandbox signs with the first). Unset: a fixed development secret, with a warning at start.',
    undefined,
    'secret',
  ),
  PAYMENTS_WEBHOOK_URL: setting(
    baseUrl,
    'Base URL the sandbox provider posts its signed webhooks to (`…/v1/payments/webhook`; no query, fragment or user name), when PUBLIC_URL is not reachable from the worker (compose: `http://api:3000`). Default: PUBLIC_URL, else this node.',
    undefined,
    'url',
  ),
  NODE_ENV: setting(
    // `Production` or `prod` skipped the production checks below while the operator meant them
    // (review 31): they count as production (case-insensitive), so a public secret is never taken.
    z
      .string()
      .trim()
      .min(1)
      .transform((value) => (/^prod(uction)?$/i.test(value) ? 'production' : value)),
    'Only `production` matters here (also written `Production` or `prod`; the Docker image sets it): it makes PAYMENTS_WEBHOOK_SECRETS required on processes that take webhooks (roles all and api) or send them (worker), since the development secret is public, and PUBLIC_URL on processes that send mail (all, worker).',
  ),
  PAYMENTS_PROVIDER_TIMEOUT_MS: setting(
    wholeNumber(100, 120_000),
    'Milliseconds a call to the payment provider may take before it counts as failed (and is retried); 5 failures in a row open the circuit breaker for 30 s.',
    '10000',
  ),
  SANDBOX_WEBHOOK_DELAY_MS: setting(
    wholeNumber(0, 86_400_000),
    'Sandbox provider: how late the webhook of card 4000000000000077 (and the failure of a payout to an account ending 0000) is sent.',
    '5000',
  ),
  SANDBOX_LATENCY_MS: setting(
    wholeNumber(0, 600_000),
    'Sandbox provider: milliseconds each call takes, half before the provider acts and half after (its answer in transit); tests use it to stop a worker mid-call.',
    '0',
  ),
  TRANSFERS_PER_MINUTE: setting(
    wholeNumber(1, 100_000),
    'Wallet transfers one user may send per minute, across nodes (each notifies its receiver; beyond it 429 RATE_LIMITED with Retry-After).',
    '30',
  ),
  PAYMENTS_RECONCILE_AFTER_S: setting(
    wholeNumber(0, 86_400),
    "Seconds an accepted payment may wait for its outcome webhook before worker processes ask the provider to send it again (a lost webhook would leave a top-up uncredited, a withdrawal's money reserved), and a recorded event or an unsubmitted payment may wait before they queue its task again; 0 turns it off.",
    '600',
  ),
  PAYMENTS_PAYOUT_RETURN_WINDOW_S: setting(
    wholeNumber(0, 7_776_000),
    'Seconds after a withdrawal was paid during which its bank may still return it (`payout.failed` after `payout.paid`, the money credited back to the wallet): worker processes ask the provider again about paid withdrawals this young, first after PAYMENTS_RECONCILE_AFTER_S, then at doubling ages (asked at age a, not again before 2a) and once more just before the window closes, in case that webhook was lost. Banks return a credit transfer they cannot book within a few banking days; a week spans five of them across a weekend. 0 turns it off.',
    '604800',
  ),
  LEDGER_AUDIT_INTERVAL_S: setting(
    wholeNumber(0, 86_400),
    'Seconds between ledger audits in worker processes (every invariant of the README "Payments" section; findings are logged and counted in gigwire_ledger_audit_failures_total); 0 turns the schedule off.',
    '60',
  ),
  CONTRACT_AUTO_APPROVE_S: setting(
    wholeNumber(1, 31_536_000),
    "Seconds after a delivery before the contract is approved on the hirer's behalf (escrow released) if the hirer neither approves, asks for changes nor disputes.",
    '1209600',
  ),
  REVIEW_WINDOW_S: setting(
    wholeNumber(1, 31_536_000),
    'Seconds after a contract ends during which each party may review the other; when it closes, a lone review is published.',
    '1209600',
  ),
  NOTIFY_EMAIL_DIGEST_S: setting(
    wholeNumber(1, 86_400),
    "Seconds a user's notification emails are batched: the first emailable notification opens a digest sent this long after it, holding every one of them still unread then (none if all were read); so at most one notification email per this period per user.",
    '300',
  ),
  UNREAD_EMAIL_AFTER_S: setting(
    wholeNumber(1, 86_400),
    'Seconds after a room message is stored for an offline member before that member gets one `messages.unread` notification for the room, if the room is still unread then.',
    '600',
  ),
  LOG_LEVEL: setting(oneOf(LOG_LEVELS), 'Least severe log level written.', 'info'),
  LOG_PRETTY: setting(flag, 'Human-readable logs; `auto` = when stdout is a terminal.', 'auto'),
  READY_CHECK_TIMEOUT_MS: setting(
    wholeNumber(50, 60_000),
    'Milliseconds each dependency check of `/health/ready` may take before it counts as failed.',
    '1000',
  ),
  SHUTDOWN_TIMEOUT_MS: setting(
    wholeNumber(100, 600_000),
    'Milliseconds a graceful shutdown may take before the process exits with code 1.',
    '9000',
  ),
} as const;

export type SettingName = keyof typeof settings;

export interface Config {
  readonly role: Role;
  /** Processes `npm start` supervises (1: it is the node itself). */
  readonly gatewayProcesses: number;
  readonly host: string;
  readonly port: number;
  readonly ws: {
    readonly port: number;
    readonly maxFrameBytes: number;
    readonly maxMessagesPerSecond: number;
    readonly maxBurst: number;
    readonly maxBufferedBytes: number;
    readonly idleTimeoutS: number;
    /** Open sockets per user per node. */
    readonly maxSocketsPerUser: number;
    /** Token bucket of upgrade requests per client IP (IPv6: per /64) per node: refill per second, and capacity. */
    readonly upgradesPerIpPerSecond: number;
    readonly upgradeBurstPerIp: number;
    /** Open sockets and upgrades in progress per client IP (IPv6: per /64) per node. */
    readonly maxConnectionsPerIp: number;
    /** WS_FD_RESERVE: below this many free descriptors WS_PORT stops accepting (gateway/fd-guard.ts). */
    readonly fdReserve: number;
  };
  /** Room memberships per user. */
  readonly roomsMaxPerUser: number;
  /** Contacts one user may add (CONTACTS_MAX_PER_USER). */
  readonly contactsMaxPerUser: number;
  readonly presenceLeaseMs: number;
  /** Absolute path. */
  readonly dataDir: string;
  /** `undefined` selects embedded PGlite under `dataDir`. */
  readonly databaseUrl: string | undefined;
  readonly dbPoolMax: number;
  readonly databaseQueryTimeoutMs: number;
  /** `undefined` selects a managed redis-server under `dataDir`. */
  readonly redisUrl: string | undefined;
  readonly redisPrefix: string;
  /** Timeout of Redis commands on request paths (ms). */
  readonly redisCommandTimeoutMs: number;
  /** How long a start waits for a PostgreSQL or Redis that is not up yet (ms, STARTUP_WAIT_S); 0 = not at all. */
  readonly startupWaitMs: number;
  /** Room fan-out publishes that may wait for the bus. */
  readonly busFanOutQueueMax: number;
  readonly installSystemPackages: boolean;
  readonly nodeId: string;
  readonly logLevel: LogLevel;
  readonly logPretty: boolean;
  readonly readyCheckTimeoutMs: number;
  readonly shutdownTimeoutMs: number;
  /** Links in emails start here. */
  readonly publicUrl: string;
  readonly corsOrigins: readonly string[];
  /**
   * Fastify's `trustProxy`: 0 = the socket's peer is the client; n = trust the last n
   * X-Forwarded-For hops; a list = trust hops from these addresses/CIDRs.
   */
  readonly trustProxy: number | readonly string[];
  readonly rateLimitPerMinute: number;
  /** The REST listener's bounds on connections (HTTP_REQUEST_TIMEOUT_MS, HTTP_MAX_CONNECTIONS…). */
  readonly httpEdge: {
    readonly requestTimeoutMs: number;
    readonly maxConnectionsPerIp: number;
    readonly maxConnections: number;
  };
  readonly jwt: {
    readonly issuer: string;
    readonly audience: string;
    /** Private JWK JSON from the environment; undefined = keys in the database. */
    readonly privateKey: string | undefined;
    readonly accessTtlS: number;
  };
  readonly refresh: {
    readonly idleTtlS: number;
    readonly absoluteTtlS: number;
    readonly reuseGraceS: number;
  };
  readonly login: {
    readonly maxFailures: number;
    readonly ipMaxFailures: number;
    readonly windowS: number;
    /** Places of the password-hashing line one client network may hold (passwords.ts). */
    readonly passwordHashesPerIp: number;
  };
  /** Ensured at start when both are set. */
  readonly admin: { readonly email: string; readonly password: string } | undefined;
  readonly mail: { readonly smtpUrl: string | undefined; readonly from: string };
  readonly outboxPollMs: number;
  /** 0: no retention job. */
  readonly retentionIntervalMs: number;
  readonly taskLockMs: number;
  readonly payments: {
    readonly currency: string;
    readonly platformFeeBps: number;
    readonly provider: 'sandbox';
    /** Newest first; the sandbox signs with the first. */
    readonly webhookSecrets: readonly string[];
    /** True when PAYMENTS_WEBHOOK_SECRETS is unset and the public development secret is used. */
    readonly developmentWebhookSecret: boolean;
    /** 0: no reconciliation of payments whose outcome never arrived. */
    readonly reconcileAfterMs: number;
    /** PAYMENTS_PAYOUT_RETURN_WINDOW_S in ms; 0: paid withdrawals are never asked about again. */
    readonly payoutReturnWindowMs: number;
    readonly transfersPerMinute: number;
    /**
     * Where the sandbox sends webhooks: PAYMENTS_WEBHOOK_URL when set, else PUBLIC_URL; both unset =
     * this node's own address.
     */
    readonly webhookBaseUrl: string | undefined;
    readonly providerTimeoutMs: number;
    readonly sandboxWebhookDelayMs: number;
    readonly sandboxLatencyMs: number;
    /** 0 = no scheduled audit. */
    readonly auditIntervalMs: number;
  };
  readonly marketplace: {
    readonly autoApproveMs: number;
    readonly reviewWindowMs: number;
  };
  readonly notifications: {
    /** NOTIFY_EMAIL_DIGEST_S in ms. */
    readonly digestMs: number;
    /** UNREAD_EMAIL_AFTER_S in ms. */
    readonly unreadAfterMs: number;
  };
  /** The system PATH, where system programs such as redis-server are looked up. */
  readonly searchPath: string;
}

/** Thrown by `loadConfig`; `message` is one line naming every invalid variable. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

type Parsed = { [K in SettingName]: z.output<(typeof settings)[K]['schema']> | undefined };

export interface LoadConfigContext {
  /** Resolves a relative DATA_DIR. */
  readonly cwd: string;
  readonly isRoot: boolean;
  readonly stdoutIsTty: boolean;
  readonly pid: number;
  /**
   * `server` (default): a process that serves or works; `command`: a one-shot (migrate,
   * admin:create, keys:rotate, ledger:audit), which sends no mail and takes no webhooks, so the
   * production requirements for those do not apply.
   */
  readonly purpose?: 'server' | 'command';
}

/**
 * Parses the environment. Empty strings count as unset, so `PORT= npm start` uses the default.
 * @throws ConfigError with one line such as `PORT must be a whole number between 0 and 65535 (got "abc")`;
 *   the value of a secret setting is never quoted, nor the password of a URL.
 */
export function loadConfig(
  env: Readonly<Record<string, string | undefined>>,
  context: LoadConfigContext,
): Config {
  const problems: string[] = [];
  const parsed: Partial<Record<SettingName, unknown>> = {};
  /** Settings given a value that was refused (already reported: rules about presence skip them). */
  const rejected = new Set<SettingName>();
  for (const [name, spec] of Object.entries(settings) as [SettingName, Setting<z.ZodType>][]) {
    const raw = env[name];
    const value = raw === undefined || raw.trim() === '' ? spec.default : raw;
    if (value === undefined) continue;
    const result = spec.schema.safeParse(value);
    if (result.success) parsed[name] = result.data;
    else {
      rejected.add(name);
      problems.push(
        `${name} ${result.error.issues[0]?.message ?? 'is invalid'} (${shownValue(raw, spec.sensitive)})`,
      );
    }
  }
  const given = (name: SettingName) => parsed[name] !== undefined || rejected.has(name);
  if (given('ADMIN_EMAIL') !== given('ADMIN_PASSWORD')) {
    problems.push('ADMIN_EMAIL and ADMIN_PASSWORD must be set together');
  }
  if (typeof parsed.GATEWAY_PROCESSES === 'number' && parsed.GATEWAY_PROCESSES > 1) {
    // The processes share one database and one Redis: PGlite and the managed redis-server are
    // owned by one process (DATA_DIR lock), and api/worker processes have no WebSocket port to share.
    if (!given('DATABASE_URL') || !given('REDIS_URL'))
      problems.push('GATEWAY_PROCESSES above 1 needs DATABASE_URL and REDIS_URL');
    if (parsed.ROLE !== 'all' && parsed.ROLE !== 'gateway')
      problems.push('GATEWAY_PROCESSES above 1 needs ROLE all or gateway');
  }
  if (
    (parsed.ROLE === 'all' || parsed.ROLE === 'gateway') &&
    typeof parsed.PORT === 'number' &&
    parsed.PORT !== 0 &&
    parsed.PORT === parsed.WS_PORT
  ) {
    // Two listeners, one port: the uWebSockets.js one would fail after the whole start-up. /ws is
    // served on PORT as well, but WS_PORT is the native listener's own port.
    problems.push(
      `WS_PORT must differ from PORT (both ${parsed.PORT}): the WebSocket listener needs a port of its own`,
    );
  }
  const productionServer = parsed.NODE_ENV === 'production' && context.purpose !== 'command';
  if (productionServer && !given('PAYMENTS_WEBHOOK_SECRETS') && parsed.ROLE !== 'gateway') {
    // Anyone could sign a charge.succeeded for their own top-up with the public development secret.
    problems.push(
      'PAYMENTS_WEBHOOK_SECRETS must be set when NODE_ENV=production (the development secret is public; make one with: echo whsec_$(openssl rand -base64 32))',
    );
  }
  if (productionServer && !given('PUBLIC_URL') && (parsed.ROLE === 'all' || parsed.ROLE === 'worker')) {
    // Mailed links (verify, reset, notifications) would point at http://localhost:<PORT>.
    problems.push('PUBLIC_URL must be set when NODE_ENV=production (links in emails are built from it)');
  }
  if (problems.length > 0) throw new ConfigError(`invalid configuration: ${problems.join('; ')}`);

  const p = parsed as Parsed;
  const withDefault = <K extends SettingName>(name: K): NonNullable<Parsed[K]> => {
    const value = p[name];
    if (value === undefined || value === null) throw new ConfigError(`${name} has no default`);
    return value;
  };
  const resolveFlag = (value: 'auto' | 'true' | 'false', auto: boolean) =>
    value === 'auto' ? auto : value === 'true';
  const dataDir = withDefault('DATA_DIR');
  return deepFreeze({
    role: withDefault('ROLE'),
    gatewayProcesses: withDefault('GATEWAY_PROCESSES'),
    host: withDefault('HOST'),
    port: withDefault('PORT'),
    ws: {
      port: withDefault('WS_PORT'),
      // Fixed by the protocol (PROTOCOL.md), not a setting: clients size their frames by it.
      maxFrameBytes: 64 * 1024,
      maxMessagesPerSecond: withDefault('WS_MAX_MESSAGES_PER_SECOND'),
      maxBurst: withDefault('WS_MAX_BURST'),
      maxBufferedBytes: withDefault('WS_MAX_BUFFERED_BYTES'),
      idleTimeoutS: withDefault('WS_IDLE_TIMEOUT_S'),
      maxSocketsPerUser: withDefault('WS_MAX_SOCKETS_PER_USER'),
      upgradesPerIpPerSecond: withDefault('WS_UPGRADES_PER_IP_PER_SECOND'),
      upgradeBurstPerIp: withDefault('WS_UPGRADE_BURST_PER_IP'),
      maxConnectionsPerIp: withDefault('WS_MAX_CONNECTIONS_PER_IP'),
      fdReserve: withDefault('WS_FD_RESERVE'),
    },
    roomsMaxPerUser: withDefault('ROOMS_MAX_PER_USER'),
    contactsMaxPerUser: withDefault('CONTACTS_MAX_PER_USER'),
    presenceLeaseMs: withDefault('PRESENCE_LEASE_MS'),
    dataDir: isAbsolute(dataDir) ? dataDir : resolve(context.cwd, dataDir),
    databaseUrl: p.DATABASE_URL,
    dbPoolMax: withDefault('DB_POOL_MAX'),
    databaseQueryTimeoutMs: withDefault('DATABASE_QUERY_TIMEOUT_MS'),
    redisUrl: p.REDIS_URL,
    redisPrefix: withDefault('REDIS_PREFIX'),
    redisCommandTimeoutMs: withDefault('REDIS_COMMAND_TIMEOUT_MS'),
    startupWaitMs: withDefault('STARTUP_WAIT_S') * 1000,
    busFanOutQueueMax: withDefault('BUS_FANOUT_QUEUE_MAX'),
    installSystemPackages: resolveFlag(withDefault('INSTALL_SYSTEM_PACKAGES'), context.isRoot),
    nodeId: p.NODE_ID ?? `${hostname()}-${context.pid}`,
    logLevel: withDefault('LOG_LEVEL'),
    logPretty: resolveFlag(withDefault('LOG_PRETTY'), context.stdoutIsTty),
    readyCheckTimeoutMs: withDefault('READY_CHECK_TIMEOUT_MS'),
    shutdownTimeoutMs: withDefault('SHUTDOWN_TIMEOUT_MS'),
    searchPath: env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    publicUrl: (p.PUBLIC_URL ?? `http://localhost:${withDefault('PORT')}`).replace(/\/+$/, ''),
    corsOrigins: withDefault('CORS_ORIGINS'),
    trustProxy: withDefault('TRUST_PROXY'),
    rateLimitPerMinute: withDefault('RATE_LIMIT_PER_MINUTE'),
    httpEdge: {
      requestTimeoutMs: withDefault('HTTP_REQUEST_TIMEOUT_MS'),
      maxConnectionsPerIp: withDefault('HTTP_MAX_CONNECTIONS_PER_IP'),
      maxConnections: withDefault('HTTP_MAX_CONNECTIONS'),
    },
    jwt: {
      issuer: withDefault('JWT_ISSUER'),
      audience: withDefault('JWT_AUDIENCE'),
      privateKey: p.JWT_PRIVATE_KEY,
      accessTtlS: withDefault('ACCESS_TOKEN_TTL_S'),
    },
    refresh: {
      idleTtlS: withDefault('REFRESH_IDLE_TTL_S'),
      absoluteTtlS: withDefault('REFRESH_ABSOLUTE_TTL_S'),
      reuseGraceS: withDefault('REFRESH_REUSE_GRACE_S'),
    },
    login: {
      maxFailures: withDefault('LOGIN_MAX_FAILURES'),
      ipMaxFailures: withDefault('LOGIN_IP_MAX_FAILURES'),
      windowS: withDefault('LOGIN_WINDOW_S'),
      passwordHashesPerIp: withDefault('PASSWORD_HASHES_PER_IP'),
    },
    admin:
      p.ADMIN_EMAIL !== undefined && p.ADMIN_PASSWORD !== undefined
        ? { email: p.ADMIN_EMAIL, password: p.ADMIN_PASSWORD }
        : undefined,
    mail: { smtpUrl: p.SMTP_URL, from: withDefault('MAIL_FROM') },
    outboxPollMs: withDefault('OUTBOX_POLL_MS'),
    retentionIntervalMs: withDefault('RETENTION_INTERVAL_S') * 1000,
    taskLockMs: withDefault('TASK_LOCK_MS'),
    payments: {
      currency: withDefault('CURRENCY'),
      platformFeeBps: withDefault('PLATFORM_FEE_BPS'),
      provider: withDefault('PAYMENTS_PROVIDER'),
      webhookSecrets: p.PAYMENTS_WEBHOOK_SECRETS ?? [DEVELOPMENT_WEBHOOK_SECRET],
      developmentWebhookSecret: p.PAYMENTS_WEBHOOK_SECRETS === undefined,
      webhookBaseUrl: (p.PAYMENTS_WEBHOOK_URL ?? p.PUBLIC_URL)?.replace(/\/+$/, ''),
      providerTimeoutMs: withDefault('PAYMENTS_PROVIDER_TIMEOUT_MS'),
      sandboxWebhookDelayMs: withDefault('SANDBOX_WEBHOOK_DELAY_MS'),
      sandboxLatencyMs: withDefault('SANDBOX_LATENCY_MS'),
      auditIntervalMs: withDefault('LEDGER_AUDIT_INTERVAL_S') * 1000,
      reconcileAfterMs: withDefault('PAYMENTS_RECONCILE_AFTER_S') * 1000,
      payoutReturnWindowMs: withDefault('PAYMENTS_PAYOUT_RETURN_WINDOW_S') * 1000,
      transfersPerMinute: withDefault('TRANSFERS_PER_MINUTE'),
    },
    marketplace: {
      autoApproveMs: withDefault('CONTRACT_AUTO_APPROVE_S') * 1000,
      reviewWindowMs: withDefault('REVIEW_WINDOW_S') * 1000,
    },
    notifications: {
      digestMs: withDefault('NOTIFY_EMAIL_DIGEST_S') * 1000,
      unreadAfterMs: withDefault('UNREAD_EMAIL_AFTER_S') * 1000,
    },
  });
}

/**
 * Freezes `value` and every object and array reachable from it: the config is shared by every part
 * of the process, so a nested setting changed by one part (`config.ws.maxFrameBytes = …`) would
 * silently change it for all. A config holds plain data only, all of it made by `loadConfig`.
 */
function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

/** `loadConfig` for the running process: the composition roots call this once. */
export function loadProcessConfig(purpose: 'server' | 'command' = 'server'): Config {
  return loadConfig(process.env, {
    cwd: process.cwd(),
    isRoot: process.getuid?.() === 0,
    stdoutIsTty: process.stdout.isTTY === true,
    pid: process.pid,
    purpose,
  });
}

/** Markdown table of every setting, as embedded in the README. */
export function configTableMarkdown(): string {
  const rows = Object.entries(settings).map(
    ([name, spec]: [string, Setting<z.ZodType>]) =>
      `| \`${name}\` | ${spec.default === undefined ? '(unset)' : `\`${spec.default}\``} | ${spec.doc} |`,
  );
  return ['| Variable | Default | Meaning |', '| --- | --- | --- |', ...rows].join('\n');
}
