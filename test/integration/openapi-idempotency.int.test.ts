/**
 * The OpenAPI document says Idempotency-Key is required exactly where the server requires it (every
 * route through runIdempotentRoute): it used to list the header as optional there, so generated
 * clients omitted it and got 400. The answer to a missing key stays the server's own problem
 * (400 VALIDATION_FAILED naming `headers.idempotency-key`), the same on every such route, and routes
 * where the key is optional still say so.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestNode, type TestNode } from '../support/context.js';
import { httpClient, type Registered, registerUser } from '../support/http.js';

type Parameter = { in: string; name: string; required?: boolean; description?: string };
type Operation = { operationId?: string; parameters?: Parameter[] };
type Doc = { paths: Record<string, Record<string, Operation>> };

/** Operations that go through runIdempotentRoute unconditionally. */
const REQUIRED = [
  'placeBid',
  'acceptBid',
  'deliverContract',
  'requestContractChanges',
  'approveContract',
  'cancelContract',
  'disputeContract',
  'resolveContract',
  'createTopUp',
  'createWithdrawal',
  'createTransfer',
  'voidParkedTopUp',
];

const MISSING_KEY_PROBLEM = {
  code: 'VALIDATION_FAILED',
  status: 400,
  detail: 'an Idempotency-Key header of 1-255 visible ASCII characters is required',
  errors: [{ path: 'headers.idempotency-key', message: 'required, 1-255 visible ASCII characters' }],
};

describe('Idempotency-Key in the OpenAPI document', () => {
  let node: TestNode;
  let api: ReturnType<typeof httpClient>;
  let user: Registered;
  let doc: Doc;
  beforeAll(async () => {
    node = await startTestNode();
    api = httpClient(node.node.baseUrl);
    user = await registerUser(api);
    doc = (await api.get<Doc>('/openapi.json')).body;
  }, 60_000);
  afterAll(async () => {
    await node?.stop();
  });

  const keyParameter = (operationId: string) => {
    const operation = Object.values(doc.paths)
      .flatMap((item) => Object.values(item))
      .find((op) => op.operationId === operationId);
    expect(operation, operationId).toBeDefined();
    return operation?.parameters?.find((p) => p.in === 'header' && p.name === 'idempotency-key');
  };

  it('is a required header of every operation whose handler requires it', () => {
    for (const operationId of REQUIRED) {
      const parameter = keyParameter(operationId);
      expect(parameter, operationId).toBeDefined();
      expect(parameter?.required, operationId).toBe(true);
    }
    // The marker that carries "required by the handler" into the document does not leak into it.
    expect(JSON.stringify(doc)).not.toContain('x-required-by-handler');
  });

  it('stays optional where the key is optional', () => {
    expect(keyParameter('submitReview')?.required ?? false).toBe(false);
    for (const operationId of ['createJob', 'createRoom']) {
      const parameter = keyParameter(operationId);
      expect(parameter, operationId).toBeDefined();
      expect(parameter?.required ?? false, operationId).toBe(false);
    }
  });

  it('missing, is answered with the server own problem on each route, naming headers.idempotency-key', async () => {
    const requests: { path: string; body?: unknown; headers?: Record<string, string> }[] = [
      { path: '/v1/wallet/top-ups', body: { amount: 100, card: '4242424242424242' } },
      { path: '/v1/wallet/transfers', body: { toUserId: randomUUID(), amount: 1 } },
      { path: `/v1/jobs/${randomUUID()}/bids`, body: { amount: 100, deliveryDays: 3 } },
      { path: `/v1/bids/${randomUUID()}/accept`, headers: { 'if-match': '"1"' } },
      { path: `/v1/contracts/${randomUUID()}/deliver` },
    ];
    for (const request of requests) {
      const response = await api.call('POST', request.path, {
        token: user.accessToken,
        ...(request.body === undefined ? {} : { body: request.body }),
        ...(request.headers === undefined ? {} : { headers: request.headers }),
      });
      expect(response.status, request.path).toBe(400);
      expect(response.headers.get('content-type'), request.path).toContain('application/problem+json');
      expect(response.body, request.path).toMatchObject(MISSING_KEY_PROBLEM);
    }
  });
});
