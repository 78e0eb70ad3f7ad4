/**
 * The plans of the queries our own code sends, for index checks: `capturingDb(db)` records every
 * query compiled through it (with its parameters), `explain(db, query)` asks PostgreSQL for the
 * plan of one of them as it would run it. Testing the real query (not a hand-written copy) keeps an
 * index check honest when the repository's SQL changes.
 */
import {
  CompiledQuery,
  type Kysely,
  type KyselyPlugin,
  type PluginTransformQueryArgs,
  type PluginTransformResultArgs,
  type QueryResult,
  type RootOperationNode,
  type UnknownRow,
} from 'kysely';

export interface CapturingDb<DB> {
  /** Use this handle as the `db` of the code under test. */
  readonly db: Kysely<DB>;
  /** Every query compiled through `db` since the last `take()`, oldest first; clears the list. */
  readonly take: () => CompiledQuery[];
}

export function capturingDb<DB>(db: Kysely<DB>): CapturingDb<DB> {
  let captured: CompiledQuery[] = [];
  const plugin: KyselyPlugin = {
    transformQuery(args: PluginTransformQueryArgs): RootOperationNode {
      captured.push(db.getExecutor().compileQuery(args.node, args.queryId));
      return args.node;
    },
    async transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
      return args.result;
    },
  };
  return {
    db: db.withPlugin(plugin),
    take: () => {
      const out = captured;
      captured = [];
      return out;
    },
  };
}

/**
 * EXPLAIN of `query` with its parameters bound (a custom plan for those values, as at run time).
 * `settings` are applied with SET LOCAL in the same transaction (e.g. `{enable_seqscan: 'off'}`).
 */
export async function explain<DB>(
  db: Kysely<DB>,
  query: CompiledQuery,
  settings: Record<string, string> = {},
): Promise<string> {
  return db.transaction().execute(async (trx) => {
    for (const [name, value] of Object.entries(settings)) {
      await trx.executeQuery(CompiledQuery.raw(`set local ${name} = '${value}'`));
    }
    const result = await trx.executeQuery<{ 'QUERY PLAN': string }>(
      CompiledQuery.raw(`explain ${query.sql}`, [...query.parameters]),
    );
    return result.rows.map((row) => row['QUERY PLAN']).join('\n');
  });
}
