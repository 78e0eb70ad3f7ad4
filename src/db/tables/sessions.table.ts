import type { Generated } from 'kysely';
import type { SessionId, UserId } from '../../../protocol/src/ids.js';

export interface SessionsTable {
  id: Generated<SessionId>;
  user_id: UserId;
  created_at: Generated<Date>;
  absolute_expires_at: Date;
  revoked_at: Date | null;
  revoked_reason: string | null;
  user_agent: string | null;
  ip: string | null;
}

export interface RefreshTokensTable {
  id: Generated<string>;
  session_id: SessionId;
  token_hash: string;
  created_at: Generated<Date>;
  expires_at: Date;
  spent_at: Date | null;
  successor_sealed: string | null;
}

export interface SigningKeysTable {
  kid: string;
  alg: string;
  public_jwk: Record<string, unknown>;
  private_jwk: Record<string, unknown>;
  created_at: Generated<Date>;
  retired_at: Date | null;
}

export interface EmailTokensTable {
  id: Generated<string>;
  user_id: UserId;
  purpose: 'verify_email' | 'reset_password';
  token_hash: string;
  created_at: Generated<Date>;
  expires_at: Date;
  used_at: Date | null;
  /** The address a verify_email token confirmed when spent (migration 0019); null otherwise. */
  verified_email: string | null;
}
