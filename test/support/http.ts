/** A small JSON-over-HTTP client for tests: real requests to a running gigwire. */
import type { Kysely } from 'kysely';
import type { UserId } from '../../protocol/src/ids.js';
import type { Role } from '../../protocol/src/rest/users.js';
import type { Database } from '../../src/db/database.js';
export interface HttpResult<T = Record<string, unknown>> {
  readonly status: number;
  readonly headers: Headers;
  readonly body: T;
}

/** A REST client of one node (`httpClient`). */
export type HttpClient = ReturnType<typeof httpClient>;

export function httpClient(baseUrl: string) {
  const call = async <T = Record<string, unknown>>(
    method: string,
    path: string,
    options: { body?: unknown; token?: string; headers?: Record<string, string> } = {},
  ): Promise<HttpResult<T>> => {
    const headers: Record<string, string> = { ...options.headers };
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
    const response = await fetch(`${baseUrl}${path}`, {
      method,
      headers,
      ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
    });
    const text = await response.text();
    return {
      status: response.status,
      headers: response.headers,
      body: (text === '' ? null : JSON.parse(text)) as T,
    };
  };
  return {
    call,
    get: <T = Record<string, unknown>>(path: string, token?: string) =>
      call<T>('GET', path, token === undefined ? {} : { token }),
    post: <T = Record<string, unknown>>(path: string, body?: unknown, token?: string) =>
      call<T>('POST', path, { body, ...(token === undefined ? {} : { token }) }),
  };
}

export interface Registered {
  readonly id: string;
  readonly username: string;
  readonly email: string;
  readonly password: string;
  readonly accessToken: string;
  readonly refreshToken: string;
}

let counter = 0;

/** Registers a fresh account with a unique name; the password avoids every weak-password rule. */
export async function registerUser(
  client: ReturnType<typeof httpClient>,
  overrides: { roles?: string[]; password?: string } = {},
): Promise<Registered> {
  counter += 1;
  const username = `user${process.pid}x${counter}${Math.random().toString(36).slice(2, 7)}`;
  const email = `${username}@example.test`;
  const password = overrides.password ?? 'Vermilion-Otter-42!';
  const registered = await client.post('/v1/auth/register', {
    username,
    email,
    password,
    ...(overrides.roles ? { roles: overrides.roles } : {}),
  });
  if (registered.status !== 202)
    throw new Error(`register failed: ${registered.status} ${JSON.stringify(registered.body)}`);
  // Registration answers alike for new and taken addresses (no tokens): the session comes from a login.
  const response = await client.post<{ user: { id: string }; accessToken: string; refreshToken: string }>(
    '/v1/auth/login',
    { login: username, password },
  );
  if (response.status !== 200)
    throw new Error(`login after register failed: ${response.status} ${JSON.stringify(response.body)}`);
  return {
    id: response.body.user.id,
    username,
    email,
    password,
    accessToken: response.body.accessToken,
    refreshToken: response.body.refreshToken,
  };
}

/** `owner` adds `contact` to their contacts (then `contact` may put `owner` into rooms). */
export async function addContact(
  client: ReturnType<typeof httpClient>,
  owner: Registered,
  contact: { readonly id: string },
): Promise<void> {
  const added = await client.post(`/v1/me/contacts/${contact.id}`, undefined, owner.accessToken);
  if (added.status !== 204) throw new Error(`adding a contact failed: ${added.status}`);
}

/**
 * Makes the users mutual contacts (each adds the other): what presence needs, and what lets
 * either put the other into a room.
 */
export async function makeContacts(
  client: ReturnType<typeof httpClient>,
  a: Registered,
  b: Registered,
): Promise<void> {
  await addContact(client, a, b);
  await addContact(client, b, a);
}

/** A group room made by `creator` with `others` (each first adds `creator` as a contact); its id. */
export async function createGroupRoom(
  client: ReturnType<typeof httpClient>,
  creator: Registered,
  others: readonly Registered[],
): Promise<string> {
  for (const other of others) await addContact(client, other, creator);
  const created = await client.post<{ id: string }>(
    '/v1/rooms',
    { kind: 'group', memberIds: others.map((other) => other.id) },
    creator.accessToken,
  );
  if (created.status !== 201) throw new Error(`creating a group room failed: ${created.status}`);
  return created.body.id;
}

/**
 * Gives a registered user the admin role besides their own (as `admin:create --promote` does, in
 * SQL) and logs them in again: the returned access token carries the new roles.
 */
export async function promoteToAdmin(
  client: ReturnType<typeof httpClient>,
  db: Kysely<Database>,
  user: Registered,
  ownRoles: readonly Exclude<Role, 'admin'>[],
): Promise<string> {
  await db
    .updateTable('users')
    .set({ roles: [...ownRoles, 'admin'] })
    .where('id', '=', user.id as UserId)
    .execute();
  const login = await client.post<{ accessToken: string }>('/v1/auth/login', {
    login: user.email,
    password: user.password,
  });
  if (login.status !== 200) throw new Error(`login after promotion failed: ${login.status}`);
  return login.body.accessToken;
}
