import { DummyDriver, Kysely, PostgresAdapter, PostgresIntrospector, PostgresQueryCompiler } from 'kysely';
import { describe, expect, it } from 'vitest';
import type { Database } from '../database.js';
import { unappliedProviderEvents } from './payments.repo.js';

/** A Kysely that compiles PostgreSQL and answers no rows, keeping every statement it was sent. */
function compilingDb() {
  const sent: { sql: string; parameters: readonly unknown[] }[] = [];
  const db = new Kysely<Database>({
    dialect: {
      createAdapter: () => new PostgresAdapter(),
      createDriver: () => new DummyDriver(),
      createIntrospector: (kysely) => new PostgresIntrospector(kysely),
      createQueryCompiler: () => new PostgresQueryCompiler(),
    },
    log: (event) => {
      sent.push({ sql: event.query.sql, parameters: event.query.parameters });
    },
  });
  return { db, sent };
}

describe('unappliedProviderEvents', () => {
  it('sends 70 000 left-out event ids as one text[] parameter, not one bind each (65 535 at most)', async () => {
    const { db, sent } = compilingDb();
    const ids = Array.from({ length: 70_000 }, (_, i) => `msg_${i}`);
    await unappliedProviderEvents(db, new Date(), 100, ids);
    expect(sent).toHaveLength(1);
    const [statement] = sent;
    expect(statement?.sql).toContain('::text[]');
    expect(statement?.parameters.length).toBeLessThan(10);
    expect(statement?.parameters).toContainEqual(ids);
  });
});
