/**
 * Ids in upper case (RFC 9562 UUIDs are case-insensitive, and the documented pattern admits A-F)
 * mean the same row as in lower case. PostgreSQL prints uuids in lower case while the services
 * compare ids and key batched reads by the string, so the schemas of protocol/src/ids.ts lower-case
 * every id as they parse it: before, GET /v1/users/{UPPER} answered 404 and a contact added in
 * upper case was not recognised as the same user.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestNode, type TestNode } from '../support/context.js';
import { addContact, httpClient, type Registered, registerUser } from '../support/http.js';

describe('upper-case UUIDs over REST', () => {
  let node: TestNode;
  let api: ReturnType<typeof httpClient>;
  let a: Registered;
  let b: Registered;
  beforeAll(async () => {
    node = await startTestNode();
    api = httpClient(node.node.baseUrl);
    [a, b] = await Promise.all([registerUser(api), registerUser(api)]);
    await addContact(api, a, b);
    await addContact(api, b, a);
  }, 60_000);
  afterAll(async () => {
    await node?.stop();
  });

  it('GET /v1/users/{id} finds the user whichever case the id is in', async () => {
    const lower = await api.get(`/v1/users/${b.id}`, a.accessToken);
    expect(lower.status).toBe(200);
    const upper = await api.get(`/v1/users/${b.id.toUpperCase()}`, a.accessToken);
    expect(upper.status).toBe(200);
    expect(upper.body).toEqual(lower.body);
  });

  it('your own profile by upper-case id is yours: it shows your presence', async () => {
    const lower = await api.get<{ presence?: unknown }>(`/v1/users/${a.id}`, a.accessToken);
    const upper = await api.get<{ id: string; presence?: unknown }>(
      `/v1/users/${a.id.toUpperCase()}`,
      a.accessToken,
    );
    expect(upper.status).toBe(200);
    expect(upper.body.id).toBe(a.id);
    expect(upper.body.presence).toBeDefined();
    expect(Object.keys(upper.body)).toEqual(Object.keys(lower.body));
  });

  it('a contact added by upper-case id is the same contact; your own id in upper case is refused', async () => {
    const c = await registerUser(api);
    const added = await api.post(`/v1/me/contacts/${c.id.toUpperCase()}`, undefined, a.accessToken);
    expect(added.status).toBe(204);
    await addContact(api, a, c);
    const contacts = await api.get<{ data: { user: { id: string } }[] }>('/v1/me/contacts', a.accessToken);
    expect(contacts.body.data.filter((contact) => contact.user.id === c.id)).toHaveLength(1);
    const self = await api.post(`/v1/me/contacts/${a.id.toUpperCase()}`, undefined, a.accessToken);
    expect(self.status).toBe(400);
    expect(self.body).toMatchObject({ code: 'VALIDATION_FAILED' });
  });
});
