/**
 * Money review 31: the money-field check of the input guard (a fraction or an exponent is 400, not
 * read as the nearest integer) covered `toHirer` of an admin's split but not its `toWorker`:
 * `"toWorker": 4499.9999999999999` was read as 4500 and passed the schema's integer check.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { restAppWithStubs } from '../app.testing.js';

const ADMIN = '00000000-0000-4000-8000-000000000009';
const CONTRACT = '00000000-0000-4000-8000-0000000000c1';
// The contracts service is an empty stub: a body that passes the guard and the schema reaches it.
const restApp = () =>
  restAppWithStubs({
    auth: { authenticateNow: () => ({ userId: ADMIN, roles: ['admin'], sessionId: 's' }) },
    contracts: { contracts: {}, idempotency: {} },
  });

let app: Awaited<ReturnType<typeof restApp>> | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

describe("an admin's split with a money field written with a fraction", () => {
  it('is 400 VALIDATION_FAILED naming body.toWorker as well as body.toHirer', async () => {
    app = await restApp();
    const resolve = (payload: string) =>
      app?.inject({
        method: 'POST',
        url: `/v1/admin/contracts/${CONTRACT}/resolve`,
        headers: {
          authorization: 'Bearer token',
          'content-type': 'application/json',
          'idempotency-key': 'k-1',
        },
        payload,
      });
    for (const [payload, path] of [
      ['{"toWorker": 4499.9999999999999, "toHirer": 500}', 'body.toWorker'],
      ['{"toWorker": 4500, "toHirer": 5e2}', 'body.toHirer'],
    ] as const) {
      const answer = await resolve(payload);
      expect(answer?.statusCode, payload).toBe(400);
      expect(answer?.json(), payload).toMatchObject({ code: 'VALIDATION_FAILED', errors: [{ path }] });
    }
  });
});
