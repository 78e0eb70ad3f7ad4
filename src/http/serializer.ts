/**
 * A compiled response serializer for hot routes (issue 15): fast-json-stringify, Fastify's own
 * serializer, built once per route and status from the JSON Schema of the route's zod response
 * schema, instead of fastify-type-provider-zod's per-request zod encode + JSON.stringify (~5 % of
 * GET /v1/me's CPU in the profile).
 *
 * The zod schema stays the route's schema: it still types the handler's return value and produces
 * the OpenAPI document. Only the bytes of a 2xx answer come from the compiled function; every other
 * status (the problem+json errors) keeps zod's serializer, so errors are unchanged.
 *
 * What the zod check did that this keeps: a property the schema does not name is never written (an
 * object schema must be closed, `additionalProperties: false`, and fast-json-stringify writes only
 * the listed properties); a missing required property fails the response (500 INTERNAL, logged). What
 * it no longer checks at run time: formats, enums and number ranges of values the handler returns.
 * Those come from the typed DTO functions (the handler's return type is inferred from the zod
 * schema), so a route opts in only when its answer is built that way; `compiled-serializer.test.ts`
 * holds the compiled output of each opted-in schema byte for byte to zod's.
 *
 * Only plain shapes compile: closed objects, arrays, strings, numbers, booleans, enums and
 * nullable or optional ones of those. Anything else (unions, records, loose objects, tuples) makes
 * the compiler throw at start, so a route cannot silently lose its check or its shape.
 */
import fastJson from 'fast-json-stringify';
import { serializerCompiler as zodSerializerCompiler } from 'fastify-type-provider-zod';
import { z } from 'zod';

type JsonSchema = Record<string, unknown>;

/** What Fastify passes a serializer compiler (its FastifyRouteSchemaDef, not exported). */
interface RouteSchema {
  readonly schema: unknown;
  readonly method: string;
  readonly url: string;
  readonly httpStatus?: string;
}

export class UnsupportedResponseSchemaError extends Error {}

const SCALAR_TYPES = new Set(['string', 'number', 'integer', 'boolean', 'null']);

const isNullSchema = (schema: unknown): boolean =>
  typeof schema === 'object' && schema !== null && (schema as JsonSchema).type === 'null';

/**
 * The JSON Schema fast-json-stringify needs for what `schema` outputs: references resolved inline,
 * `anyOf [X, null]` as `type: [X's type, 'null']` (fast-json-stringify would otherwise run an Ajv
 * validation per value to pick the branch), and every keyword that only validates dropped (formats,
 * patterns, enums, ranges): the serializer does not check them, and keeping them would make it
 * parse date-time strings. Integers are written as numbers: fast-json-stringify would truncate a
 * fraction where zod refused it; as a number it is written as JSON.stringify would.
 */
export function serializationSchema(schema: z.ZodType): JsonSchema {
  const json = z.toJSONSchema(schema, { io: 'output', target: 'draft-7', unrepresentable: 'throw' });
  const definitions = (json.definitions ?? {}) as Record<string, JsonSchema>;
  const resolving = new Set<string>();

  const reduce = (node: JsonSchema, where: string): JsonSchema => {
    const ref = node.$ref;
    if (typeof ref === 'string') {
      const name = ref.startsWith('#/definitions/') ? ref.slice('#/definitions/'.length) : undefined;
      const target = name === undefined ? undefined : definitions[name];
      if (name === undefined || target === undefined) throw unsupported(where, `reference ${ref}`);
      if (resolving.has(name)) throw unsupported(where, `recursive reference ${ref}`);
      resolving.add(name);
      try {
        return reduce(target, where);
      } finally {
        resolving.delete(name);
      }
    }
    // A described reference: draft 7 ignores siblings of $ref, so zod wraps it as `allOf: [ref]`.
    const allOf = node.allOf;
    if (Array.isArray(allOf)) {
      if (allOf.length !== 1) throw unsupported(where, 'an intersection');
      return reduce(allOf[0] as JsonSchema, where);
    }
    const anyOf = node.anyOf;
    if (Array.isArray(anyOf)) {
      const others = anyOf.filter((branch) => !isNullSchema(branch));
      const [only] = others;
      if (anyOf.length !== 2 || others.length !== 1 || only === undefined) {
        throw unsupported(where, 'a union other than `X | null`');
      }
      const inner = reduce(only as JsonSchema, where);
      const types = Array.isArray(inner.type) ? inner.type : [inner.type];
      return { ...inner, type: types.includes('null') ? types : [...types, 'null'] };
    }
    const types = Array.isArray(node.type) ? (node.type as unknown[]) : [node.type];
    const kind = types.find((type) => type !== 'null');
    if (kind === 'object') {
      if (node.additionalProperties !== false) throw unsupported(where, 'an object open to other keys');
      const properties: Record<string, JsonSchema> = {};
      for (const [key, value] of Object.entries((node.properties ?? {}) as Record<string, JsonSchema>)) {
        properties[key] = reduce(value, `${where}.${key}`);
      }
      return { type: node.type, properties, required: requiredPrefix(node), additionalProperties: false };
    }
    if (kind === 'array') {
      const items = node.items;
      if (typeof items !== 'object' || items === null || Array.isArray(items) || 'prefixItems' in node) {
        throw unsupported(where, 'a tuple');
      }
      return { type: node.type, items: reduce(items as JsonSchema, `${where}[]`) };
    }
    if (!types.every((type) => typeof type === 'string' && SCALAR_TYPES.has(type))) {
      throw unsupported(where, `type ${JSON.stringify(node.type ?? null)}`);
    }
    const written = types.map((type) => (type === 'integer' ? 'number' : type));
    return { type: written.length === 1 ? written[0] : written };
  };

  return reduce(json as JsonSchema, '$');
}

/**
 * The required keys fast-json-stringify may check: those before the object's first optional key.
 * It writes required keys first, so naming a required key that follows an optional one would move
 * it ahead of it, and the answer's key order would differ from zod's (the schema's order). A key
 * after an optional one that is missing is left out instead of failing the answer.
 */
function requiredPrefix(node: JsonSchema): string[] {
  const required = new Set(Array.isArray(node.required) ? (node.required as string[]) : []);
  const prefix: string[] = [];
  for (const key of Object.keys((node.properties ?? {}) as object)) {
    if (!required.has(key)) break;
    prefix.push(key);
  }
  return prefix;
}

const unsupported = (where: string, what: string) =>
  new UnsupportedResponseSchemaError(
    `compiled response serializer: ${what} at ${where}; use the zod serializer for this route`,
  );

/** A serializer compiled from a zod schema's output shape (throws for shapes it cannot compile). */
export function compileSerializer(schema: z.ZodType): (data: unknown) => string {
  return fastJson(serializationSchema(schema) as unknown as Parameters<typeof fastJson>[0]);
}

const isSuccess = (httpStatus: string | undefined): boolean =>
  httpStatus !== undefined && /^2(\d\d|XX)$/i.test(httpStatus);

/**
 * The route-level `serializerCompiler` of an opted-in route: compiled for its 2xx schemas (a 204's
 * `z.null()` included), zod's serializer for the error statuses.
 */
export const compiledSerializerCompiler = (route: RouteSchema): ((data: unknown) => string) => {
  if (!isSuccess(route.httpStatus) || !(route.schema instanceof z.ZodType)) {
    return zodSerializerCompiler(route as Parameters<typeof zodSerializerCompiler>[0]);
  }
  return compileSerializer(route.schema);
};
