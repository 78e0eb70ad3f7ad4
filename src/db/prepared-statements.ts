/**
 * Named prepared statements for the hot paths. A statement whose text starts with
 * `preparedStatementMark(name)` runs on PostgreSQL as a named prepared statement: each pool client
 * parses and plans it once per connection instead of on every call. `createDb` gives its pool this
 * client. The text must never change (one name, one text; parameters carry the variable parts,
 * lists as arrays through `unnest`). For the node-wide message insert that is ~3× less PostgreSQL
 * CPU per statement and ~40 % less client CPU (README "Performance"). On PGlite the mark is only
 * a comment. Return explicit columns, never `*`: a prepared statement whose result columns change
 * under it (a migration adding a column) fails with "cached plan must not change result type".
 * Behind a pooler, PgBouncer in transaction mode needs `max_prepared_statements` (1.21+).
 */
import pg from 'pg';

/** The mark that makes a statement prepared (see the header); `name` is [a-z][a-z0-9_]*. */
export const preparedStatementMark = (name: string) => `/* prepared:${name} */`;

const PREPARED_MARK = /^\/\* prepared:([a-z][a-z0-9_]*) \*\//;

type QueryMethod = (this: pg.Client, config: unknown, values?: unknown, callback?: unknown) => unknown;
const plainQuery = pg.Client.prototype.query as unknown as QueryMethod;

/** pg.Client that sends statements carrying `preparedStatementMark` as named prepared statements. */
export class PreparingClient extends pg.Client {}
const preparingQuery: QueryMethod = function (this: pg.Client, config, values, callback) {
  if (typeof config === 'string' && Array.isArray(values)) {
    const name = PREPARED_MARK.exec(config)?.[1];
    if (name !== undefined) return plainQuery.call(this, { name, text: config, values }, callback);
  }
  return plainQuery.call(this, config, values, callback);
};
Object.defineProperty(PreparingClient.prototype, 'query', { value: preparingQuery, writable: true });
