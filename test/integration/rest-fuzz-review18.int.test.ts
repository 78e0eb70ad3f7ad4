/**
 * An attacker's sweep of every REST operation the node's own OpenAPI document lists: hostile path
 * parameters, query strings, bodies, content types and conditional/idempotency headers, chosen by a
 * seeded PRNG (the same requests on every run). Whatever is sent, the node answers below 500, every
 * 4xx is problem+json with a `code`, nothing hangs, and the node is still ready and serving afterwards.
 * A failure names the operation and the exact variant, so it can be replayed by hand.
 *
 * Besides the sweep: bursts of identical requests (one and distinct Idempotency-Keys), two users
 * acting on each other at once, bids racing a close, and correctly signed provider webhooks with
 * hostile events; and the regressions of what the sweep found (keyed group rooms created at once
 * deadlocked into 500s; a signed webhook with a lone surrogate answered 500).
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEVELOPMENT_WEBHOOK_SECRET } from '../../src/config/index.js';
import { createDb, type DbHandle } from '../../src/db/create-db.js';
import { signWebhook } from '../../src/domain/payments/webhook-signature.js';
import { captureLogs, startTestNode, type TestNode } from '../support/context.js';
import { httpClient, makeContacts, promoteToAdmin, type Registered, registerUser } from '../support/http.js';
import { acceptBid, placeBid } from '../support/marketplace.js';
import { untilDefined } from '../support/poll.js';

type Schema = {
  $ref?: string;
  type?: string;
  properties?: Record<string, Schema>;
  required?: string[];
  items?: Schema;
  enum?: unknown[];
  anyOf?: Schema[];
  oneOf?: Schema[];
  minimum?: number;
  minLength?: number;
  minItems?: number;
  format?: string;
  pattern?: string;
  default?: unknown;
};
type Parameter = { in: string; name: string; required?: boolean; schema?: Schema };
type Operation = {
  parameters?: Parameter[];
  requestBody?: { content: Record<string, { schema?: Schema }> };
  security?: unknown[];
};
type Doc = {
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, Schema> };
};

/** mulberry32: a small seeded PRNG, so every run sends the same variants. */
function prng(seed: number) {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  return {
    int,
    pick: <T>(values: readonly T[]): T => values[int(values.length)] as T,
    sample: <T>(values: readonly T[], n: number): T[] => {
      const copy = [...values];
      const out: T[] = [];
      while (out.length < n && copy.length > 0) out.push(copy.splice(int(copy.length), 1)[0] as T);
      return out;
    },
    bytes: (n: number) => Buffer.from(Array.from({ length: n }, () => int(256))),
  };
}

/** A raw JSON token spliced in where JSON.stringify cannot write it (1e400, -0). */
const RAW = (token: string) => `\u0001RAW:${token}\u0001`;
const toJson = (value: unknown) =>
  JSON.stringify(value).replace(/"\\u0001RAW:([^"]*?)\\u0001"/g, (_m, token: string) => token);

const deepArray = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`;
const deepObject = (depth: number) => `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;

const PATH_VALUES: readonly [string, string][] = [
  ['not-a-uuid', 'not-a-uuid'],
  ['uppercase UUID', randomUUID().toUpperCase()],
  ['UUID of nothing', '00000000-0000-4000-8000-000000000000'],
  ['nil UUID', '00000000-0000-0000-0000-000000000000'],
  ['max UUID', 'ffffffff-ffff-ffff-ffff-ffffffffffff'],
  ['10 000 chars', 'a'.repeat(10_000)],
  ['%00', '%00'],
  ['..%2f', '..%2f..%2fhealth'],
  ['emoji', encodeURIComponent('😀🦄ünï')],
  ['beyond 2^53', '9007199254740993'],
  ['negative', '-1'],
  ['NaN', 'NaN'],
  ['empty', ''],
  ['lone %', '%'],
  ['bad utf-8', '%C3%28'],
  ['uuid with NUL', `${randomUUID()}%00`],
];

const QUERY_VALUES: readonly [string, string][] = [
  ['wrong type', 'abc'],
  ['negative', '-1'],
  ['zero', '0'],
  ['fractional', '1.5'],
  ['huge', '99999999999999999999999'],
  ['1e400', '1e400'],
  ['beyond 2^53', '9007199254740993'],
  ['NaN', 'NaN'],
  ['Infinity', 'Infinity'],
  ['empty', ''],
  ['10 000 chars', 'q'.repeat(10_000)],
  ['tsquery metachars', '& | ! ( ) : * \\ % _ \' "'],
  ['tsquery operators', 'a & !b | (c:* <-> d)'],
  ['only operators', '!!!&&&|||'],
  ['LIKE metachars', '%_%\\%'],
  ['regex metachars', '.*+?^$' + '{}()|[]\\'],
  ['quotes', `'"';--`],
  ['NUL', 'a\u0000b'],
  ['lone surrogate', '%ED%A0%80'],
  ['emoji', '😀'],
  ['true', 'true'],
  ['uuid', randomUUID()],
];

const b64 = (text: string) => Buffer.from(text).toString('base64url');
/** Cursors shaped like the API's own (keyset, room, history, relevance) with values at the edges. */
const CRAFTED_CURSORS: readonly string[] = [
  b64(JSON.stringify(['9999-12-31T23:59:59.999Z', 'ffffffff-ffff-ffff-ffff-ffffffffffff'])),
  b64(JSON.stringify(['1970-01-01T00:00:00.000Z', '00000000-0000-0000-0000-000000000000'])),
  b64(JSON.stringify(['0000-01-01T00:00:00.000Z', randomUUID()])),
  b64(JSON.stringify(['+275760-09-13T00:00:00.000Z', randomUUID()])),
  b64(JSON.stringify(['2026-02-30T00:00:00.000Z', randomUUID()])),
  b64(JSON.stringify(['2026-01-01T00:00:00.000Z', '------------------------------------'])),
  b64(JSON.stringify(['2026-01-01T00:00:00.000Z', randomUUID(), 'extra'])),
  b64(JSON.stringify([1e308, randomUUID()])),
  b64(JSON.stringify({ createdAt: '2026-01-01T00:00:00.000Z', id: randomUUID() })),
  b64(JSON.stringify(['-999999999999999999', randomUUID()])),
  b64(JSON.stringify(['999999999999999999', randomUUID()])),
  b64(JSON.stringify(['9223372036854775808', randomUUID()])),
  b64(JSON.stringify(['2026-01-01T00:00:00.000Z\u0000', randomUUID()])),
  b64('e9223372036854775807'),
  b64('e9223372036854775808'),
  b64('e99999999999999999999'),
  b64('e0'),
  b64('e-1'),
  `1e308~${b64(JSON.stringify(['2026-01-01T00:00:00.000Z', randomUUID()]))}`,
  `5e-324~${b64(JSON.stringify(['2026-01-01T00:00:00.000Z', randomUUID()]))}`,
  `Infinity~${b64(JSON.stringify(['2026-01-01T00:00:00.000Z', randomUUID()]))}`,
  `-0~${b64(JSON.stringify(['2026-01-01T00:00:00.000Z', randomUUID()]))}`,
  `0x10~${b64(JSON.stringify(['2026-01-01T00:00:00.000Z', randomUUID()]))}`,
  '~~~',
];

const BODY_SHAPES: readonly [string, string][] = [
  ['null', 'null'],
  ['array', '[]'],
  ['array of object', '[{}]'],
  ['number', '42'],
  ['string', '"hello"'],
  ['true', 'true'],
  ['empty object', '{}'],
  ['deep array 5000', deepArray(5000)],
  ['deep object 5000', deepObject(5000)],
  ['__proto__ key', '{"__proto__":{"admin":true}}'],
  ['constructor key', '{"constructor":{"prototype":{"admin":true}}}'],
  ['nested __proto__', '{"a":{"__proto__":{"x":1}}}'],
];

const PROPERTY_VALUES: readonly [string, unknown][] = [
  ['null', null],
  ['true', true],
  ['number', 123],
  ['negative', -1],
  ['negative huge', RAW('-9007199254740993')],
  ['zero', 0],
  ['fraction', 0.5],
  ['1e400', RAW('1e400')],
  ['-0', RAW('-0')],
  ['beyond 2^53', RAW('9007199254740993')],
  ['1e308', 1e308],
  ['string', 'x'],
  ['empty string', ''],
  ['huge string', 'x'.repeat(60_000)],
  ['NaN string', 'NaN'],
  ['Infinity string', 'Infinity'],
  ['numeric string', '100'],
  ['NUL inside', 'a\u0000b'],
  ['lone surrogate', 'a\ud800b'],
  ['emoji', '😀'.repeat(50)],
  ['array', [1, 'a']],
  ['object', { a: 1 }],
  ['metachars', '& | ! ( ) : * \\ % _ \' "'],
  ['uuid', randomUUID()],
  ['nil uuid', '00000000-0000-0000-0000-000000000000'],
  ['date far', '99999-01-01T00:00:00Z'],
  ['date past', '1900-01-01T00:00:00Z'],
];

const CONTENT_TYPES = [
  'text/plain',
  'application/x-www-form-urlencoded',
  'application/json; charset=latin1',
  'multipart/form-data; boundary=x',
  'application/json-patch+json',
  'application/xml',
];
const INVALID_JSON: readonly [string, string | Buffer][] = [
  ['truncated', '{'],
  ['no value', '{"a":}'],
  ['trailing garbage', '{"a":1}{"b":2}'],
  ['bad bytes', Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d])],
  ['encoded surrogate bytes', Buffer.from([0x22, 0xed, 0xa0, 0x80, 0x22])],
  ['empty', ''],
  ['BOM', '\ufeff{}'],
];
const IF_MATCH = [
  '*',
  '"abc"',
  'W/"-1"',
  '"-1"',
  '"0"',
  '"1.5"',
  '"99999999999999999999999"',
  '"9007199254740993"',
  '"NaN"',
  '"1", "2"',
  'x'.repeat(4000),
  '""',
  '"',
];
const IDEMPOTENCY_KEYS = ['x'.repeat(256), 'x'.repeat(5000), 'ünï', 'a b', '"', '%00', '\u00ff'];

interface Variant {
  readonly method: string;
  readonly path: string;
  readonly query?: string;
  readonly headers?: Record<string, string>;
  readonly body?: string | Buffer;
  readonly contentType?: string;
  readonly label: string;
}

describe('REST attacker sweep (review 18)', () => {
  let node: TestNode;
  let api: ReturnType<typeof httpClient>;
  let doc: Doc;
  let user: Registered;
  let other: Registered;
  let burner: Registered;
  let adminToken: string;
  let handle: DbHandle;
  const ids: Record<string, string> = {};

  /** A fresh open job with a bid of `other`'s, and a contract funded by `user` (ids.job, ids.bid, ids.contract). */
  async function makeMarketplaceResources(): Promise<void> {
    const job = await api.call<{ id: string }>('POST', '/v1/jobs', {
      token: user.accessToken,
      body: {
        title: 'Fuzz target',
        description: 'A job the sweep aims at',
        categoryId: ids.category,
        budget: { kind: 'fixed', amount: 10_000, currency: 'USD' },
      },
    });
    expect(job.status, JSON.stringify(job.body)).toBe(201);
    ids.job = job.body.id;
    const bid = await placeBid(api, other, ids.job, { amount: 5000, deliveryDays: 3, coverLetter: 'hello' });
    expect(bid.status, JSON.stringify(bid.body)).toBe(201);
    ids.bid = bid.body.id;
    // A contract (the hirer funds escrow first), so contract transitions and reviews reach the domain.
    const balance = async () =>
      (await api.get<{ available: number }>('/v1/wallet', user.accessToken)).body.available;
    const before = await balance();
    const topUp = await api.call<{ payment: { id: string } }>('POST', '/v1/wallet/top-ups', {
      token: user.accessToken,
      headers: { 'idempotency-key': randomUUID() },
      body: { amount: 100_000, card: '4242424242424242' },
    });
    expect(topUp.status, JSON.stringify(topUp.body)).toBe(202);
    ids.payment = topUp.body.payment.id;
    await untilDefined(async () => ((await balance()) >= before + 100_000 ? true : undefined), 'the top-up');
    const hired = await api.call<{ id: string }>('POST', '/v1/jobs', {
      token: user.accessToken,
      body: {
        title: 'Fuzz contract',
        description: 'A job with a contract the sweep aims at',
        categoryId: ids.category,
        budget: { kind: 'fixed', amount: 10_000, currency: 'USD' },
      },
    });
    const hiredBid = await placeBid(api, other, hired.body.id, { amount: 5000, deliveryDays: 3 });
    const accepted = await acceptBid<{ id?: string; contract?: { id: string } }>(api, user, hiredBid.body);
    expect(accepted.status, JSON.stringify(accepted.body)).toBeLessThan(300);
    ids.contract = accepted.body.contract?.id ?? accepted.body.id ?? randomUUID();
  }

  beforeAll(async () => {
    node = await startTestNode({
      RATE_LIMIT_PER_MINUTE: '1000000',
      LOGIN_MAX_FAILURES: '1000',
      LOGIN_IP_MAX_FAILURES: '100000',
      TRANSFERS_PER_MINUTE: '100000',
    });
    api = httpClient(node.node.baseUrl);
    doc = (await api.get<Doc>('/openapi.json')).body;
    [user, other, burner] = await Promise.all([
      registerUser(api, { roles: ['hirer', 'worker'] }),
      registerUser(api, { roles: ['hirer', 'worker'] }),
      registerUser(api, { roles: ['hirer', 'worker'] }),
    ]);
    const admin = await registerUser(api, { roles: ['hirer'] });
    handle = await createDb({ kind: 'postgres', url: node.db.url, poolMax: 2 }, captureLogs().log);
    adminToken = await promoteToAdmin(api, handle.db, admin, ['hirer']);
    // Real resources, so plausible variants reach the handlers and the database, not only a 404.
    const category = await api.post<{ id: string }>(
      '/v1/admin/categories',
      { slug: 'fuzz-target', name: 'Fuzz target' },
      adminToken,
    );
    expect(category.status, JSON.stringify(category.body)).toBe(201);
    ids.category = category.body.id;
    await makeMarketplaceResources();
    await makeContacts(api, user, other);
    const room = await api.post<{ id: string }>(
      '/v1/rooms',
      { kind: 'direct', memberIds: [other.id] },
      user.accessToken,
    );
    expect(room.status, JSON.stringify(room.body)).toBeLessThan(300);
    ids.room = room.body.id;
  }, 60_000);
  afterAll(async () => {
    await handle?.close();
    await node?.stop();
  });

  const resolve = (schema: Schema | undefined): Schema | undefined => {
    if (schema?.$ref === undefined) return schema;
    return resolve(doc.components.schemas[schema.$ref.split('/').pop() ?? '']);
  };

  /** A value the schema accepts (best effort), using the real resources where a name suggests one. */
  const example = (raw: Schema | undefined, name = ''): unknown => {
    const schema = resolve(raw);
    if (schema === undefined) return {};
    if (schema.anyOf ?? schema.oneOf) return example((schema.anyOf ?? schema.oneOf)?.[0], name);
    if (schema.enum) return schema.enum[0];
    if (schema.default !== undefined && schema.type !== 'object') return schema.default;
    switch (schema.type) {
      case 'object': {
        const out: Record<string, unknown> = {};
        for (const [key, property] of Object.entries(schema.properties ?? {}))
          out[key] = example(property, key);
        return out;
      }
      case 'array':
        return Array.from({ length: Math.max(1, schema.minItems ?? 0) }, () => example(schema.items, name));
      case 'integer':
      case 'number':
        return Math.max(schema.minimum ?? 1, 1);
      case 'boolean':
        return true;
      default:
        if (schema.format === 'uuid')
          return /category/i.test(name) ? ids.category : /member|user/i.test(name) ? other.id : randomUUID();
        if (schema.format === 'date-time') return new Date(Date.now() + 86_400_000).toISOString();
        if (schema.pattern === '^[A-Z]{3}$') return 'USD';
        if (schema.format === 'email') return 'someone@example.test';
        if (schema.format === 'uri') return 'https://example.test/me';
        if (schema.pattern === '^[0-9]{12,19}$') return '4242424242424242';
        if (schema.pattern?.startsWith('^[0-9A-Za-z]')) return 'DE89370400440532013000';
        return 'x'.repeat(Math.max(schema.minLength ?? 1, 12));
    }
  };

  /** The id a path parameter takes by default: a real resource where one fits. */
  const basePathValue = (path: string, name: string): string => {
    if (name === 'userId') return other.id;
    if (path.startsWith('/v1/jobs/')) return ids.job ?? randomUUID();
    if (path.startsWith('/v1/bids/')) return ids.bid ?? randomUUID();
    if (path.startsWith('/v1/rooms/')) return ids.room ?? randomUUID();
    if (path.startsWith('/v1/users/')) return other.id;
    if (path.startsWith('/v1/admin/users/')) return randomUUID();
    if (path.startsWith('/v1/admin/categories/')) return ids.category ?? randomUUID();
    if (path.startsWith('/v1/contracts/') || path.startsWith('/v1/admin/contracts/'))
      return ids.contract ?? randomUUID();
    return randomUUID();
  };

  const fill = (path: string, values: Record<string, string>) =>
    path.replace(/\{(\w+)\}/g, (_m, name: string) => values[name] ?? basePathValue(path, name));

  /** Who sends an operation's variants: the admin on admin routes, a throwaway user for session ones. */
  const tokenFor = (path: string): string | undefined => {
    if (path.startsWith('/v1/admin/')) return adminToken;
    if (path.startsWith('/v1/auth/')) return burner.accessToken;
    if (path.startsWith('/v1/bids/') && !path.endsWith('/accept')) return other.accessToken;
    if (path.endsWith('/deliver') || path === '/v1/jobs/{id}/bids') return other.accessToken;
    return user.accessToken;
  };

  function variantsOf(method: string, path: string, operation: Operation, seed: number): Variant[] {
    const random = prng(seed);
    const out: Variant[] = [];
    const parameters = operation.parameters ?? [];
    const pathParams = parameters.filter((p) => p.in === 'path').map((p) => p.name);
    const queryParams = parameters.filter((p) => p.in === 'query');
    const headerNames = new Set(parameters.filter((p) => p.in === 'header').map((p) => p.name));
    const bodySchema = operation.requestBody?.content['application/json']?.schema;
    const takesBody = bodySchema !== undefined;
    const sample = example(bodySchema) as Record<string, unknown>;
    // A direct room takes no title: a group (of a contact) is what a plausible POST /v1/rooms makes.
    if (path === '/v1/rooms') sample.kind = 'group';
    const validBody = takesBody ? toJson(sample) : undefined;
    const validQuery = queryParams
      .filter((p) => p.required)
      .map((p) => `${p.name}=${encodeURIComponent(String(example(p.schema, p.name)))}`)
      .join('&');
    const baseHeaders: Record<string, string> = {};
    if (headerNames.has('idempotency-key')) baseHeaders['idempotency-key'] = `fuzz-${seed}`;
    if (parameters.some((p) => p.in === 'header' && p.name === 'if-match' && p.required))
      baseHeaders['if-match'] = '"1"';
    const base = {
      method,
      path: fill(path, {}),
      ...(validQuery === '' ? {} : { query: validQuery }),
      headers: baseHeaders,
      ...(validBody === undefined ? {} : { body: validBody }),
    };
    const add = (label: string, change: Partial<Variant>) => {
      // Each variant its own idempotency key, unless the variant is about that header.
      const headers = { ...base.headers, ...change.headers };
      if (headerNames.has('idempotency-key') && change.headers?.['idempotency-key'] === undefined)
        headers['idempotency-key'] = `fuzz-${seed}-${out.length}`;
      out.push({ ...base, ...change, headers, label });
    };

    add('plausible', {});
    for (const name of pathParams)
      for (const [label, value] of PATH_VALUES)
        add(`path ${name}=${label}`, { path: fill(path, { [name]: value }) });

    for (const parameter of queryParams) {
      for (const [label, value] of QUERY_VALUES) {
        const query = [validQuery, `${parameter.name}=${encodeURIComponent(value)}`].filter((s) => s !== '');
        // A required parameter replaced, not repeated.
        const q = parameter.required ? `${parameter.name}=${encodeURIComponent(value)}` : query.join('&');
        add(`query ${parameter.name}=${label}`, { query: q });
      }
      add(`query ${parameter.name} repeated`, {
        query: [validQuery, `${parameter.name}=1&${parameter.name}=2&${parameter.name}=abc`]
          .filter((s) => s !== '')
          .join('&'),
      });
      for (const raw of ['%', '%zz', '%C3%28', '%ED%A0%80', '%00', '+', '%2B%2B'])
        add(`query ${parameter.name}=${raw} (raw)`, { query: `${parameter.name}=${raw}` });
      add(`query ${parameter.name} bracketed`, { query: `${parameter.name}[]=1&${parameter.name}[a]=2` });
      if (parameter.name === 'cursor') {
        for (let i = 0; i < 4; i++) {
          const cursor = random.bytes(1 + random.int(60)).toString(i % 2 === 0 ? 'base64' : 'base64url');
          add(`query cursor=random base64 #${i} (${cursor})`, {
            query: `cursor=${encodeURIComponent(cursor)}`,
          });
        }
        for (const cursor of [
          'eyJ',
          'eyJhIjoxfQ',
          'eyJpZCI6Im5vdC1hLXV1aWQiLCJ0IjoiMjAyNiJ9',
          'W10',
          'bnVsbA',
          '=',
        ]) {
          add(`query cursor=${cursor}`, { query: `cursor=${encodeURIComponent(cursor)}` });
        }
        const relevance = queryParams.some((p) => p.name === 'sort') ? 'sort=relevance&q=design&' : '';
        for (const cursor of CRAFTED_CURSORS) {
          add(
            `query cursor=crafted ${Buffer.from(cursor, 'base64url').toString().slice(0, 80)} (${cursor})`,
            {
              query: `cursor=${encodeURIComponent(cursor)}`,
            },
          );
          if (relevance !== '')
            add(`query relevance cursor=crafted (${cursor})`, {
              query: `${relevance}cursor=${encodeURIComponent(cursor)}`,
            });
        }
      }
    }
    // Undeclared parameters, on every operation.
    for (const query of [
      '__proto__=x&constructor=y',
      'toString=1&hasOwnProperty=2',
      'limit=-5&cursor=%00&x=%ED%A0%80',
    ])
      add(`undeclared query ${query}`, { query: [validQuery, query].filter((s) => s !== '').join('&') });

    if (takesBody) {
      for (const [label, body] of BODY_SHAPES) add(`body ${label}`, { body });
      const schema = resolve(bodySchema);
      const valid = sample;
      const properties: [string[], Schema][] = [];
      for (const [key, property] of Object.entries(schema?.properties ?? {})) {
        properties.push([[key], property]);
        const inner = resolve(property);
        for (const [innerKey, innerProperty] of Object.entries(inner?.properties ?? {}))
          properties.push([[key, innerKey], innerProperty]);
      }
      for (const [keys] of properties) {
        for (const [label, value] of random.sample(PROPERTY_VALUES, 12)) {
          const copy = structuredClone(valid) as Record<string, unknown>;
          let target = copy;
          for (const key of keys.slice(0, -1)) {
            const next = target[key];
            if (typeof next !== 'object' || next === null || Array.isArray(next)) target[key] = {};
            target = target[key] as Record<string, unknown>;
          }
          target[keys[keys.length - 1] as string] = value;
          add(`body ${keys.join('.')}=${label}`, { body: toJson(copy) });
        }
        // Inside arrays too: each string item hostile.
        if (Array.isArray(keys.length === 1 ? valid[keys[0] as string] : undefined)) {
          for (const [label, value] of random.sample(PROPERTY_VALUES, 3))
            add(`body ${keys.join('.')}[0]=${label}`, {
              body: toJson({ ...valid, [keys[0] as string]: [value] }),
            });
        }
      }
      for (const required of schema?.required ?? []) {
        const { [required]: _dropped, ...rest } = valid;
        add(`body missing ${required}`, { body: toJson(rest) });
      }
      add('body extra field', { body: toJson({ ...valid, extra: 'x', isAdmin: true }) });
      add('body with __proto__ beside valid fields', {
        body: toJson(valid).replace(/^\{/, '{"__proto__":{"polluted":1},'),
      });
      for (const contentType of CONTENT_TYPES)
        add(`content-type ${contentType}`, { body: validBody ?? '{}', contentType });
      for (const [label, body] of INVALID_JSON) add(`invalid JSON ${label}`, { body });
    } else if (method !== 'get') {
      add('unexpected JSON body', { body: '{"a":1}' });
      add('unexpected body, bad JSON', { body: '{' });
      add('unexpected body, text', { body: 'hello', contentType: 'text/plain' });
      add('unexpected deep body', { body: deepArray(5000) });
    }
    if (headerNames.has('if-match'))
      for (const value of IF_MATCH) add(`If-Match ${value.slice(0, 40)}`, { headers: { 'if-match': value } });
    if (headerNames.has('idempotency-key'))
      for (const value of IDEMPOTENCY_KEYS)
        add(`Idempotency-Key ${value.slice(0, 40)}`, { headers: { 'idempotency-key': value } });
    return out;
  }

  /** Every operation of the document; those that end sessions or close things last, so the rest hit live resources. */
  const orderedOperations = () => {
    const late = (path: string) => /logout|close|withdraw|accept|password/.test(path);
    return Object.entries(doc.paths)
      .flatMap(([path, item]) =>
        Object.entries(item).map(([method, operation]) => ({ path, method, operation })),
      )
      .sort((a, b) => Number(late(a.path)) - Number(late(b.path)));
  };

  const describeVariant = (variant: Variant) =>
    `${variant.method.toUpperCase()} ${variant.path.slice(0, 200)}${variant.query ? `?${variant.query.slice(0, 200)}` : ''} [${variant.label}]` +
    (variant.body === undefined ? '' : ` body=${String(variant.body).slice(0, 200)}`) +
    (variant.contentType ? ` content-type=${variant.contentType}` : '') +
    (variant.headers && Object.keys(variant.headers).length > 0
      ? ` headers=${JSON.stringify(variant.headers).slice(0, 200)}`
      : '');

  async function send(variant: Variant, token: string | undefined): Promise<string | undefined> {
    const headers: Record<string, string> = { ...variant.headers };
    if (token !== undefined) headers.authorization = `Bearer ${token}`;
    if (variant.body !== undefined) headers['content-type'] = variant.contentType ?? 'application/json';
    const url = `${node.node.baseUrl}${variant.path}${variant.query === undefined ? '' : `?${variant.query}`}`;
    let response: Response;
    try {
      response = await fetch(url, {
        method: variant.method.toUpperCase(),
        headers,
        ...(variant.body === undefined ? {} : { body: variant.body }),
        signal: AbortSignal.timeout(15_000),
      });
    } catch (error) {
      return `${describeVariant(variant)}: no answer (${(error as Error).name}: ${(error as Error).message})`;
    }
    const text = await response.text();
    const type = response.headers.get('content-type')?.split(';')[0] ?? '';
    if (response.status >= 500)
      return `${describeVariant(variant)}: ${response.status} ${text.slice(0, 300)}`;
    if (response.status >= 400) {
      if (type !== 'application/problem+json')
        return `${describeVariant(variant)}: ${response.status} with content-type ${type}: ${text.slice(0, 300)}`;
      let code: unknown;
      try {
        code = (JSON.parse(text) as { code?: unknown }).code;
      } catch {
        code = undefined;
      }
      if (typeof code !== 'string')
        return `${describeVariant(variant)}: ${response.status} without a code: ${text.slice(0, 300)}`;
    }
    return undefined;
  }

  /** Runs the work with at most `limit` at once. */
  async function pool<T>(
    items: readonly T[],
    limit: number,
    work: (item: T) => Promise<void>,
  ): Promise<void> {
    let next = 0;
    await Promise.all(
      Array.from({ length: limit }, async () => {
        while (next < items.length) {
          const item = items[next++] as T;
          await work(item);
        }
      }),
    );
  }

  it('answers every hostile variant of every operation with < 500 and problem+json 4xx; the node stays up', async () => {
    const jobs: { variant: Variant; token: string | undefined }[] = [];
    let seed = 18;
    const operations = orderedOperations();
    expect(operations.length).toBeGreaterThan(50);
    for (const { path, method, operation } of operations) {
      const token = tokenFor(path);
      for (const variant of variantsOf(method, path, operation, seed++)) jobs.push({ variant, token });
      // Admin routes as an ordinary user too (a few), and every authenticated route anonymously once.
      if (path.startsWith('/v1/admin/'))
        for (const variant of variantsOf(method, path, operation, seed++).slice(0, 3))
          jobs.push({
            variant: { ...variant, label: `${variant.label} as ordinary user` },
            token: user.accessToken,
          });
      if (operation.security !== undefined && operation.security.length > 0)
        jobs.push({
          variant: { ...variantsOf(method, path, operation, seed++)[0]!, label: 'anonymous' },
          token: undefined,
        });
      // A garbage bearer token.
      if (operation.security !== undefined && operation.security.length > 0)
        jobs.push({
          variant: { ...variantsOf(method, path, operation, seed++)[0]!, label: 'garbage token' },
          token: 'x.y.z',
        });
    }
    const failures: string[] = [];
    await pool(jobs, 8, async ({ variant, token }) => {
      const failure = await send(variant, token);
      if (failure !== undefined) failures.push(failure);
    });
    const ready = await api.get('/health/ready');
    const me = await api.get('/v1/me', user.accessToken);
    expect({ requests: jobs.length, failures }).toEqual({ requests: jobs.length, failures: [] });
    expect(ready.status).toBe(200);
    expect(me.status).toBe(200);
  }, 120_000);

  it('answers bursts of identical requests (same and distinct Idempotency-Keys) with < 500', async () => {
    // Fresh resources: the sweep closed or moved the first ones.
    await makeMarketplaceResources();
    const failures: string[] = [];
    let seed = 1800;
    const operations = orderedOperations();
    for (const { path, method, operation } of operations) {
      if (method === 'get' || /logout|password/.test(path)) continue;
      let plausible = variantsOf(method, path, operation, seed++)[0] as Variant;
      if (path === '/v1/jobs/{id}/bids') {
        // A job `other` has not bid on yet: the burst races the first bid.
        const fresh = await api.post<{ id: string }>(
          '/v1/jobs',
          {
            title: 'Burst target',
            description: 'Raced bids',
            categoryId: ids.category,
            budget: { kind: 'fixed', amount: 10_000, currency: 'USD' },
          },
          user.accessToken,
        );
        plausible = { ...plausible, path: `/v1/jobs/${fresh.body.id}/bids` };
      }
      const token = tokenFor(path);
      const burst = async (label: string, keyed: (i: number) => Record<string, string>) => {
        const results = await Promise.all(
          Array.from({ length: 6 }, (_, i) =>
            send({ ...plausible, headers: { ...plausible.headers, ...keyed(i) }, label }, token),
          ),
        );
        for (const failure of results) if (failure !== undefined) failures.push(failure);
      };
      const hasKey = operation.parameters?.some((p) => p.in === 'header' && p.name === 'idempotency-key');
      await burst(
        'burst, distinct keys',
        (i): Record<string, string> => (hasKey ? { 'idempotency-key': `burst-${seed}-${i}` } : {}),
      );
      if (hasKey) await burst('burst, one key', () => ({ 'idempotency-key': `burst-${seed}-same` }));
    }
    expect(failures).toEqual([]);
    expect((await api.get('/health/ready')).status).toBe(200);
  }, 120_000);

  // Found by the sweep: the claim of an Idempotency-Key inserts a row referencing the caller (a key
  // share on their users row), and the room's lockUsers then asked FOR UPDATE of that row, which
  // waits for every other transaction's key share: concurrent keyed group creations deadlocked,
  // retried, and answered 500 "deadlock detected" after tens of seconds.
  it('creates group rooms with Idempotency-Keys concurrently, by one creator and by two naming each other', async () => {
    const [a, b] = await Promise.all([registerUser(api), registerUser(api)]);
    await makeContacts(api, a, b);
    const create = (creator: Registered, member: Registered, key: string) =>
      api.call('POST', '/v1/rooms', {
        token: creator.accessToken,
        headers: { 'idempotency-key': key },
        body: { kind: 'group', memberIds: [member.id], title: 'Raced' },
      });
    const sameCreator = await Promise.all(Array.from({ length: 6 }, (_, i) => create(a, b, `same-${i}`)));
    expect(sameCreator.map((r) => r.status)).toEqual([201, 201, 201, 201, 201, 201]);
    const crosswise = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        i % 2 === 0 ? create(a, b, `cross-${i}`) : create(b, a, `cross-${i}`),
      ),
    );
    expect(crosswise.map((r) => r.status)).toEqual([201, 201, 201, 201, 201, 201]);
    const rooms = await api.get<{ data: { kind: string }[] }>('/v1/rooms?limit=100', a.accessToken);
    expect(rooms.body.data.filter((room) => room.kind === 'group')).toHaveLength(12);
  }, 120_000);

  it('answers two users acting on each other at once (transfers, contacts, direct rooms) with < 500', async () => {
    const [a, b] = await Promise.all([registerUser(api), registerUser(api)]);
    const failures: string[] = [];
    const both = async (label: string, make: (from: Registered, to: Registered, i: number) => Variant) => {
      const results = await Promise.all(
        Array.from({ length: 8 }, (_, i) => {
          const [from, to] = i % 2 === 0 ? [a, b] : [b, a];
          return send(make(from, to, i), from.accessToken);
        }),
      );
      for (const failure of results) if (failure !== undefined) failures.push(`${label}: ${failure}`);
    };
    const post = (path: string, body: unknown, key?: string): Variant => ({
      method: 'post',
      path,
      label: path,
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      headers: key === undefined ? {} : { 'idempotency-key': key },
    });
    await both('contacts', (_from, to) => post(`/v1/me/contacts/${to.id}`, undefined));
    await both('direct rooms, keyed', (_from, to, i) =>
      post('/v1/rooms', { kind: 'direct', memberIds: [to.id] }, `direct-${i}`),
    );
    await both('direct rooms', (_from, to) => post('/v1/rooms', { kind: 'direct', memberIds: [to.id] }));
    for (const funded of [a, b]) {
      const topUp = await api.call('POST', '/v1/wallet/top-ups', {
        token: funded.accessToken,
        headers: { 'idempotency-key': randomUUID() },
        body: { amount: 1000, card: '4242424242424242' },
      });
      expect(topUp.status).toBe(202);
    }
    for (const funded of [a, b])
      await untilDefined(async () => {
        const wallet = await api.get<{ available: number }>('/v1/wallet', funded.accessToken);
        return wallet.body.available >= 1000 ? true : undefined;
      }, 'the top-up');
    await both('transfers', (_from, to, i) =>
      post('/v1/wallet/transfers', { toUserId: to.id, amount: 1 }, `transfer-${i}`),
    );
    expect(failures).toEqual([]);
  }, 120_000);

  it('answers many workers bidding on one job while its hirer edits and closes it with < 500', async () => {
    const workers = await Promise.all(
      Array.from({ length: 6 }, () => registerUser(api, { roles: ['worker'] })),
    );
    const job = await api.post<{ id: string }>(
      '/v1/jobs',
      {
        title: 'Raced job',
        description: 'Bids while it closes',
        categoryId: ids.category,
        budget: { kind: 'fixed', amount: 10_000, currency: 'USD' },
      },
      user.accessToken,
    );
    expect(job.status).toBe(201);
    const variants: [Variant, string][] = [
      ...workers.map((worker, i): [Variant, string] => [
        {
          method: 'post',
          path: `/v1/jobs/${job.body.id}/bids`,
          label: `bid ${i}`,
          body: JSON.stringify({ amount: 100 + i, deliveryDays: 2 }),
          headers: { 'idempotency-key': `raced-bid-${i}` },
        },
        worker.accessToken,
      ]),
      [
        {
          method: 'patch',
          path: `/v1/jobs/${job.body.id}`,
          label: 'edit',
          body: JSON.stringify({ title: 'Raced job, edited' }),
        },
        user.accessToken,
      ],
      [
        {
          method: 'post',
          path: `/v1/jobs/${job.body.id}/close`,
          label: 'close',
          headers: { 'idempotency-key': 'raced-close' },
        },
        user.accessToken,
      ],
    ];
    const results = await Promise.all(variants.map(([variant, token]) => send(variant, token)));
    expect(results.filter((failure) => failure !== undefined)).toEqual([]);
  }, 60_000);

  // The development secret is public, so anyone can sign for a node left on it; in production the
  // provider signs. Either way a malformed event must be refused or ignored, never a 500 (the
  // provider would redeliver it for days).
  it('answers correctly signed provider webhooks with hostile events with < 500', async () => {
    const random = prng(1818);
    const base = (id: string) => ({
      id,
      type: 'charge.succeeded',
      createdAt: Math.floor(Date.now() / 1000),
      data: { paymentId: ids.payment, providerRef: 'ch_fuzz', amount: 1, currency: 'USD' },
    });
    type Event = ReturnType<typeof base>;
    // Each event is made for the webhook-id it is sent under (the body's id names the same event).
    const events: [string, (id: string) => string][] = [
      ['plausible', (id) => toJson(base(id))],
      [
        'unknown payment',
        (id) => toJson({ ...base(id), data: { ...base(id).data, paymentId: randomUUID() } }),
      ],
      ['array', () => '[]'],
      ['null', () => 'null'],
      ['deep', () => deepObject(5000)],
      ['unknown type', (id) => toJson({ ...base(id), type: 'charge.exploded' })],
      ['no data', (id) => toJson({ ...base(id), data: undefined })],
    ];
    for (const field of ['id', 'type', 'createdAt'] as const)
      for (const [label, value] of random.sample(PROPERTY_VALUES, 8))
        events.push([`${field}=${label}`, (id) => toJson({ ...base(id), [field]: value })]);
    for (const field of ['paymentId', 'providerRef', 'amount', 'currency'] as const)
      for (const [label, value] of random.sample(PROPERTY_VALUES, 8))
        events.push([
          `data.${field}=${label}`,
          (id) => toJson({ ...base(id), data: { ...(base(id) as Event).data, [field]: value } }),
        ]);
    const failures: string[] = [];
    let n = 0;
    await pool(events, 4, async ([label, make]) => {
      const id = `evt_fuzz_${n++}`;
      const body = make(id);
      const timestamp = Math.floor(Date.now() / 1000);
      const variant: Variant = {
        method: 'post',
        path: '/v1/payments/webhook',
        label: `signed webhook ${label}`,
        body,
        headers: {
          'webhook-id': id,
          'webhook-timestamp': String(timestamp),
          'webhook-signature': signWebhook({ secret: DEVELOPMENT_WEBHOOK_SECRET, id, timestamp, body }),
        },
      };
      const failure = await send(variant, undefined);
      if (failure !== undefined) failures.push(failure);
    });
    expect(failures).toEqual([]);
    expect((await api.get('/health/ready')).status).toBe(200);
  }, 60_000);

  // Found by the sweep: the webhook keeps its raw bytes for the signature, so the input guard never
  // saw them; a lone surrogate in the (signed) event reached PostgreSQL and answered 500.
  it('refuses a correctly signed webhook whose event holds a lone surrogate with 400, not 500', async () => {
    for (const [field, value] of [
      ['paymentId', 'a\ud800b'],
      ['providerRef', '\udfff'],
    ] as const) {
      const id = `evt_surrogate_${field}`;
      const body = JSON.stringify({
        id,
        type: 'charge.succeeded',
        createdAt: Math.floor(Date.now() / 1000),
        data: {
          paymentId: ids.payment,
          providerRef: 'ch_surrogate',
          amount: 1,
          currency: 'USD',
          [field]: value,
        },
      });
      expect(body).toContain('\\ud');
      const timestamp = Math.floor(Date.now() / 1000);
      const response = await fetch(`${node.node.baseUrl}/v1/payments/webhook`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'webhook-id': id,
          'webhook-timestamp': String(timestamp),
          'webhook-signature': signWebhook({ secret: DEVELOPMENT_WEBHOOK_SECRET, id, timestamp, body }),
        },
        body,
      });
      const text = await response.text();
      expect(response.status, `${field}: ${text}`).toBe(400);
      expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(JSON.parse(text)).toMatchObject({ code: 'VALIDATION_FAILED' });
    }
  });
});
