/**
 * A client told 1012 ("the server is shutting down; reconnect") reconnects at once, as PROTOCOL.md
 * allows. While the node drains, its HTTP port still answers (health, the last REST requests), and
 * so did its /ws route: the reconnect was admitted, said `hello`, and sat on a node whose rooms and
 * presence were going away, until the process ended under it. A socket opened while the node drains
 * is closed 1012 at once, before `hello`, so the client goes to another node.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createMigratedDatabase,
  sharedRedisUrl,
  type TestDatabase,
  uniqueRedisPrefix,
} from '../support/context.js';
import { httpClient, registerUser } from '../support/http.js';
import { type GigwireProcess, spawnGigwire } from '../support/spawn.js';
import { openSocket, type TestSocket } from '../support/ws-client.js';

describe('ws review 16: sockets opened while the node drains', () => {
  let db: TestDatabase;
  let server: GigwireProcess | undefined;

  beforeAll(async () => {
    db = await createMigratedDatabase();
  });
  afterAll(async () => {
    await server?.stop('SIGKILL').catch(() => undefined);
    await db.drop();
  });

  it('closes a socket opened after SIGTERM with 1012 before hello, on the HTTP port', async () => {
    server = spawnGigwire({
      DATABASE_URL: db.url,
      REDIS_URL: sharedRedisUrl(),
      REDIS_PREFIX: uniqueRedisPrefix(),
    });
    const baseUrl = await server.waitUntilUp(60_000);
    const wsUrl = `${baseUrl.replace(/^http/, 'ws')}/ws`;
    const user = await registerUser(httpClient(baseUrl));
    // A peer that stops reading never answers the server's close frame: the node's close step waits
    // for it (up to 2 s), so the drain is in progress, the HTTP port still listening, when the
    // other socket's 1012 arrives and it reconnects.
    const stalled = await openSocket(wsUrl, user.accessToken, 'json');
    await stalled.next((f) => f.t === 'hello');
    const told = await openSocket(wsUrl, user.accessToken, 'json');
    await told.next((f) => f.t === 'hello');
    (stalled.ws as unknown as { _socket: { pause: () => void } })._socket.pause();

    const exit = server.stop('SIGTERM');
    expect((await told.closed).code).toBe(1012);

    // The reconnect the 1012 asks for, at once (the SDK waits 0-1 s; this is its earliest case).
    let again: TestSocket | undefined;
    try {
      again = await openSocket(wsUrl, user.accessToken, 'json');
    } catch {
      // Refused or not listening any more: as good (the client backs off and goes elsewhere).
    }
    if (again !== undefined) {
      const closed = await again.closed;
      expect(closed.code).toBe(1012);
      expect(again.frames.map((f) => f.t)).not.toContain('hello');
    }
    expect(await exit).toMatchObject({ code: 0, signal: null });
  });
});
