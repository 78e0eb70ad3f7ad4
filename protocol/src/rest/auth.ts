/**
 * Accounts: registration, login, token refresh and revocation, password flows.
 * Access tokens are EdDSA JWTs (15 min) verifiable from /.well-known/jwks.json; refresh tokens are
 * opaque, single use (rotated on every refresh), 7 days sliding within 30 days of the login.
 */
import { z } from 'zod';
import { distinct } from './common.js';
import { Me, SelfServiceRole } from './users.js';

const TOO_SHORT = 'must be at least 10 characters';

/**
 * 10–128 characters; common passwords are refused (VALIDATION_FAILED). The minimum also counts the
 * password as it is hashed, in NFC (passwords.ts): five accented letters sent decomposed ("e" +
 * U+0301) are ten code points but a 5-character password. The value is left as sent.
 */
export const NewPassword = z
  .string()
  .min(10, { error: TOO_SHORT, abort: true })
  .max(128, { error: 'must be at most 128 characters' })
  .refine((password) => [...password.normalize('NFC')].length >= 10, { error: TOO_SHORT });

export const Username = z
  .string()
  .regex(/^[A-Za-z0-9_.-]{3,32}$/, { error: 'must be 3-32 characters of A-Z a-z 0-9 _ . -' });

export const Email = z.email({ error: 'must be an email address' }).max(254);

export const RegisterRequest = z
  .strictObject({
    username: Username,
    email: Email,
    password: NewPassword,
    roles: distinct(z.array(SelfServiceRole).min(1).max(2), 'role')
      .optional()
      .describe('Defaults to ["worker"]. Each role at most once.'),
  })
  .meta({ id: 'RegisterRequest' });
export type RegisterRequest = z.infer<typeof RegisterRequest>;

export const LoginRequest = z
  .strictObject({
    login: z.string().min(1).max(254).describe('Username or email.'),
    password: z.string().min(1).max(128),
  })
  .meta({ id: 'LoginRequest' });
export type LoginRequest = z.infer<typeof LoginRequest>;

export const TokenPair = z
  .object({
    accessToken: z.string(),
    connectToken: z
      .string()
      .describe(
        'Opens a WebSocket (subprotocol entry `connect.<connectToken>`) like the access token, and is checked far faster (an HMAC instead of an Ed25519 signature). Same session, claims and expiry as the access token; accepted nowhere else.',
      ),
    refreshToken: z.string(),
    tokenType: z.literal('Bearer'),
    expiresIn: z.number().int().describe('Seconds until the access token expires.'),
  })
  .meta({ id: 'TokenPair' });
export type TokenPair = z.infer<typeof TokenPair>;

export const AuthResponse = TokenPair.extend({ user: Me }).meta({ id: 'AuthResponse' });
export type AuthResponse = z.infer<typeof AuthResponse>;

export const RefreshRequest = z
  .strictObject({ refreshToken: z.string().min(1).max(200) })
  .meta({ id: 'RefreshRequest' });

export const ChangePasswordRequest = z
  .strictObject({ currentPassword: z.string().min(1).max(128), newPassword: NewPassword })
  .meta({ id: 'ChangePasswordRequest' });

export const TokenRequest = z
  .strictObject({ token: z.string().min(1).max(200) })
  .meta({ id: 'TokenRequest' });

export const ForgotPasswordRequest = z.strictObject({ email: Email }).meta({ id: 'ForgotPasswordRequest' });

export const ResetPasswordRequest = z
  .strictObject({ token: z.string().min(1).max(200), newPassword: NewPassword })
  .meta({ id: 'ResetPasswordRequest' });

export const Accepted = z.object({ status: z.literal('accepted') });
