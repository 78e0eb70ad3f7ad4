import type { ColumnType, Generated } from 'kysely';

/** One row: the identity of this gigwire installation, created by the first start. */
export interface InstallationTable {
  singleton: Generated<boolean>;
  id: Generated<string>;
  created_at: ColumnType<Date, never, never>;
}
