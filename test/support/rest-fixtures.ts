/**
 * What a test sets up over REST between fresh users before it opens a client on it: a room of two
 * contacts (a direct room `me` opens with `other`, or a group room its `owner` makes with `me` in
 * it), or an active contract between a worker (`me`) and a funded hirer. Each checks its answers as
 * it goes. `fundedRestClient`: a user's REST client whose wallet a sandbox card top-up filled.
 */
import { randomUUID } from 'node:crypto';
import { expect } from 'vitest';
import { createRestClient, type RestClient } from '../../protocol/src/client/rest.js';
import { type httpClient, makeContacts, type Registered, registerUser } from './http.js';
import { openSocket } from './ws-client.js';

type Api = ReturnType<typeof httpClient>;

/** `me` and `other`, contacts, and the direct room `me` opens with `other` (200 or 201). */
export async function directRoomOfContacts(
  api: Api,
): Promise<{ me: Registered; other: Registered; roomId: string }> {
  const me = await registerUser(api);
  const other = await registerUser(api);
  await makeContacts(api, me, other);
  const room = await api.post<{ id: string }>(
    '/v1/rooms',
    { kind: 'direct', memberIds: [other.id] },
    me.accessToken,
  );
  expect([200, 201]).toContain(room.status);
  return { me, other, roomId: room.body.id };
}

/** `me` and `owner`, contacts, and the group room `title` that `owner` makes with `me` in it (201). */
export async function groupRoomOfContacts(
  api: Api,
  title: string,
): Promise<{ me: Registered; owner: Registered; roomId: string }> {
  const me = await registerUser(api);
  const owner = await registerUser(api);
  await makeContacts(api, me, owner);
  const room = await api.post<{ id: string }>(
    '/v1/rooms',
    { kind: 'group', title, memberIds: [me.id] },
    owner.accessToken,
  );
  expect(room.status).toBe(201);
  return { me, owner, roomId: room.body.id };
}

/**
 * `groupRoomOfContacts`, with its owner joined over a WebSocket of the node at `base`: `send(body)`
 * stores a message (its `ok` checked), `close()` closes the socket.
 */
export async function groupRoomWithOwnerSocket(
  api: Api,
  base: string,
  title: string,
): Promise<{
  me: Registered;
  owner: Registered;
  roomId: string;
  send: (body: string) => Promise<void>;
  close: () => void;
}> {
  const room = await groupRoomOfContacts(api, title);
  const socket = await openSocket(`${base.replace(/^http/, 'ws')}/ws`, room.owner.accessToken, 'json');
  try {
    expect((await socket.request('room.join', { roomId: room.roomId })).t).toBe('ok');
  } catch (error) {
    socket.close();
    throw error;
  }
  const send = async (body: string) => {
    const answer = await socket.request('room.send', {
      roomId: room.roomId,
      clientMsgId: randomUUID(),
      body,
    });
    expect(answer.t).toBe('ok');
  };
  return { ...room, send, close: () => socket.close() };
}

/**
 * `me` (a worker) and a hirer, each with an SDK REST client of the node at `base`, and an active
 * contract between them: the hirer tops up 200.00 (its balance waited for, `timeout` ms at most),
 * posts `job` (fixed 50.00, remote, the first category), `me` bids 40.00 and the hirer accepts.
 */
export async function activeContract(
  api: Api,
  base: string,
  job: { title: string; description: string },
  timeout: number,
) {
  const me = await registerUser(api, { roles: ['worker'] });
  const hirer = await registerUser(api, { roles: ['hirer'] });
  const hirerRest = await fundedRestClient(base, hirer, 20_000, timeout);
  const myRest: RestClient = createRestClient({ baseUrl: base, accessToken: () => me.accessToken });
  const categoryId = (await hirerRest.categories()).data[0]?.id ?? '';
  const posted = await hirerRest.postJob({
    ...job,
    categoryId,
    skills: [],
    budget: { kind: 'fixed', amount: 5_000, currency: 'USD' },
    remote: true,
  });
  const bid = await myRest.placeBid(posted.id, { amount: 4_000, deliveryDays: 3, coverLetter: 'Me' });
  const contract = await hirerRest.acceptBid(bid.id, { ifMatch: bid.version });
  return { me, hirer, hirerRest, myRest, contract };
}

/**
 * `user`'s REST client, its wallet topped up by `amount` with the sandbox card that succeeds, once
 * the provider's webhook has credited it (within `timeout` ms).
 */
export async function fundedRestClient(
  base: string,
  user: Pick<Registered, 'accessToken'>,
  amount: number,
  timeout: number,
): Promise<RestClient> {
  const rest = createRestClient({ baseUrl: base, accessToken: () => user.accessToken });
  await rest.topUp({ amount, card: '4242424242424242' });
  await expect.poll(async () => (await rest.wallet()).available, { timeout }).toBe(amount);
  return rest;
}
