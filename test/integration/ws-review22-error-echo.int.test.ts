/**
 * Review 22: a refusal that names a client key holding U+0000 is still a readable `error` reply.
 * PROTOCOL.md: every string of a frame, keys included, is without U+0000, and "frames the server
 * sends follow the same rules". A `room.send` whose `meta` has the key "x\u0000" is refused
 * VALIDATION_FAILED naming the path `d.meta.x\u0000`, and that path went back raw in the message and
 * in `details.errors[].path`: the SDK's codec (held to the rules) dropped the reply as unreadable,
 * so the request failed BAD_REPLY instead of VALIDATION_FAILED, on both encodings and transports.
 */
import { Packr } from 'msgpackr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestNode, type TestNode } from '../support/context.js';
import { createGroupRoom, httpClient, type Registered, registerUser } from '../support/http.js';
import { openSocket, type TestSocket } from '../support/ws-client.js';

const packer = new Packr({ useRecords: false, variableMapSize: true });

describe('ws review 22: error replies naming a key with U+0000', () => {
  let t: TestNode;
  let sender: Registered;
  let roomId: string;
  const sockets: TestSocket[] = [];

  beforeAll(async () => {
    t = await startTestNode();
    const api = httpClient(t.node.baseUrl);
    sender = await registerUser(api);
    roomId = await createGroupRoom(api, sender, [await registerUser(api)]);
  }, 60_000);
  afterAll(async () => {
    for (const socket of sockets) socket.close();
    await t?.stop();
  });

  const lanes = [
    { transport: 'uws', encoding: 'json' },
    { transport: 'uws', encoding: 'msgpack' },
    { transport: 'fastify', encoding: 'json' },
    { transport: 'fastify', encoding: 'msgpack' },
  ] as const;

  for (const { transport, encoding } of lanes) {
    it(`answers VALIDATION_FAILED the SDK's codec reads (${transport}, ${encoding})`, async () => {
      const fastify = `${t.node.baseUrl.replace(/^http/, 'ws')}/ws`;
      const url = transport === 'uws' ? (t.node.uwsUrl ?? fastify) : fastify;
      const socket = await openSocket(url, sender.accessToken, encoding);
      sockets.push(socket);
      await socket.next((f) => f.t === 'hello');
      const id = 77;
      const frame = {
        t: 'room.send',
        id,
        d: { roomId, clientMsgId: `nul-${transport}-${encoding}`, body: 'b', meta: { 'x\u0000': 1 } },
      };
      socket.sendRaw(encoding === 'json' ? JSON.stringify(frame) : Buffer.from(packer.pack(frame)));
      const reply = await socket.next((f) => f.t !== 'hello');
      expect(reply).toMatchObject({
        t: 'error',
        id,
        d: { code: 'VALIDATION_FAILED', details: { errors: [{ path: 'd.meta.x\uFFFD' }] } },
      });
      // The socket is fine afterwards.
      expect((await socket.request('ping', {})).t).toBe('ok');
    });
  }
});
