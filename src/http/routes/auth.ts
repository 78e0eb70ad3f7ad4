/** /v1/auth/*: registration, login, token refresh and revocation, password flows; and the JWKS. */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import {
  Accepted,
  AuthResponse,
  ChangePasswordRequest,
  ForgotPasswordRequest,
  LoginRequest,
  RefreshRequest,
  RegisterRequest,
  ResetPasswordRequest,
  TokenPair,
  TokenRequest,
} from '../../../protocol/src/rest/auth.js';
import { Problem } from '../../../protocol/src/rest/common.js';
import type { AuthService, ClientMeta } from '../../domain/auth/service.js';
import type { TokenService } from '../../domain/auth/tokens.js';
import { principalOf } from '../plugins/auth.js';

const clientMeta = (request: FastifyRequest): ClientMeta => ({
  ip: request.ip,
  userAgent: typeof request.headers['user-agent'] === 'string' ? request.headers['user-agent'] : null,
});

const errors = { 400: Problem, 401: Problem, 409: Problem, 429: Problem };
const tags = ['auth'];

export function registerAuthRoutes(app: FastifyInstance, auth: AuthService, tokens: TokenService): void {
  const r = app.withTypeProvider<ZodTypeProvider>();

  r.post('/v1/auth/register', {
    config: { auth: 'public' },
    schema: {
      tags,
      operationId: 'register',
      summary: 'Create an account',
      description:
        'Always 202 for a well-formed request with a strong password and a free username, whether or not the email already has an account: a new account is created and mailed a verification link; the owner of an existing one is mailed a notice instead. Log in next (POST /v1/auth/login) to get tokens. A taken username is 409, except to the same registration sent again (same username, email and password: its first answer lost) of an account not locked by an operator, which answers 202 again and changes nothing. Each taken-username answer counts as a failed login of that account from the client IP (whatever the email: the check is a password oracle to whoever knows both), so past LOGIN_MAX_FAILURES of them, or LOGIN_IP_MAX_FAILURES failures of the IP, within LOGIN_WINDOW_S it is 429 RATE_LIMITED with Retry-After, as login is. Shares the password-checking line with logins: beyond 8 of one client IP at once, 429 RATE_LIMITED (Retry-After 1).',
      body: RegisterRequest,
      response: { 202: Accepted, ...errors },
    },
    handler: async (request, reply) => {
      await auth.register(request.body, clientMeta(request));
      return reply.status(202).send({ status: 'accepted' as const });
    },
  });

  r.post('/v1/auth/login', {
    config: { auth: 'public' },
    schema: {
      tags,
      operationId: 'login',
      summary: 'Log in with username or email',
      description:
        'Unknown user, wrong password and an account an operator locked answer alike (401); the right password of a locked account is not counted as a failed login. Failed logins are limited per login name and client IP pair, and per client IP (429 with Retry-After); failures from other addresses never block the owner. Passwords are checked a few at a time per server: one client IP (an IPv6 /64) has at most 8 password checks (logins, registrations, password changes and resets) in that line at once, more are 429 RATE_LIMITED (Retry-After 1, not counted as failures); a full line is 503 for everyone.',
      body: LoginRequest,
      response: { 200: AuthResponse, ...errors },
    },
    handler: async (request) => auth.login(request.body.login, request.body.password, clientMeta(request)),
  });

  r.post('/v1/auth/refresh', {
    config: { auth: 'public' },
    schema: {
      tags,
      operationId: 'refreshTokens',
      summary: 'Exchange a refresh token for a new pair',
      description:
        'The presented token is spent. Presented again within the grace period it returns the same new pair; later it counts as reuse: 401 and the whole session is revoked.',
      body: RefreshRequest,
      response: { 200: TokenPair, ...errors },
    },
    handler: async (request) => auth.refresh(request.body.refreshToken),
  });

  r.post('/v1/auth/logout', {
    config: { auth: 'public' },
    schema: {
      tags,
      operationId: 'logout',
      summary: 'End the session of a refresh token',
      body: RefreshRequest,
      response: { 204: z.null(), ...errors },
    },
    handler: async (request, reply) => {
      await auth.logout(request.body.refreshToken);
      return reply.status(204).send(null);
    },
  });

  r.post('/v1/auth/logout-all', {
    config: { auth: 'user' },
    schema: {
      tags,
      operationId: 'logoutAll',
      summary: 'End every session of the caller',
      response: { 204: z.null(), ...errors },
    },
    handler: async (request, reply) => {
      await auth.logoutAll(principalOf(request));
      return reply.status(204).send(null);
    },
  });

  r.put('/v1/auth/password', {
    config: { auth: 'user' },
    schema: {
      tags,
      operationId: 'changePassword',
      summary: 'Change the password',
      description:
        'Revokes every session; access tokens issued before are rejected from then on. A change whose session ended while its current password was checked (a reset, logout-all or lock meanwhile) is 401 and changes nothing. A wrong current password is 403; after LOGIN_MAX_FAILURES of them within LOGIN_WINDOW_S one session gets 429 RATE_LIMITED (Retry-After), even for the right one. Beyond 8 password checks of one client IP at once, 429 RATE_LIMITED (Retry-After 1, not counted as a wrong password).',
      body: ChangePasswordRequest,
      response: { 204: z.null(), 403: Problem, ...errors },
    },
    handler: async (request, reply) => {
      await auth.changePassword(
        principalOf(request),
        request.body.currentPassword,
        request.body.newPassword,
        clientMeta(request),
      );
      return reply.status(204).send(null);
    },
  });

  r.post('/v1/auth/verify-email', {
    config: { auth: 'public' },
    schema: {
      tags,
      operationId: 'verifyEmail',
      summary: 'Confirm an email address with the mailed token',
      description:
        "The token works for 24 hours. Presented again within them after it confirmed the address (the first answer lost, the link reopened), it answers 204 again and changes nothing, as long as that address is still the account's, verified. A token never issued, expired, or spent for another address is 400 VALIDATION_FAILED.",
      body: TokenRequest,
      response: { 204: z.null(), ...errors },
    },
    handler: async (request, reply) => {
      await auth.verifyEmail(request.body.token);
      return reply.status(204).send(null);
    },
  });

  r.post('/v1/auth/resend-verification', {
    config: { auth: 'user' },
    schema: {
      tags,
      operationId: 'resendVerificationEmail',
      summary: 'Mail a new link that confirms your email address',
      description:
        "Always 202. While your address is unconfirmed, a new verification link (valid 24 hours) is mailed to it, at most one a day however often this is asked (the address may be someone else's: anyone can register with any address); a confirmed address is mailed nothing. For when the link of the registration mail expired or never arrived: an unconfirmed address is mailed no notifications.",
      response: { 202: Accepted, ...errors },
    },
    handler: async (request, reply) => {
      await auth.requestEmailVerification(principalOf(request));
      return reply.status(202).send({ status: 'accepted' as const });
    },
  });

  r.post('/v1/auth/forgot-password', {
    config: { auth: 'public' },
    schema: {
      tags,
      operationId: 'forgotPassword',
      summary: 'Mail a password reset link',
      description:
        'Always 202, whether or not the address belongs to an account, and as soon either way: every request stores a reset request before it is answered (one naming no account mails nothing), so a 202 is never lost by a restart. At most one reset mail per account per 10 minutes, per day while its address is unconfirmed (further requests in that window send nothing; the link already sent stays valid), until the password is changed or reset, or every session signed out: a request after that is mailed anew, and a reset mail asked for before it and still held back by the mail server is not sent any more (its link was spent by the change).',
      body: ForgotPasswordRequest,
      response: { 202: Accepted, ...errors },
    },
    handler: async (request, reply) => {
      await auth.forgotPassword(request.body.email);
      return reply.status(202).send({ status: 'accepted' as const });
    },
  });

  r.post('/v1/auth/reset-password', {
    config: { auth: 'public' },
    schema: {
      tags,
      operationId: 'resetPassword',
      summary: 'Set a new password with the mailed token',
      description:
        "The token works once, for 30 minutes. Every session is revoked. A retry with the same token and the same new password within those 30 minutes (its first answer lost) is 204 again and changes nothing, while that password is still the account's; anything else with a spent token is 400 (a link spent by a password change or by another link's reset too, whatever the password), and past LOGIN_MAX_FAILURES wrong passwords for one spent token within LOGIN_WINDOW_S, 429 RATE_LIMITED (Retry-After), even for the right one. Beyond 8 password checks of one client IP at once (logins, registrations, password changes and resets share that line), 429 RATE_LIMITED (Retry-After 1).",
      body: ResetPasswordRequest,
      response: { 204: z.null(), ...errors },
    },
    handler: async (request, reply) => {
      await auth.resetPassword(request.body.token, request.body.newPassword, clientMeta(request));
      return reply.status(204).send(null);
    },
  });

  r.get('/.well-known/jwks.json', {
    schema: {
      tags,
      operationId: 'getJwks',
      summary: 'Public keys that verify access tokens',
      response: { 200: z.object({ keys: z.array(z.record(z.string(), z.unknown())) }) },
    },
    handler: async (_request, reply) => {
      reply.header('cache-control', 'public, max-age=60');
      return tokens.jwks();
    },
  });
}
