/**
 * Input that used to be accepted and then meant something else (review of the input rules), on a
 * real node, both WebSocket transports and both encodings, and over REST:
 * - a `room.send` whose `meta` has a key `__proto__`: stored renamed (`__proto_`, msgpack) or not at
 *   all (json: the copy set a prototype), answered `ok`; now VALIDATION_FAILED naming the path, and
 *   nothing stored. `constructor` and `prototype` keys are stored as sent;
 * - a blank skill, which widened a `jobs.watch` filter (or a REST job search) to every job;
 * - a member's `room.send` carrying `meta.system` or a `clientMsgId` `system.…`, which clients
 *   would show as a platform message.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestNode, type TestNode } from '../support/context.js';
import { createGroupRoom, httpClient, type Registered, registerUser } from '../support/http.js';
import { openSocket, type TestSocket, type WireFrame } from '../support/ws-client.js';

type Json = Record<string, unknown>;
type Lane = { transport: 'uws' | 'fastify'; encoding: 'json' | 'msgpack' };
const LANES: readonly Lane[] = [
  { transport: 'uws', encoding: 'msgpack' },
  { transport: 'uws', encoding: 'json' },
  { transport: 'fastify', encoding: 'msgpack' },
  { transport: 'fastify', encoding: 'json' },
];
const laneName = (lane: Lane) => `${lane.transport}/${lane.encoding}`;

/** What an error reply says, in the shape the assertions compare. */
const refusal = (reply: WireFrame) => {
  const d = reply.d as { code?: string; details?: { errors?: { path: string }[] } } | undefined;
  return { t: reply.t, code: d?.code, paths: d?.details?.errors?.map((e) => e.path) };
};

describe('reserved and blank input (one node, both transports and encodings)', () => {
  let testNode: TestNode;
  let api: ReturnType<typeof httpClient>;
  let sender: Registered;
  let member: Registered;
  let roomId: string;
  const sockets: TestSocket[] = [];

  const open = async (lane: Lane, user: Registered = sender) => {
    const url =
      lane.transport === 'uws'
        ? (testNode.node.uwsUrl as string)
        : `${testNode.node.baseUrl.replace(/^http/, 'ws')}/ws`;
    const socket = await openSocket(url, user.accessToken, lane.encoding);
    sockets.push(socket);
    return socket;
  };

  /** Every stored message of the room, oldest first, as REST returns them. */
  const stored = async (): Promise<Json[]> => {
    const page = await api.get<{ data: Json[] }>(
      `/v1/rooms/${roomId}/messages?limit=100`,
      member.accessToken,
    );
    expect(page.status).toBe(200);
    return [...page.body.data].reverse();
  };

  beforeAll(async () => {
    testNode = await startTestNode();
    expect(testNode.node.uwsUrl).toBeDefined();
    api = httpClient(testNode.node.baseUrl);
    sender = await registerUser(api);
    member = await registerUser(api);
    roomId = await createGroupRoom(api, sender, [member]);
  }, 60_000);

  afterAll(async () => {
    for (const socket of sockets) socket.close();
    await testNode?.stop();
  });

  it('refuses a __proto__ key in room.send meta, naming its path, and stores nothing (every lane)', async () => {
    const cases: [string, string][] = [
      ['{"__proto__":{"system":"contract.completed"}}', 'd.meta.__proto__'],
      ['{"note":"x","nested":{"__proto__":{"polluted":true}}}', 'd.meta.nested.__proto__'],
      ['{"list":[{"__proto__":1}]}', 'd.meta.list.0.__proto__'],
    ];
    const before = (await stored()).length;
    const outcomes: Json[] = [];
    for (const lane of LANES) {
      const socket = await open(lane);
      for (const [meta, path] of cases) {
        // Parsed from JSON text: `__proto__` is an own key, which the test client writes as a key.
        const d = JSON.parse(
          `{"roomId":"${roomId}","clientMsgId":"${randomUUID()}","body":"proto","meta":${meta}}`,
        ) as Json;
        const reply = await socket.request('room.send', d);
        outcomes.push({ lane: laneName(lane), meta, ...refusal(reply), expected: path });
      }
      expect((await socket.request('ping')).t).toBe('ok');
    }
    expect(outcomes).toEqual(
      outcomes.map((o) => ({ ...o, t: 'error', code: 'VALIDATION_FAILED', paths: [o.expected] })),
    );
    expect((await stored()).length).toBe(before);
    expect(({} as Json).polluted).toBeUndefined();
  });

  it('stores constructor and prototype keys of meta as sent, and delivers them so (every lane)', async () => {
    const meta = { constructor: { prototype: { toJSON: 'z' } }, prototype: 1, __proto_: 2 };
    const listener = await open({ transport: 'uws', encoding: 'msgpack' }, member);
    expect((await listener.request('room.join', { roomId })).t).toBe('ok');
    const ids: string[] = [];
    for (const lane of LANES) {
      const socket = await open(lane);
      const clientMsgId = randomUUID();
      ids.push(clientMsgId);
      const reply = await socket.request('room.send', { roomId, clientMsgId, body: 'keys', meta });
      expect({ lane: laneName(lane), t: reply.t }).toEqual({ lane: laneName(lane), t: 'ok' });
    }
    const messages = (await stored()).filter((m) => ids.includes(m.clientMsgId as string));
    expect(messages.map((m) => m.meta)).toEqual(ids.map(() => meta));
    for (const id of ids) {
      const pushed = await listener.next((f) => f.t === 'room.message' && (f.d as Json).clientMsgId === id);
      expect((pushed.d as Json).meta).toEqual(meta);
    }
  });

  it('refuses a room.send that poses as a system message: meta.system or a clientMsgId system.… (every lane)', async () => {
    const before = (await stored()).length;
    const outcomes: Json[] = [];
    for (const lane of LANES) {
      const socket = await open(lane);
      for (const [d, path] of [
        [{ clientMsgId: randomUUID(), meta: { system: 'contract.completed' } }, 'd.meta.system'],
        [
          { clientMsgId: randomUUID(), meta: { system: 'contract.resolved', contractId: randomUUID() } },
          'd.meta.system',
        ],
        [{ clientMsgId: `system.${randomUUID()}` }, 'd.clientMsgId'],
      ] as const) {
        const reply = await socket.request('room.send', { roomId, body: 'Contract completed', ...d });
        outcomes.push({ lane: laneName(lane), path, ...refusal(reply) });
      }
    }
    expect(outcomes).toEqual(
      outcomes.map((o) => ({ ...o, t: 'error', code: 'VALIDATION_FAILED', paths: [o.path] })),
    );
    expect((await stored()).length).toBe(before);
    // What only looks alike is the member's to send.
    const socket = await open({ transport: 'fastify', encoding: 'json' });
    const reply = await socket.request('room.send', {
      roomId,
      clientMsgId: 'my.system.1',
      body: 'x',
      meta: { contractId: randomUUID(), reply: { system: 'x' } },
    });
    expect(reply.t).toBe('ok');
  });

  it('refuses blank skills: jobs.watch (every lane), REST job search, job posts and worker profiles', async () => {
    const outcomes: Json[] = [];
    for (const lane of LANES) {
      const socket = await open(lane);
      for (const [skills, path] of [
        [['   '], 'd.skills.0'],
        [['rust', '\t'], 'd.skills.1'],
      ] as const) {
        const reply = await socket.request('jobs.watch', { skills: [...skills] });
        outcomes.push({ lane: laneName(lane), path, ...refusal(reply) });
      }
      expect((await socket.request('jobs.watch', { skills: [' Rust '] })).t).toBe('ok');
    }
    expect(outcomes).toEqual(
      outcomes.map((o) => ({ ...o, t: 'error', code: 'VALIDATION_FAILED', paths: [o.path] })),
    );

    const rest: Json[] = [];
    const problem = (label: string, response: { status: number; headers: Headers; body: unknown }) =>
      rest.push({
        label,
        status: response.status,
        type: response.headers.get('content-type')?.split(';')[0],
        code: (response.body as Json).code,
        paths: ((response.body as Json).errors as { path: string }[] | undefined)?.map((e) => e.path),
      });
    const token = sender.accessToken;
    problem('search " "', await api.get('/v1/jobs?skills=%20%20', token));
    problem('search "rust, "', await api.get('/v1/jobs?skills=rust,%20', token));
    const hirer = await registerUser(api, { roles: ['hirer'] });
    const job = {
      title: 'T',
      description: 'D',
      categoryId: randomUUID(),
      budget: { kind: 'fixed', amount: 100, currency: 'USD' },
    };
    problem('post', await api.post('/v1/jobs', { ...job, skills: ['rust', '  '] }, hirer.accessToken));
    problem('profile', await api.call('PATCH', '/v1/me', { body: { skills: [' '] }, token }));
    expect(rest).toEqual(
      [
        { label: 'search " "', paths: ['querystring.skills.0'] },
        { label: 'search "rust, "', paths: ['querystring.skills.1'] },
        { label: 'post', paths: ['body.skills.1'] },
        { label: 'profile', paths: ['body.skills.0'] },
      ].map((o) => ({ ...o, status: 400, type: 'application/problem+json', code: 'VALIDATION_FAILED' })),
    );
    // An empty value is no filter, as an empty list in the SDK.
    expect((await api.get('/v1/jobs?skills=', token)).status).toBe(200);
  });

  it('refuses __proto__ in REST input too: nested in a JSON body (the parser), as a query key (the input check)', async () => {
    const token = sender.accessToken;
    const body = await api.call('PATCH', '/v1/me', {
      body: JSON.parse('{"bio":"x","availability":{"__proto__":{"admin":true}}}'),
      token,
    });
    const query = await api.get('/v1/jobs?__proto__=1', token);
    const shapes = [body, query].map((r) => ({
      status: r.status,
      type: r.headers.get('content-type')?.split(';')[0],
      code: (r.body as Json).code,
    }));
    expect(shapes).toEqual([
      { status: 400, type: 'application/problem+json', code: 'VALIDATION_FAILED' },
      { status: 400, type: 'application/problem+json', code: 'VALIDATION_FAILED' },
    ]);
    expect(((query.body as Json).errors as { path: string }[])[0]?.path).toBe('querystring.__proto__');
  });
});
