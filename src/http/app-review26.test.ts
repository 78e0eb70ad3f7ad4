/**
 * Review 26 (the REST edge, odd but plausible input):
 * - numeric query parameters (`limit`, `beforeSeq`) are decimal digits: `0x10`, `1e1`, `0b11`, `+5`,
 *   ` 5`, `5.0` were read by `Number()` as 16, 10, 3, 5, 5, 5 (z.coerce); now 400 VALIDATION_FAILED
 *   naming the parameter, and the OpenAPI document still says integer with its default;
 * - the 503 of a node shutting down and what Node's HTTP parser refuses (written on the raw socket)
 *   carry helmet's headers like every other answer of a REST process (they went out without).
 * The app is the real one; the services a request reaches are stubs that record what they got.
 */
import type { Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { AppDeps } from './app.js';
import { restAppWithStubs } from './app.testing.js';
import { helmetHeaders } from './plugins/security.js';

const USER = '00000000-0000-4000-8000-000000000001';
const ROOM = '00000000-0000-4000-8000-000000000002';
const bearer = { authorization: 'Bearer token' };

async function restApp(websocket?: AppDeps['websocket']) {
  const calls: unknown[][] = [];
  const record =
    <T>(answer: T) =>
    async (...args: unknown[]) => {
      calls.push(args);
      return answer;
    };
  const app = await restAppWithStubs(
    {
      auth: { authenticateNow: () => ({ userId: USER, roles: ['user'], sessionId: 's' }) },
      users: { searchWorkers: record({ data: [], nextCursor: null }) },
      rooms: {
        rooms: {
          list: record({ data: [], nextCursor: null }),
          history: record({ data: [], nextBeforeSeq: null }),
        },
        idempotency: {},
      },
    },
    websocket,
  );
  return { app, calls };
}

let built: Awaited<ReturnType<typeof restApp>> | undefined;
afterEach(async () => {
  await built?.app.close();
  built = undefined;
});

const expectHelmet = (headers: Record<string, unknown>) => {
  for (const [name, value] of helmetHeaders()) expect(headers[name.toLowerCase()], name).toBe(value);
};

describe('numeric query parameters', () => {
  const refused = [
    '0x10',
    '1e1',
    '0b11',
    '+5',
    '%205',
    '5%20',
    '%C2%A05',
    '5.0',
    '-5',
    '',
    'Infinity',
    '5&limit=6',
  ];

  it('refuses anything but decimal digits 400 VALIDATION_FAILED naming the parameter, never reads it as another number', async () => {
    built = await restApp();
    const { app, calls } = built;
    const cases = [
      { url: '/v1/rooms', name: 'limit' },
      { url: '/v1/users', name: 'limit' },
      { url: `/v1/rooms/${ROOM}/messages`, name: 'limit' },
      { url: `/v1/rooms/${ROOM}/messages`, name: 'beforeSeq' },
    ];
    for (const { url, name } of cases)
      for (const value of refused) {
        const query = value.replace('limit=', `${name}=`);
        const answer = await app.inject({ method: 'GET', url: `${url}?${name}=${query}`, headers: bearer });
        expect(answer.statusCode, `${url} ${name}=${query}`).toBe(400);
        expect(answer.headers['content-type']).toContain('application/problem+json');
        expect(answer.json()).toMatchObject({
          code: 'VALIDATION_FAILED',
          errors: [expect.objectContaining({ path: `querystring.${name}` })],
        });
      }
    expect(calls).toEqual([]);
  });

  it('reads decimal digits (leading zeros too) as that number, and a missing one as the default', async () => {
    built = await restApp();
    const { app, calls } = built;
    for (const url of ['/v1/rooms?limit=05', '/v1/users?limit=100', '/v1/users']) {
      const answer = await app.inject({ method: 'GET', url, headers: bearer });
      expect(answer.statusCode, url).toBe(200);
    }
    const messages = await app.inject({
      method: 'GET',
      url: `/v1/rooms/${ROOM}/messages?beforeSeq=0042&limit=7`,
      headers: bearer,
    });
    expect(messages.statusCode).toBe(200);
    expect(calls).toEqual([
      [USER, { limit: 5 }],
      [expect.objectContaining({ limit: 100 })],
      [expect.objectContaining({ limit: 20 })],
      [USER, ROOM, 42, 7],
    ]);
    const tooMany = await app.inject({ method: 'GET', url: '/v1/users?limit=101', headers: bearer });
    expect(tooMany.statusCode).toBe(400);
  });

  it('are documented as integers with their bounds and defaults', async () => {
    built = await restApp();
    const doc = (await built.app.inject({ method: 'GET', url: '/openapi.json' })).json();
    const param = (path: string, name: string) =>
      (doc.paths[path].get.parameters as { name: string; schema: unknown }[]).find((p) => p.name === name)
        ?.schema;
    expect(param('/v1/rooms', 'limit')).toEqual({ type: 'integer', minimum: 1, maximum: 500, default: 500 });
    expect(param('/v1/users', 'limit')).toEqual({ type: 'integer', minimum: 1, maximum: 100, default: 20 });
    expect(param('/v1/rooms/{id}/messages', 'beforeSeq')).toEqual({
      type: 'integer',
      minimum: 1,
      maximum: Number.MAX_SAFE_INTEGER,
    });
  });
});

describe("answers given before helmet's hook", () => {
  it('the 503 of a node shutting down carries them', async () => {
    let answer: Response | undefined;
    let url = '';
    // A preClose hook after buildApp's own (which marks the node closing): the server still
    // listens then, as it does for a request arriving on an open connection while it closes.
    built = await restApp(async (app) => {
      app.addHook('preClose', async () => {
        answer = await fetch(`${url}/v1/me`, { headers: bearer });
        await answer.arrayBuffer();
      });
    });
    const { app } = built;
    url = await app.listen({ port: 0, host: '127.0.0.1' });
    await app.close();
    built = undefined;
    expect(answer?.status).toBe(503);
    const headers = Object.fromEntries(answer?.headers ?? []);
    expect(headers['content-type']).toContain('application/problem+json');
    expectHelmet(headers);
  });

  it("what Node's HTTP parser refuses (written on the socket) carries them", async () => {
    built = await restApp();
    let written = '';
    const socket = {
      destroyed: false,
      writable: true,
      write: (text: string) => {
        written += text;
        return true;
      },
      destroy: () => {},
    } as unknown as Socket;
    built.app.server.emit(
      'clientError',
      Object.assign(new Error('Parse Error'), { code: 'HPE_INVALID_METHOD' }),
      socket,
    );
    const [head = '', body = ''] = written.split('\r\n\r\n');
    expect(head).toMatch(/^HTTP\/1\.1 400 /);
    const headers = Object.fromEntries(
      head
        .split('\r\n')
        .slice(1)
        .map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 2)]),
    );
    expectHelmet(headers);
    expect(headers['cache-control']).toBe('no-store');
    expect(JSON.parse(body)).toMatchObject({ code: 'VALIDATION_FAILED', status: 400 });
  });
});
