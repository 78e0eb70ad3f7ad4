/**
 * Review 22: a plain HTTP GET /ws on the Fastify port (no WebSocket upgrade) holds no place of the
 * per-IP cap. It ran the upgrade's admission (a place of WS_MAX_CONNECTIONS_PER_IP, given back only
 * when its TCP connection closed) and authentication, then was answered 404: one keep-alive
 * connection repeating it with a valid token filled the cap of its address, and every WebSocket
 * from there (a carrier NAT's other users) was refused 429 on both ports for as long as it stayed
 * open. Now it is answered 404 before either.
 */
import { Agent, request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestNode, type TestNode } from '../support/context.js';
import { httpClient, registerUser } from '../support/http.js';
import { upgradeStatus } from '../support/ws-client.js';

const CAP = 3;

describe('ws review 22: plain GET /ws and the per-IP socket cap', () => {
  let t: TestNode;
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });

  beforeAll(async () => {
    t = await startTestNode({ WS_MAX_CONNECTIONS_PER_IP: String(CAP) });
  }, 60_000);
  afterAll(async () => {
    agent.destroy();
    await t?.stop();
  });

  it('answers 404 without taking a place: WebSockets from the address still open', async () => {
    const user = await registerUser(httpClient(t.node.baseUrl));
    const get = () =>
      new Promise<number>((resolve, reject) => {
        const sent = httpRequest(`${t.node.baseUrl}/ws`, {
          agent,
          headers: { authorization: `Bearer ${user.accessToken}` },
        });
        sent.on('response', (response) => {
          response.resume();
          response.on('end', () => resolve(response.statusCode ?? 0));
        });
        sent.on('error', reject);
        sent.end();
      });
    // One keep-alive TCP connection, more requests than the cap.
    for (let i = 0; i < CAP + 2; i++) expect(await get()).toBe(404);

    const fastify = `${t.node.baseUrl.replace(/^http/, 'ws')}/ws`;
    for (const url of [fastify, t.node.uwsUrl ?? fastify]) {
      expect(await upgradeStatus(url, ['gigwire.v1.json', `bearer.${user.accessToken}`])).toBe(101);
    }
  });
});
