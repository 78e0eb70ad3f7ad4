/**
 * Test scaffolding of the email worker's unit tests: a twin of the `emails` table holding one row.
 * It answers the query-builder calls the worker makes: a read answers the row where its `where`s
 * hold (`=` and `in`), an update applies its `set` to the row where they hold (`attempts + n`
 * included) and is recorded in `updates`.
 */
import type { EmailWorkerDeps } from './processor.js';

export function emailsTableTwin(row: Record<string, unknown>): {
  readonly db: EmailWorkerDeps['db'];
  readonly updates: Record<string, unknown>[];
} {
  const updates: Record<string, unknown>[] = [];
  const increment = (column: string, op: string, by: unknown) =>
    op === '+' && typeof row[column] === 'number' && typeof by === 'number'
      ? row[column] + by
      : { expression: [column, op, by] };
  const query = (): unknown => {
    let values: Record<string, unknown> | undefined;
    const conditions: [string, string, unknown][] = [];
    const holds = () =>
      conditions.every(([column, op, value]) =>
        op === '=' ? row[column] === value : op === 'in' ? (value as unknown[]).includes(row[column]) : false,
      );
    const builder: unknown = new Proxy(
      {},
      {
        get: (_target, property) => {
          switch (property) {
            case 'then':
              return undefined;
            case 'set':
              return (set: unknown) => {
                values = typeof set === 'function' ? set(increment) : (set as Record<string, unknown>);
                return builder;
              };
            case 'where':
              return (column: string, op: string, value: unknown) => {
                conditions.push([column, op, value]);
                return builder;
              };
            case 'executeTakeFirst':
            case 'executeTakeFirstOrThrow':
              return async () => (holds() ? row : undefined);
            case 'execute':
              return async () => {
                if (values !== undefined && holds()) {
                  updates.push(values);
                  Object.assign(row, values);
                }
                return [];
              };
            default:
              return () => builder;
          }
        },
      },
    );
    return builder;
  };
  return { db: { selectFrom: query, updateTable: query } as unknown as EmailWorkerDeps['db'], updates };
}
