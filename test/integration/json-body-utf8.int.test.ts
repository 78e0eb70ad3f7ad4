/**
 * JSON bodies are decoded as strict UTF-8: bytes that are not UTF-8 are a 400 VALIDATION_FAILED
 * problem, not text with U+FFFD in their place (before, PATCH /v1/me with the bytes ff fe answered
 * 200 and stored two U+FFFD). Everything else Fastify's JSON parsing did still holds: multi-byte
 * text, the body limit, empty bodies and prototype poisoning refused.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BODY_LIMIT_BYTES } from '../../src/http/app.js';
import { startTestNode, type TestNode } from '../support/context.js';
import { httpClient, type Registered, registerUser } from '../support/http.js';

describe('JSON bodies are strict UTF-8', () => {
  let node: TestNode;
  let api: ReturnType<typeof httpClient>;
  let a: Registered;
  beforeAll(async () => {
    node = await startTestNode();
    api = httpClient(node.node.baseUrl);
    a = await registerUser(api);
  }, 60_000);
  afterAll(async () => {
    await node?.stop();
  });

  /** PATCH /v1/me with exactly these bytes as its JSON body. */
  const patchMe = async (body: Uint8Array | string, contentType = 'application/json') => {
    const response = await fetch(`${node.node.baseUrl}/v1/me`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${a.accessToken}`, 'content-type': contentType },
      body,
    });
    const text = await response.text();
    return {
      status: response.status,
      type: response.headers.get('content-type'),
      body: (text === '' ? null : JSON.parse(text)) as Record<string, unknown> | null,
    };
  };
  const displayName = async () =>
    (await api.get<{ displayName: string | null }>('/v1/me', a.accessToken)).body.displayName;

  it('refuses a body that is not valid UTF-8 and stores nothing', async () => {
    const before = await displayName();
    const bytes = Buffer.concat([
      Buffer.from('{"displayName":"'),
      Buffer.from([0xff, 0xfe]),
      Buffer.from('"}'),
    ]);
    const answer = await patchMe(bytes);
    expect(answer.status).toBe(400);
    expect(answer.type).toMatch(/^application\/problem\+json/);
    expect(answer.body).toMatchObject({
      code: 'VALIDATION_FAILED',
      errors: [{ path: 'body', message: 'is not valid UTF-8' }],
    });
    expect(await displayName()).toBe(before);
  });

  it('refuses a UTF-8 sequence cut short, also with a charset parameter', async () => {
    const bytes = Buffer.concat([Buffer.from('{"displayName":"Zo'), Buffer.from([0xc3]), Buffer.from('"}')]);
    const answer = await patchMe(bytes, 'application/json; charset=utf-8');
    expect(answer.status).toBe(400);
    expect(answer.body).toMatchObject({ code: 'VALIDATION_FAILED' });
  });

  it('accepts multi-byte UTF-8 and stores it as sent', async () => {
    const answer = await patchMe(new TextEncoder().encode(JSON.stringify({ displayName: 'Zoë 🚀 東京' })));
    expect(answer.status).toBe(200);
    expect(await displayName()).toBe('Zoë 🚀 東京');
  });

  it('keeps the guards of the JSON parser: empty body, prototype poisoning, body limit', async () => {
    expect((await patchMe('')).body).toMatchObject({ code: 'VALIDATION_FAILED' });
    const poisoned = await patchMe('{"displayName":"x","__proto__":{"admin":true}}');
    expect(poisoned.status).toBe(400);
    expect(poisoned.body).toMatchObject({ code: 'VALIDATION_FAILED' });
    const huge = await patchMe(JSON.stringify({ bio: 'x'.repeat(BODY_LIMIT_BYTES) }));
    expect(huge.status).toBe(413);
    expect(huge.body).toMatchObject({ code: 'PAYLOAD_TOO_LARGE' });
  });
});
