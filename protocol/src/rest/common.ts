/** Shapes shared by every REST resource. */
import { z } from 'zod';
import { ErrorCode } from '../codes.js';

/** RFC 9457 problem details, as every REST error is sent. */
export const Problem = z
  .looseObject({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    code: z.enum(Object.values(ErrorCode) as [ErrorCode, ...ErrorCode[]]),
    detail: z.string(),
    instance: z.string(),
    requestId: z.string(),
    errors: z
      .array(z.object({ path: z.string(), message: z.string() }))
      .optional()
      .describe('Field errors of a VALIDATION_FAILED problem; path is dotted, e.g. `body.email`.'),
    retryAfterS: z
      .number()
      .int()
      .optional()
      .describe('With RATE_LIMITED: seconds until a retry may succeed.'),
  })
  .meta({ id: 'Problem' });
export type Problem = z.infer<typeof Problem>;

/** Opaque cursor; pass back `nextCursor` to get the following page. */
export const Cursor = z.string().max(200).describe("Opaque cursor from a previous page's `nextCursor`.");

/**
 * A whole number in a query string: decimal digits only (leading zeros allowed), else 400
 * VALIDATION_FAILED naming the parameter. Not `z.coerce.number()`, which read what `Number()` reads:
 * `0x10` as 16, `1e1` as 10, `0b11` as 3, ` 5`, `+5` and `5.0` as 5. Documented as an integer.
 */
export function queryInt(min: number, max: number, fallback?: number) {
  const int = z.int({ error: 'must be a whole number in decimal digits' }).min(min).max(max);
  // The default inside: outside, the OpenAPI document lost it.
  return z.preprocess(
    (value) => (typeof value === 'string' && /^\d{1,16}$/.test(value) ? Number(value) : value),
    fallback === undefined ? int : int.default(fallback),
  );
}

export const PageLimit = queryInt(1, 100, 20);

export const page = <T extends z.ZodType>(item: T) =>
  z.object({ data: z.array(item), nextCursor: z.string().nullable() });

/**
 * A list whose items must differ (`["worker", "worker"]` named one role twice and was stored so):
 * refused VALIDATION_FAILED naming the list, rather than silently de-duplicated.
 */
export const distinct = <T extends z.ZodArray<z.ZodType>>(list: T, what: string) =>
  list.refine((items) => new Set(items).size === items.length, { error: `must not name a ${what} twice` });

export const Iso = z.iso.datetime({ offset: true }).describe('RFC 3339 timestamp');
