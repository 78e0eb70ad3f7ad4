import { afterEach, describe, expect, it } from 'vitest';
import { restAppWithStubs } from '../app.testing.js';

const USER = '00000000-0000-4000-8000-000000000001';
// The payments service is an empty stub: a body that passes the guard and the schema reaches it.
const restApp = () =>
  restAppWithStubs({
    auth: { authenticateNow: () => ({ userId: USER, roles: ['worker', 'hirer'], sessionId: 's' }) },
    payments: { payments: {}, idempotency: {} },
  });

let app: Awaited<ReturnType<typeof restApp>> | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

const topUp = (payload: string, headers: Record<string, string> = {}) =>
  app?.inject({
    method: 'POST',
    url: '/v1/wallet/top-ups',
    headers: {
      authorization: 'Bearer token',
      'content-type': 'application/json',
      'idempotency-key': 'k-1',
      ...headers,
    },
    payload,
  });

describe('a money field written with a fraction or an exponent', () => {
  it('is 400 VALIDATION_FAILED naming the field, also when the double it reads as is an integer', async () => {
    app = await restApp();
    for (const amount of ['1.0000000000000001', '1.0', '1e2', '100E0', '-1.5', '9007199254740990.6']) {
      const answer = await topUp(`{"amount": ${amount}, "card": "4242424242424242"}`);
      expect(answer?.statusCode, amount).toBe(400);
      expect(answer?.json(), amount).toMatchObject({
        code: 'VALIDATION_FAILED',
        errors: [{ path: 'body.amount' }],
      });
    }
  });

  it('leaves integers, and the same text inside a string, to the route', async () => {
    app = await restApp();
    // Past the guard and the schema: the (empty) payments service is reached.
    const integer = await topUp('{"amount": 100, "card": "4242424242424242"}');
    expect(integer?.statusCode).not.toBe(400);
    // Past the guard: the schema refuses the unknown `note`, not the amount.
    const inString = await topUp('{"amount":1,"card":"4242424242424242","note":"\\"amount\\": 1.5"}');
    expect(inString?.statusCode).toBe(400);
    expect(inString?.json()).toMatchObject({
      errors: [{ path: 'body', message: 'Unrecognized key: "note"' }],
    });
  });
});

describe('a body sent with a transfer coding besides chunked', () => {
  it('is 415 naming it (the bytes are not decoded), where a chunked body is read as sent', async () => {
    app = await restApp();
    const send = (transferEncoding: string) =>
      topUp('{"amount": 1.5, "card": "4242424242424242"}', { 'transfer-encoding': transferEncoding });
    const gzip = await send('gzip, chunked');
    expect(gzip?.statusCode).toBe(415);
    expect(gzip?.json()).toMatchObject({ code: 'UNSUPPORTED_MEDIA_TYPE', transferEncoding: 'gzip, chunked' });
    // Read as JSON: the money check answers, not the transfer coding's.
    expect((await send('Chunked'))?.json()).toMatchObject({ code: 'VALIDATION_FAILED' });
  });
});
