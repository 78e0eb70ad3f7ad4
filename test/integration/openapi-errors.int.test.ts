/**
 * The OpenAPI document describes error answers as they are sent: `application/problem+json` with
 * the Problem schema (before, the zod transform declared them `application/json`, which no error
 * answer has), and the answers any route may give are declared on every operation: 429 (the rate
 * limit is global), 500, 503 (shutting down, a dependency down), and 413 where the operation takes
 * a body. Checked against a real node's answers for a few routes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BODY_LIMIT_BYTES } from '../../src/http/app.js';
import { startTestNode, type TestNode } from '../support/context.js';
import { httpClient, type Registered, registerUser } from '../support/http.js';

type Response = { content?: Record<string, unknown>; headers?: Record<string, unknown> };
type Operation = { requestBody?: unknown; responses: Record<string, Response> };
type Doc = { paths: Record<string, Record<string, Operation>> };

describe('OpenAPI error responses', () => {
  let node: TestNode;
  let api: ReturnType<typeof httpClient>;
  let a: Registered;
  let doc: Doc;
  beforeAll(async () => {
    node = await startTestNode();
    api = httpClient(node.node.baseUrl);
    a = await registerUser(api);
    doc = (await api.get<Doc>('/openapi.json')).body;
  }, 60_000);
  afterAll(async () => {
    await node?.stop();
  });

  const operations = () =>
    Object.entries(doc.paths).flatMap(([path, item]) =>
      Object.entries(item).map(([method, operation]) => ({ name: `${method} ${path}`, operation })),
    );
  const declared = (path: string, method: string, status: number) =>
    Object.keys(doc.paths[path]?.[method]?.responses[String(status)]?.content ?? {});
  const sentType = (headers: Headers) => headers.get('content-type')?.split(';')[0] ?? '';

  it('declares every error response as problem+json with the Problem schema, and only so', () => {
    for (const { name, operation } of operations()) {
      for (const [status, response] of Object.entries(operation.responses)) {
        if (!/^[45]/.test(status)) continue;
        expect(response.content, `${name} ${status}`).toEqual({
          'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } },
        });
      }
    }
  });

  it('declares 429 (with Retry-After), 500 and 503 on every operation, 413 on every one with a body', () => {
    for (const { name, operation } of operations()) {
      expect(operation.responses['429']?.headers, name).toHaveProperty('Retry-After');
      expect(operation.responses, name).toHaveProperty('500');
      // A node shutting down, or whose database or Redis is down, answers UNAVAILABLE on any route.
      expect(operation.responses, name).toHaveProperty('503');
      if (operation.requestBody !== undefined) expect(operation.responses, name).toHaveProperty('413');
    }
  });

  it('a 404, a 401 and a 413 are sent with the content type declared for them', async () => {
    const missing = await api.get('/v1/users/00000000-0000-4000-8000-000000000000', a.accessToken);
    expect(missing.status).toBe(404);
    expect(declared('/v1/users/{id}', 'get', 404)).toEqual([sentType(missing.headers)]);

    const anonymous = await api.get('/v1/me');
    expect(anonymous.status).toBe(401);
    expect(declared('/v1/me', 'get', 401)).toEqual([sentType(anonymous.headers)]);

    const huge = await api.call('PATCH', '/v1/me', {
      token: a.accessToken,
      body: { bio: 'x'.repeat(BODY_LIMIT_BYTES) },
    });
    expect(huge.status).toBe(413);
    expect(declared('/v1/me', 'patch', 413)).toEqual([sentType(huge.headers)]);
  });
});
