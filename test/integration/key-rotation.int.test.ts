/**
 * `npm run keys:rotate` as a user runs it: a new key signs from then on, tokens of the old key keep
 * verifying and the old public key stays in the JWKS until they expire.
 */
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningNode } from '../../src/bin/start-node.js';
import { startTestNode, type TestDatabase, type TestNode } from '../support/context.js';
import { httpClient, registerUser } from '../support/http.js';
import { commandArguments } from '../support/spawn.js';

const kidOf = (jwt: string) =>
  (JSON.parse(Buffer.from(jwt.split('.')[0] ?? '', 'base64url').toString()) as { kid: string }).kid;

describe('signing key rotation', () => {
  let testNode: TestNode;
  let db: TestDatabase;
  let node: RunningNode;

  beforeAll(async () => {
    testNode = await startTestNode();
    ({ node, db } = testNode);
  });
  afterAll(() => testNode.stop());

  it('publishes old and new keys, keeps old tokens valid and signs new ones with the new key', async () => {
    const api = httpClient(node.baseUrl);
    const before = await registerUser(api);
    const oldKid = kidOf(before.accessToken);

    const root = resolve(import.meta.dirname, '../..');
    const { stdout } = await promisify(execFile)(
      process.execPath,
      commandArguments('src/bin/keys-rotate.ts'),
      {
        cwd: root,
        env: { PATH: process.env.PATH, DATABASE_URL: db.url, LOG_LEVEL: 'warn' },
      },
    );
    const newKid = /new signing key (\S+);/.exec(stdout)?.[1];
    expect(newKid).toBeDefined();
    expect(newKid).not.toBe(oldKid);

    // The running process learns the new key on its next reload (forced here by an unknown kid
    // arriving, or within a minute); the JWKS it serves then lists both.
    const jwks = async () =>
      ((await api.get<{ keys: { kid: string }[] }>('/.well-known/jwks.json')).body.keys ?? []).map(
        (k) => k.kid,
      );
    expect((await api.get('/v1/me', before.accessToken)).status).toBe(200);
    let published: string[] = [];
    for (let i = 0; i < 120 && !published.includes(newKid ?? ''); i++) {
      await new Promise((r) => setTimeout(r, 100));
      // A token signed by the new key would force a reload; any request path is fine to poll with.
      published = await jwks();
      const header = Buffer.from(JSON.stringify({ alg: 'EdDSA', typ: 'at+jwt', kid: newKid })).toString(
        'base64url',
      );
      if (!published.includes(newKid ?? '')) await api.get('/v1/me', `${header}.e30.c2ln`);
    }
    expect(published.sort()).toEqual([oldKid, newKid].sort());
    expect((await api.get('/v1/me', before.accessToken)).status).toBe(200);
    const after = await api.post<{ accessToken: string }>('/v1/auth/login', {
      login: before.email,
      password: before.password,
    });
    expect(kidOf(after.body.accessToken)).toBe(newKid);
    expect((await api.get('/v1/me', after.body.accessToken)).status).toBe(200);
  });
});
