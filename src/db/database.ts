/** Kysely's view of the schema: one `*.table.ts` per table, gathered here. */
import type { InstallationTable } from './tables/installation.table.js';

export interface Database {
  installation: InstallationTable;
}
