/**
 * Regression: processes started together on a database without a signing key (compose, `npm run
 * cluster`, GATEWAY_PROCESSES) each created a key of their own, signed with it, and refused the
 * others' tokens (401) until their next reload. They must agree on one key from the start.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, type DbHandle } from '../../src/db/create-db.js';
import { createTokenService } from '../../src/domain/auth/tokens.js';
import { systemClock } from '../../src/platform/clock.js';
import { createLogger } from '../../src/platform/logger.js';
import { createMigratedDatabase, type TestDatabase } from '../support/context.js';
import { testTokenClaims as claims, testTokenSettings as settings } from '../support/tokens.js';

describe('signing keys on a first start of several processes', () => {
  let db: TestDatabase;
  const handles: DbHandle[] = [];

  beforeAll(async () => {
    db = await createMigratedDatabase();
    const log = createLogger({ level: 'silent', pretty: false });
    for (let i = 0; i < 4; i++)
      handles.push(await createDb({ kind: 'postgres', url: db.url, poolMax: 2 }, log));
  });
  afterAll(async () => {
    for (const handle of handles) await handle.close();
    await db.drop();
  });

  it('creates one key that every process signs with and verifies', async () => {
    const services = handles.map((handle) => createTokenService(handle.db, settings, systemClock));
    const sets = await Promise.all(services.map((service) => service.jwks()));
    const kids = sets.map((set) => set.keys.map((key) => key.kid));
    expect(new Set(kids.flat()).size).toBe(1);
    for (const signer of services) {
      const { token } = await signer.issue(claims);
      for (const verifier of services) await expect(verifier.verify(token)).resolves.toBeDefined();
    }
    const rows = await handles[0]!.db.selectFrom('signing_keys').select('kid').execute();
    expect(rows).toHaveLength(1);
  });
});
