/**
 * Room sends over a real WebSocket while a node's database fails (a dead network path, a read-only
 * database, a lock timeout): a group room of two fresh users with its creator's socket joined to
 * it, and a message resent until the room stores it.
 */
import { expect } from 'vitest';
import type { RunningNode } from '../../src/bin/start-node.js';
import { createGroupRoom, httpClient, registerUser } from './http.js';
import { untilDefined } from './poll.js';
import { openSocket, type TestSocket, type WireFrame } from './ws-client.js';

/**
 * Two fresh users on `node`, a group room of theirs, and its creator's socket (kept in `sockets`,
 * for the file to close) greeted and joined to the room from its start.
 */
export async function joinedGroupRoom(
  node: RunningNode,
  sockets: TestSocket[],
): Promise<{ roomId: string; socket: TestSocket }> {
  const api = httpClient(node.baseUrl);
  const [creator, other] = [await registerUser(api), await registerUser(api)];
  const roomId = await createGroupRoom(api, creator, [other]);
  const socket = await openSocket(
    node.uwsUrl ?? `${node.baseUrl.replace(/^http/, 'ws')}/ws`,
    creator.accessToken,
  );
  sockets.push(socket);
  await socket.next((frame) => frame.t === 'hello');
  expect((await socket.request('room.join', { roomId, sinceSeq: 0 })).t).toBe('ok');
  return { roomId, socket };
}

/** Sends `message` to the room again and again until it is acknowledged (stored); that answer. */
export const resendUntilStored = (
  socket: TestSocket,
  roomId: string,
  message: { clientMsgId: string; body: string },
): Promise<WireFrame> =>
  untilDefined(async () => {
    const answer = await socket.request('room.send', { roomId, ...message });
    return answer.t === 'ok' ? answer : undefined;
  }, 'the resend to be stored');
