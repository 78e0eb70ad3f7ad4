import { afterEach, describe, expect, it } from 'vitest';
import { signedInRestApp } from '../app.testing.js';

const USER = '00000000-0000-4000-8000-000000000001';
const CONTRACT = '00000000-0000-4000-8000-000000000002';
const TRANSITIONS = ['deliver', 'request-changes', 'approve', 'cancel', 'dispute'];

const restApp = () => signedInRestApp(USER);

let app: Awaited<ReturnType<typeof restApp>> | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

const post = (url: string, headers: Record<string, string> = {}) =>
  app?.inject({
    method: 'POST',
    url,
    headers: { authorization: 'Bearer token', 'content-type': 'application/json', ...headers },
    payload: '',
  });

describe('an optional body sent empty with a JSON content type', () => {
  it('is no body to a contract transition: the route goes on to its own checks', async () => {
    app = await restApp();
    for (const transition of TRANSITIONS) {
      const answer = await post(`/v1/contracts/${CONTRACT}/${transition}`);
      expect(answer?.statusCode, transition).toBe(400);
      // The Idempotency-Key the route requires is what is missing, not a body it does not need.
      expect(answer?.json(), transition).toMatchObject({
        code: 'VALIDATION_FAILED',
        errors: [{ path: 'headers.idempotency-key' }],
      });
    }
  });

  it('is still refused where the body is required', async () => {
    app = await restApp();
    const answer = await post(`/v1/contracts/${CONTRACT}/review`, { 'idempotency-key': 'k-1' });
    expect(answer?.statusCode).toBe(400);
    expect(answer?.json()).toMatchObject({ code: 'VALIDATION_FAILED' });
    expect(JSON.stringify(answer?.json())).toMatch(/[Bb]ody/);
  });

  it('is documented as optional in OpenAPI; required bodies stay required', async () => {
    app = await restApp();
    const response = await app.inject({ method: 'GET', url: '/openapi.json' });
    const doc = response.json();
    for (const transition of TRANSITIONS) {
      const operation = doc.paths[`/v1/contracts/{id}/${transition}`].post;
      expect(operation.requestBody.required, transition).toBe(false);
    }
    expect(doc.paths['/v1/contracts/{id}/review'].post.requestBody.required).toBe(true);
    expect(doc.paths['/v1/admin/contracts/{id}/resolve'].post.requestBody.required).toBe(true);
    expect(response.body).not.toContain('x-gigwire-optional-body');
  });
});
