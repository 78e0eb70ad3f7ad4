/**
 * Accounts review 32, against a real node in this process: a reset link that never reset anything
 * — spent by a password change, or by a reset through another link — is refused (400) whatever
 * password comes with it. The retry rule (the same link and new password again, its first answer
 * lost: 204) took it for a retry of its own reset, so whoever held such a dead link (a mail log, a
 * browser history) was told whether a guess was the password set since (204 instead of 400). The
 * link that did reset still answers its own retry with 204.
 *
 * The links are written straight into `email_tokens` (only their SHA-256, as the service stores
 * them), so no mail has to be relayed and rendered first.
 */
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queryRows, startTestNode, type TestNode } from '../support/context.js';
import { httpClient, registerUser } from '../support/http.js';

describe('accounts review 32: reset links spent by something else', () => {
  let testNode: TestNode;
  let api: ReturnType<typeof httpClient>;

  beforeAll(async () => {
    testNode = await startTestNode();
    api = httpClient(testNode.node.baseUrl);
  });
  afterAll(async () => testNode.stop());

  /** A live reset link of the user, as a reset mail holds it. */
  const resetLink = async (userId: string): Promise<string> => {
    const token = randomBytes(32).toString('base64url');
    await queryRows(
      testNode.db.url,
      `insert into email_tokens (user_id, purpose, token_hash, expires_at)
        values ($1, 'reset_password', $2, now() + interval '30 minutes')`,
      [userId, createHash('sha256').update(token).digest('hex')],
    );
    return token;
  };
  const reset = async (token: string, newPassword: string) =>
    (await api.post('/v1/auth/reset-password', { token, newPassword })).status;

  it('refuses a link spent by a password change or by another link, with the password set since', async () => {
    const user = await registerUser(api);
    const [dead, used, spare] = [
      await resetLink(user.id),
      await resetLink(user.id),
      await resetLink(user.id),
    ];
    const changed = 'Saffron-Kestrel-Quarry-31';
    const change = await api.call('PUT', '/v1/auth/password', {
      token: user.accessToken,
      body: { currentPassword: user.password, newPassword: changed },
    });
    expect(change.status).toBe(204);
    // All three links were spent by the change: none of them set `changed`.
    expect(await reset(dead, changed)).toBe(400);
    expect(await reset(dead, 'Another-Guess-Entirely-77')).toBe(400);

    const first = await resetLink(user.id);
    const second = await resetLink(user.id);
    const resetTo = 'Juniper-Walrus-Beacon-64';
    expect(await reset(first, resetTo)).toBe(204);
    // Its own retry (the first answer lost) still succeeds; the link it spent does not.
    expect(await reset(first, resetTo)).toBe(204);
    expect(await reset(second, resetTo)).toBe(400);
    expect(await reset(used, resetTo)).toBe(400);
    expect(await reset(spare, changed)).toBe(400);
    expect((await api.post('/v1/auth/login', { login: user.email, password: resetTo })).status).toBe(200);
  });
});
