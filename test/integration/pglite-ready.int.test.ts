/**
 * Readiness of the embedded database. PGlite has one connection: a `select 1` waits behind every
 * query and transaction of the node, so under an ordinary burst the ready check timed out and a
 * busy, healthy node answered 503 (an orchestrator would restart it). It now counts as answering
 * while queries keep finishing, and still fails once nothing has finished for a while (stuck).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'kysely';
import { afterAll, expect, it } from 'vitest';
import type { DbHandle } from '../../src/db/create-db.js';
import { captureLogs, openMigratedPglite } from '../support/context.js';

let handle: DbHandle | undefined;
afterAll(async () => {
  await handle?.close();
});

it('answers the ready check while a transaction holds the connection and queries finish, fails once stuck', async () => {
  handle = await openMigratedPglite(captureLogs().log, { progressMs: 1_000 });
  const { db } = handle;
  await handle.ping(1_000);

  let release: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  let entered: () => void = () => undefined;
  const inside = new Promise<void>((resolve) => {
    entered = resolve;
  });
  const held = db.transaction().execute(async (trx) => {
    await sql`select 1`.execute(trx);
    entered();
    await gate;
  });
  await inside;
  // Busy: the connection is taken, but a query finished just now.
  await expect(handle.ping(200)).resolves.toBeUndefined();
  // Nothing finished for longer than the progress window: stuck.
  await sleep(1_500);
  await expect(handle.ping(200)).rejects.toThrow(/no answer within 200 ms/);
  release();
  await held;
  await handle.ping(1_000);
});
