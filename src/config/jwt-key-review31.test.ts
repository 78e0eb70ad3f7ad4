/**
 * Review 31 (operator): JWT_PRIVATE_KEY was checked for its shape only. A key with a truncated `d`,
 * or whose `x` is another key's (two JWKs pasted together), was accepted here and every start then
 * failed with `start failed: Invalid keyData` (exit 1, no setting named). Refused now as an
 * invalid value: exit 2, one line naming JWT_PRIVATE_KEY, the value not shown.
 */
import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './index.js';

const load = (key: object) =>
  loadConfig(
    { JWT_PRIVATE_KEY: JSON.stringify(key) },
    { cwd: '/srv/gigwire', isRoot: false, stdoutIsTty: false, pid: 1 },
  );
const privateJwk = () => generateKeyPairSync('ed25519').privateKey.export({ format: 'jwk' });

describe('JWT_PRIVATE_KEY (review 31)', () => {
  it('accepts a real Ed25519 key pair', () => {
    const jwk = privateJwk();
    expect(load(jwk).jwt.privateKey).toBe(JSON.stringify(jwk));
  });

  it('refuses a key whose x is not the public key of its d, or whose d is no key', () => {
    const jwk = privateJwk();
    for (const broken of [
      { ...jwk, x: privateJwk().x },
      { ...jwk, d: jwk.d?.slice(0, 20) },
    ]) {
      expect(() => load(broken)).toThrow(ConfigError);
      expect(() => load(broken)).toThrow(/JWT_PRIVATE_KEY must be an Ed25519 private JWK/);
      expect(() => load(broken)).not.toThrow(broken.d ?? 'never');
    }
  });
});
