import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { decodeWebhookSecret, signWebhook, verifyWebhook } from './webhook-signature.js';

const secret = () => `whsec_${randomBytes(32).toString('base64')}`;
const now = new Date('2026-12-04T12:00:00Z');
const nowS = Math.floor(now.getTime() / 1000);
const body = Buffer.from('{"type":"payment.succeeded","data":{"id":"pay_1"}}');

function headers(s: string, id = 'msg_1', timestamp = nowS, payload: Buffer | string = body) {
  return {
    id,
    timestamp: String(timestamp),
    signature: signWebhook({ secret: s, id, timestamp, body: payload }),
  };
}

describe('webhook signatures (Standard Webhooks v1)', () => {
  it('accept a message signed with the current secret, or the previous one during rotation', () => {
    const current = secret();
    const previous = secret();
    expect(verifyWebhook({ secrets: [current], headers: headers(current), body, now })).toEqual({
      ok: true,
      id: 'msg_1',
      timestamp: nowS,
    });
    expect(verifyWebhook({ secrets: [current, previous], headers: headers(previous), body, now }).ok).toBe(
      true,
    );
    // Several signatures in one header: one valid one is enough; other schemes are ignored.
    const h = headers(current);
    const multi = { ...h, signature: `v1a,${randomBytes(64).toString('base64')} v1,AAAA ${h.signature}` };
    expect(verifyWebhook({ secrets: [current], headers: multi, body, now }).ok).toBe(true);
  });

  it('refuse a wrong secret, a changed body, id or timestamp', () => {
    const s = secret();
    expect(verifyWebhook({ secrets: [secret()], headers: headers(s), body, now })).toEqual({
      ok: false,
      reason: 'bad-signature',
    });
    expect(verifyWebhook({ secrets: [s], headers: headers(s), body: Buffer.from(`${body} `), now }).ok).toBe(
      false,
    );
    expect(verifyWebhook({ secrets: [s], headers: { ...headers(s), id: 'msg_2' }, body, now }).ok).toBe(
      false,
    );
    expect(
      verifyWebhook({ secrets: [s], headers: { ...headers(s), timestamp: String(nowS - 1) }, body, now }).ok,
    ).toBe(false);
    expect(verifyWebhook({ secrets: [s], headers: { ...headers(s), signature: 'v1,' }, body, now }).ok).toBe(
      false,
    );
  });

  it('refuse timestamps more than 300 s old or ahead, accept the edges', () => {
    const s = secret();
    const at = (t: number) => verifyWebhook({ secrets: [s], headers: headers(s, 'm', t), body, now });
    expect(at(nowS - 300).ok).toBe(true);
    expect(at(nowS + 300).ok).toBe(true);
    expect(at(nowS - 301)).toEqual({ ok: false, reason: 'too-old' });
    expect(at(nowS + 301)).toEqual({ ok: false, reason: 'too-new' });
  });

  it('refuse missing or malformed headers without throwing', () => {
    const s = secret();
    const h = headers(s);
    expect(verifyWebhook({ secrets: [s], headers: { ...h, id: undefined }, body, now }).ok).toBe(false);
    expect(verifyWebhook({ secrets: [s], headers: { ...h, signature: undefined }, body, now }).ok).toBe(
      false,
    );
    for (const timestamp of ['', 'abc', '1e9', '-5', `${nowS}.0`, '0']) {
      expect(verifyWebhook({ secrets: [s], headers: { ...h, timestamp }, body, now })).toEqual({
        ok: false,
        reason: 'bad-timestamp',
      });
    }
    expect(() => decodeWebhookSecret('whsec_c2hvcnQ=')).toThrow(RangeError);
  });
});
