/**
 * REST review 22c, on one real node:
 *
 * - A JSON route sent a body in another media type answers 415 UNSUPPORTED_MEDIA_TYPE, whatever the
 *   type. `text/plain` was read by Fastify's own text parser and handed to the route's schema as a
 *   string: 400 VALIDATION_FAILED "expected object", sending the client looking for a bug in its JSON
 *   (README: "a body in a media type the route does not read … is 415, not a validation error").
 * - A skill with a comma ("ui, ux") was stored, but `GET /v1/jobs?skills=` splits on commas: no
 *   search by skill could ever find that job. Skills refuse commas (job and worker alike), naming
 *   the field; rows stored before still read.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestNode, type TestNode } from '../support/context.js';
import { type HttpClient, httpClient, type Registered, registerUser } from '../support/http.js';

type Json = Record<string, unknown>;

let testNode: TestNode;
let api: HttpClient;
let hirer: Registered;
let categoryId: string;
let currency: string;

beforeAll(async () => {
  testNode = await startTestNode();
  api = httpClient(testNode.node.baseUrl);
  hirer = await registerUser(api, { roles: ['hirer', 'worker'] });
  const list = await api.get<{ data: { id: string; slug: string }[] }>('/v1/categories', hirer.accessToken);
  categoryId = list.body.data.find((c) => c.slug === 'software-development')?.id as string;
  const wallet = await api.get<{ currency: string }>('/v1/wallet', hirer.accessToken);
  currency = wallet.status === 200 ? wallet.body.currency : 'USD';
}, 60_000);

afterAll(async () => {
  await testNode?.stop();
});

const jobBody = (overrides: Json = {}): Json => ({
  title: 'Redesign a settings page',
  description: 'Two screens, one week.',
  categoryId,
  skills: ['figma'],
  budget: { kind: 'fixed', amount: 40_000, currency },
  remote: true,
  ...overrides,
});

describe('a JSON route and a body in another media type', () => {
  const send = (
    method: string,
    path: string,
    body: string,
    contentType: string | undefined,
    token?: string,
  ) =>
    fetch(`${testNode.node.baseUrl}${path}`, {
      method,
      headers: {
        ...(contentType === undefined ? {} : { 'content-type': contentType }),
        ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
      },
      body,
    });

  it('answers 415 UNSUPPORTED_MEDIA_TYPE problem+json for every type but JSON, text/plain too', async () => {
    const login = JSON.stringify({ login: hirer.username, password: hirer.password });
    const me = JSON.stringify({ displayName: 'Plain Text' });
    const job = JSON.stringify(jobBody());
    const types: (string | undefined)[] = [
      'text/plain',
      'text/plain; charset=utf-8',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      'application/xml',
    ];
    for (const contentType of types) {
      const cases = [
        await send('POST', '/v1/auth/login', login, contentType),
        await send('PATCH', '/v1/me', me, contentType, hirer.accessToken),
        await send('POST', '/v1/jobs', job, contentType, hirer.accessToken),
      ];
      for (const response of cases) {
        expect({ contentType, status: response.status }).toEqual({ contentType, status: 415 });
        expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
        const problem = (await response.json()) as Json;
        expect(problem.code).toBe('UNSUPPORTED_MEDIA_TYPE');
        expect(problem.detail).toMatch(/application\/json/);
      }
    }
    // Not changed by any of them.
    const after = await api.get<{ displayName: string | null }>('/v1/me', hirer.accessToken);
    expect(after.body.displayName).not.toBe('Plain Text');
  });

  it('answers a body without a Content-Type 415 too; JSON still works, and unknown paths stay 404', async () => {
    // fetch labels a string body text/plain: a Blob without a type sends no Content-Type.
    const untyped = await fetch(`${testNode.node.baseUrl}/v1/me`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${hirer.accessToken}` },
      body: new Blob([JSON.stringify({ displayName: 'No Type' })]),
    });
    expect(untyped.status).toBe(415);
    expect(((await untyped.json()) as Json).code).toBe('UNSUPPORTED_MEDIA_TYPE');
    const json = await send(
      'PATCH',
      '/v1/me',
      JSON.stringify({ displayName: 'Json' }),
      'application/json',
      hirer.accessToken,
    );
    expect(json.status).toBe(200);
    const unknown = await send('POST', '/v1/no-such-route', 'hello', 'text/plain', hirer.accessToken);
    expect(unknown.status).toBe(404);
  });
});

describe('skills and the comma that separates them in a search', () => {
  it('refuses a job skill with a comma, naming it; every other skill is still searchable', async () => {
    const refused = await api.post<Json>(
      '/v1/jobs',
      jobBody({ skills: ['figma', 'ui, ux'] }),
      hirer.accessToken,
    );
    expect(refused.status).toBe(400);
    expect(refused.body.code).toBe('VALIDATION_FAILED');
    expect(refused.body.errors).toEqual([
      expect.objectContaining({ path: 'body.skills.1', message: expect.stringMatching(/comma/) }),
    ]);

    const created = await api.post<{ id: string; version: number }>(
      '/v1/jobs',
      jobBody({ skills: ['UI', 'ux writing'] }),
      hirer.accessToken,
    );
    expect(created.status).toBe(201);
    const edit = await api.call<Json>('PATCH', `/v1/jobs/${created.body.id}`, {
      token: hirer.accessToken,
      headers: { 'if-match': `"${created.body.version}"` },
      body: { skills: ['ui,ux'] },
    });
    expect(edit.status).toBe(400);
    expect(edit.body.errors).toEqual([expect.objectContaining({ path: 'body.skills.0' })]);

    const found = await api.get<{ data: { id: string }[] }>(
      `/v1/jobs?skills=${encodeURIComponent('ui,ux writing')}`,
      hirer.accessToken,
    );
    expect(found.status).toBe(200);
    expect(found.body.data.map((job) => job.id)).toContain(created.body.id);
  });

  it('refuses a worker skill with a comma, naming it', async () => {
    const refused = await api.call<Json>('PATCH', '/v1/me', {
      token: hirer.accessToken,
      body: { skills: ['react', 'ui, ux'] },
    });
    expect(refused.status).toBe(400);
    expect(refused.body.code).toBe('VALIDATION_FAILED');
    expect(refused.body.errors).toEqual([
      expect.objectContaining({ path: 'body.skills.1', message: expect.stringMatching(/comma/) }),
    ]);
  });

  it('still reads a job stored with a comma in a skill before the rule', async () => {
    const created = await api.post<{ id: string }>(
      '/v1/jobs',
      jobBody({ skills: ['legacy'] }),
      hirer.accessToken,
    );
    expect(created.status).toBe(201);
    const client = new pg.Client({ connectionString: testNode.db.url });
    await client.connect();
    await client.query('update jobs set skills = $1 where id = $2', [['ui, ux'], created.body.id]);
    const read = await api.get<{ skills: string[] }>(`/v1/jobs/${created.body.id}`, hirer.accessToken);
    expect(read.status).toBe(200);
    expect(read.body.skills).toEqual(['ui, ux']);
    const listed = await api.get<{ data: { id: string; skills: string[] }[] }>(
      `/v1/jobs?hirerId=${hirer.id}`,
      hirer.accessToken,
    );
    expect(listed.status).toBe(200);
    expect(listed.body.data.find((job) => job.id === created.body.id)?.skills).toEqual(['ui, ux']);
    await client.query('update users set skills = $1 where id = $2', [['ui, ux'], hirer.id]);
    await client.end();
    const me = await api.get<Json>('/v1/me', hirer.accessToken);
    expect(me.status).toBe(200);
    expect(JSON.stringify(me.body)).toContain('ui, ux');
  });
});
