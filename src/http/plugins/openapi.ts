/**
 * OpenAPI 3.1 generated from the zod schemas of protocol/src/rest (fastify-type-provider-zod), served
 * at /openapi.json, with Swagger UI at /docs (renders under helmet's default CSP).
 *
 * The document is meant for client generators, and test/integration/openapi-lint.int.test.ts holds
 * it to Redocly's `recommended` and Spectral's `spectral:oas` rules. What makes that hold by itself
 * for a new route is here: every operation's security requirement is derived from the route's
 * `config.auth` (bearer for `user`/`admin`, `[]` for public ones and routes outside /v1), and the
 * components are cut down to those the operations reach. Routes still name their own operationId
 * and tags (a generator's method names must not change when a path does). Error answers are
 * declared as they are sent: `application/problem+json`, with the ones any route may give (429 from
 * the global rate limit, 500, 503 while shutting down or with a dependency down, and 413 where there
 * is a body) added where a route did not list them.
 */
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import { jsonSchemaTransform, jsonSchemaTransformObject } from 'fastify-type-provider-zod';
import { REQUIRED_BY_HANDLER } from '../idempotency.js';
import { bodyIsOptional } from './input-guard.js';

type Transform = typeof jsonSchemaTransform;
type TransformObject = typeof jsonSchemaTransformObject;
type Components = Record<string, Record<string, unknown> | undefined>;

const BEARER = [{ bearerAuth: [] }];

type ObjectSchema = { properties?: Record<string, Record<string, unknown>>; required?: string[] };

/**
 * Headers the handler checks itself (REQUIRED_BY_HANDLER, e.g. the Idempotency-Key) are listed as
 * required, as they are; the marker keyword goes.
 */
function requireHandlerChecked(headers: unknown): unknown {
  const schema = headers as ObjectSchema | undefined;
  if (schema?.properties === undefined) return headers;
  const marked = Object.entries(schema.properties).filter(
    ([, property]) => property[REQUIRED_BY_HANDLER] === true,
  );
  if (marked.length === 0) return headers;
  const properties = Object.fromEntries(
    Object.entries(schema.properties).map(([name, property]) => {
      const { [REQUIRED_BY_HANDLER]: _marker, ...rest } = property;
      return [name, rest];
    }),
  );
  const required = [...new Set([...(schema.required ?? []), ...marked.map(([name]) => name)])];
  return { ...schema, properties, required };
}

/**
 * Marks an operation whose body may be left out (a contract transition's optional message):
 * @fastify/swagger copies `x-` keys onto the operation and writes every body `required: true`;
 * `describeErrors` turns the marker into `requestBody.required: false` and drops it.
 */
const OPTIONAL_BODY = 'x-gigwire-optional-body';

/** The zod transform plus the operation's security requirement, from the route's declared access. */
const transform: Transform = (input) => {
  const result = jsonSchemaTransform(input);
  if (result.schema === undefined || (result.schema as { hide?: boolean }).hide === true) return result;
  const auth = input.route.config?.auth;
  const security = auth === 'user' || auth === 'admin' ? BEARER : [];
  const headers = (result.schema as { headers?: unknown }).headers;
  const body = (input.schema as { body?: unknown } | undefined)?.body;
  return {
    ...result,
    schema: {
      ...result.schema,
      ...(headers === undefined ? {} : { headers: requireHandlerChecked(headers) }),
      ...(body !== undefined && bodyIsOptional(body) ? { [OPTIONAL_BODY]: true } : {}),
      security,
    },
  };
};

const REF = /"#\/components\/([^/"]+)\/([^"]+)"/g;

/**
 * Only the components the operations reach, directly or through other components. The zod registry
 * is global: it also holds the WebSocket frame schemas (published in protocol/schema.json, not here)
 * and fastify-type-provider-zod emits every schema in both its input and output form, one of which a
 * route usually never uses. Security schemes count as reached when an operation names them.
 */
function reachableComponents(paths: unknown, components: Components): Components {
  const reached = new Set<string>();
  const pending = [JSON.stringify(paths)];
  for (let text = pending.pop(); text !== undefined; text = pending.pop()) {
    for (const [, kind, name] of text.matchAll(REF)) {
      const key = `${kind}/${name}`;
      if (reached.has(key)) continue;
      reached.add(key);
      pending.push(JSON.stringify(components[kind ?? '']?.[name ?? ''] ?? null));
    }
  }
  for (const item of Object.values((paths ?? {}) as Record<string, Record<string, unknown>>)) {
    for (const operation of Object.values(item)) {
      for (const requirement of (operation as { security?: object[] }).security ?? []) {
        for (const scheme of Object.keys(requirement)) reached.add(`securitySchemes/${scheme}`);
      }
    }
  }
  const kept: Components = {};
  for (const [kind, entries] of Object.entries(components)) {
    const used = Object.entries(entries ?? {}).filter(([name]) => reached.has(`${kind}/${name}`));
    if (used.length > 0) kept[kind] = Object.fromEntries(used);
  }
  return kept;
}

type Response = {
  description?: string;
  content?: Record<string, unknown>;
  headers?: Record<string, unknown>;
};
type Operation = {
  requestBody?: Record<string, unknown>;
  responses?: Record<string, Response>;
  [OPTIONAL_BODY]?: boolean;
};

const PROBLEM_CONTENT = { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } };

/** Error answers every operation may give, whether or not its route lists them (see src/http/plugins/). */
const ANY_ROUTE: Readonly<Record<string, Response>> = {
  // Any route: the input guard (a query key `__proto__`, an HTTP/1.1 request without Host) and
  // Fastify's routing (a path that is not valid percent-encoding) answer it before the route's own
  // checks; the JWKS and the category list did not declare it (review 33).
  '400': {
    description:
      'VALIDATION_FAILED: the request is malformed (its path, query, headers or body); `errors` names the field where one is to blame.',
  },
  // The rate limit is global: only /health/ and /metrics are exempt, and neither is in the document.
  '429': {
    description: 'RATE_LIMITED: too many requests; retry after `Retry-After` seconds.',
    headers: {
      'Retry-After': { description: 'Seconds to wait before retrying.', schema: { type: 'integer' } },
    },
  },
  '500': { description: 'INTERNAL: our fault; quote the `requestId` when reporting it.' },
  // Any route: the node is shutting down (app.ts), or its database or Redis is down (plugins/errors.ts).
  '503': {
    description:
      'UNAVAILABLE: this node is shutting down, or the database or Redis is unreachable; retry later (another node may answer).',
    headers: {
      'Retry-After': {
        description: 'Seconds to wait before retrying (a hint; another node may answer at once).',
        schema: { type: 'integer' },
      },
    },
  },
};
const WITH_BODY: Readonly<Record<string, Response>> = {
  '413': { description: 'PAYLOAD_TOO_LARGE: the body is over the size limit (64 KiB).' },
  '415': {
    description:
      'UNSUPPORTED_MEDIA_TYPE: the body is sent with a `Content-Type` this route does not read (send `application/json`; an operation that reads no body takes none, or an empty one labelled `application/json`), or labelled with a `charset` other than `utf-8` (`charset` names it), or compressed (`Content-Encoding` other than `identity`: bodies are read uncompressed; the answer carries `Accept-Encoding: identity`).',
  },
};

/** Methods whose requests Fastify reads a body of (it ignores one sent with GET or HEAD). */
const METHODS_WITH_BODY: ReadonlySet<string> = new Set(['post', 'put', 'patch', 'delete']);

/**
 * Error responses as they are sent. The zod transform declares every response `application/json`,
 * but every 4xx/5xx answer is problem+json (plugins/errors.ts), and a client that picks its decoder
 * by content type would find no schema for it.
 */
function describeErrors(paths: unknown): unknown {
  const out: Record<string, Record<string, unknown>> = {};
  for (const [path, item] of Object.entries((paths ?? {}) as Record<string, Record<string, unknown>>)) {
    out[path] = {};
    for (const [method, value] of Object.entries(item)) {
      const operation = value as Operation;
      if (typeof operation !== 'object' || operation === null || operation.responses === undefined) {
        out[path][method] = value;
        continue;
      }
      const responses: Record<string, Response> = {};
      for (const [status, response] of Object.entries(operation.responses)) {
        const json = response.content?.['application/json'];
        const isError = /^[45]/.test(status);
        responses[status] =
          isError && json !== undefined
            ? { ...response, content: { 'application/problem+json': json } }
            : response;
      }
      // 413 and 415 wherever a body can be sent, also to an operation that reads none (POST
      // /v1/auth/logout-all, a DELETE…): its body is read too, so a body over the limit is 413 and
      // one in a type no parser reads (`curl -d ''` sends a form type) is 415; they were sent
      // without being declared (review 33).
      const takesBody = operation.requestBody !== undefined || METHODS_WITH_BODY.has(method);
      const implied = { ...(takesBody ? WITH_BODY : {}), ...ANY_ROUTE };
      for (const [status, response] of Object.entries(implied)) {
        const listed = responses[status];
        responses[status] =
          listed === undefined
            ? { ...response, content: PROBLEM_CONTENT }
            : { ...listed, ...(response.headers === undefined ? {} : { headers: response.headers }) };
      }
      // A body the route lets the client leave out is not `required` (the SDK sends none).
      const { [OPTIONAL_BODY]: optionalBody, ...documented } = operation;
      out[path][method] = {
        ...documented,
        ...(optionalBody === true && operation.requestBody !== undefined
          ? { requestBody: { ...operation.requestBody, required: false } }
          : {}),
        responses,
      };
    }
  }
  return out;
}

const transformObject: TransformObject = (input) => {
  const document = jsonSchemaTransformObject(input);
  const { components } = document as { paths?: unknown; components?: Components };
  const paths = describeErrors((document as { paths?: unknown }).paths);
  return { ...document, paths, components: reachableComponents(paths, components ?? {}) } as typeof document;
};

export async function registerOpenApi(app: FastifyInstance, version: string): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'gigwire REST API',
        version,
        description:
          'Accounts, profiles and operations of gigwire. Errors are RFC 9457 problem+json with a stable `code` ' +
          '(see protocol/PROTOCOL.md). Access tokens are EdDSA JWTs verifiable from /.well-known/jwks.json.',
        license: { name: 'MIT', identifier: 'MIT' },
      },
      // Relative: the API is at the origin that serves this document, whatever name a proxy gives it.
      servers: [{ url: '/', description: 'The gigwire node serving this document' }],
      // Declared here so generators group operations under described tags; a route's tag that is not
      // listed fails test/integration/openapi-lint.int.test.ts.
      tags: [
        { name: 'auth', description: 'Accounts, sessions, passwords and the token-verifying keys' },
        { name: 'profiles', description: 'Own profile, public profiles and worker search' },
        { name: 'contacts', description: 'Contacts (mutual contacts see each other online)' },
        {
          name: 'rooms',
          description: 'Chat rooms and their stored messages (live traffic is on the WebSocket)',
        },
        { name: 'jobs', description: 'The job board and job categories' },
        { name: 'bids', description: 'Bids on jobs' },
        { name: 'contracts', description: 'Contracts from accepted bids: delivery, approval, disputes' },
        { name: 'reviews', description: 'Reviews of completed contracts' },
        { name: 'wallet', description: 'Balance, top-ups, withdrawals, transfers and history' },
        { name: 'payments', description: 'Payments with the provider and its webhook' },
        { name: 'notifications', description: 'Notifications and their delivery preferences' },
        { name: 'admin', description: "Operators' actions (admin role)" },
      ],
      components: {
        securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
      },
    },
    transform,
    transformObject,
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
}
