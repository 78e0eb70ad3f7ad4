/**
 * The compiled response serializer (issue 15) against the zod serializer it replaces on the routes of
 * routes/users.ts: the same bytes for valid answers (escapes, nulls, optional keys, nested objects),
 * no property the schema does not name, a failure for a missing required property, zod's serializer
 * kept for error statuses, and a refusal at compile time for shapes it cannot write exactly.
 */
import Fastify from 'fastify';
import { type ZodTypeProvider, serializerCompiler as zodSerializerCompiler } from 'fastify-type-provider-zod';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { Problem } from '../../protocol/src/rest/common.js';
import { ContactList, Me, UserPage, UserProfile } from '../../protocol/src/rest/users.js';
import {
  compiledSerializerCompiler,
  compileSerializer,
  UnsupportedResponseSchemaError,
} from './serializer.js';

const ID = '0190c2d4-5b1e-7c3a-9f21-3d4e5f6a7b8c';
const OTHER = '0190c2d4-5b1e-7c3a-9f21-3d4e5f6a7b8d';
const AT = '2026-12-04T22:05:41.123Z';

const user = (overrides: Record<string, unknown> = {}) => ({
  id: ID,
  username: 'ada_lovelace',
  roles: ['worker', 'hirer'],
  displayName: 'Ada "the first" Lovelace \\ \u0001 \u2028 é 🙂',
  bio: `line one\nline two\t${'long '.repeat(2000)}`,
  avatarUrl: null,
  location: '\ud800 lone surrogate',
  workerProfile: {
    skills: ['typescript', 'postgres'],
    hourlyRate: { amount: 4500, currency: 'EUR' },
    availability: 'available',
    portfolioLinks: ['https://example.test/a'],
  },
  createdAt: AT,
  ...overrides,
});

const rating = { count: 3, average: 4.333333333333333, bayesian: 4.1 };
const performance = {
  contracts: 5,
  inProgressContracts: 1,
  completedContracts: 3,
  resolvedContracts: 0,
  cancelledContracts: 1,
  completionRate: 0.75,
  deliveries: 4,
  onTimeDeliveries: 3,
  totalEarned: 120000,
  totalSpent: 0,
};

/** fastify-type-provider-zod's serializer, as the routes had it. */
const zodWrite = (schema: z.ZodType) =>
  zodSerializerCompiler({ schema, method: 'GET', url: '/test', httpStatus: '200' } as never);

const cases: ReadonlyArray<readonly [string, z.ZodType, unknown]> = [
  ['Me', Me, { ...user(), email: 'ada@example.test', emailVerified: true }],
  [
    'Me without a worker profile',
    Me,
    {
      ...user({ roles: ['hirer'], workerProfile: null, bio: null }),
      email: 'a@b.test',
      emailVerified: false,
    },
  ],
  [
    'Me with empty lists and null rate',
    Me,
    {
      ...user({
        roles: [],
        workerProfile: { skills: [], hourlyRate: null, availability: null, portfolioLinks: [] },
      }),
      email: '',
      emailVerified: false,
    },
  ],
  ['UserProfile without presence', UserProfile, { ...user(), rating, performance }],
  [
    'UserProfile with presence',
    UserProfile,
    {
      ...user(),
      presence: { status: 'offline', lastSeenAt: AT },
      rating: { count: 0, average: null, bayesian: 3 },
      performance: { ...performance, completionRate: null },
    },
  ],
  [
    'UserProfile with an undefined presence',
    UserProfile,
    { ...user(), presence: undefined, rating, performance },
  ],
  [
    'UserPage',
    UserPage,
    {
      data: [
        { ...user(), rating },
        { ...user({ id: OTHER }), rating },
      ],
      nextCursor: 'abc',
    },
  ],
  ['UserPage, last page', UserPage, { data: [], nextCursor: null }],
  ['ContactList', ContactList, { data: [{ user: user(), addedAt: AT }] }],
];

describe('compiled response serializer', () => {
  it.each(cases)('writes %s byte for byte as the zod serializer did', (_name, schema, data) => {
    expect(compileSerializer(schema)(data)).toBe(zodWrite(schema)(data));
  });

  it('never writes a property its schema does not name, at any depth', () => {
    const leaky = {
      ...user({
        passwordHash: '$argon2id$secret',
        workerProfile: {
          ...user().workerProfile,
          internalNote: 'x',
          hourlyRate: { amount: 1, currency: 'EUR', fx: 2 },
        },
      }),
      email: 'ada@example.test',
      emailVerified: true,
      email_verified_at: AT,
    };
    const written = compileSerializer(Me)(leaky);
    expect(written).not.toContain('passwordHash');
    expect(written).not.toContain('internalNote');
    expect(written).not.toContain('email_verified_at');
    expect(written).not.toContain('"fx"');
    // The zod serializer stripped the keys of plain objects the same way (a strict object such as
    // Money made it fail the answer instead: 500, no leak either).
    const { hourlyRate: _rate, ...profile } = leaky.workerProfile;
    const strictFree = {
      ...leaky,
      workerProfile: { ...profile, hourlyRate: { amount: 1, currency: 'EUR' } },
    };
    expect(written).toBe(zodWrite(Me)(strictFree));
  });

  it('fails an answer that lacks a required property', () => {
    const { email: _email, ...withoutEmail } = { ...user(), email: 'a@b.test', emailVerified: true };
    expect(() => compileSerializer(Me)(withoutEmail)).toThrow(/email/);
  });

  it('refuses shapes it cannot write exactly, when the route is built', () => {
    // Problem is open to more keys (details); a union picks its branch by validating.
    expect(() => compileSerializer(Problem)).toThrow(UnsupportedResponseSchemaError);
    expect(() =>
      compileSerializer(z.object({ a: z.union([z.object({ b: z.string() }), z.object({ c: z.number() })]) })),
    ).toThrow(UnsupportedResponseSchemaError);
    expect(() => compileSerializer(z.object({ a: z.record(z.string(), z.string()) }))).toThrow(
      UnsupportedResponseSchemaError,
    );
    expect(() => compileSerializer(z.object({ a: z.tuple([z.string(), z.number()]) }))).toThrow(
      UnsupportedResponseSchemaError,
    );
  });

  it('serves a route: 2xx compiled (unknown keys dropped), errors through zod as before', async () => {
    const app = Fastify();
    const r = app.withTypeProvider<ZodTypeProvider>();
    r.get(
      '/me/:mode',
      {
        serializerCompiler: compiledSerializerCompiler,
        schema: { response: { 200: Me, 404: Problem } },
      },
      async (request, reply) => {
        const { mode } = request.params as { mode: string };
        if (mode === 'broken') {
          const { email: _email, ...withoutEmail } = { ...user(), email: 'x@y.test', emailVerified: true };
          return withoutEmail as never;
        }
        if (mode === 'missing') {
          return reply.status(404).send({
            type: 'about:blank',
            title: 'Not Found',
            status: 404,
            code: 'NOT_FOUND',
            detail: 'no such user',
            instance: '/me/missing',
            requestId: 'r1',
            extra: 'kept: Problem is a loose object',
          } as never);
        }
        return { ...user(), email: 'ada@example.test', emailVerified: true, secret: 's3cr3t' } as never;
      },
    );
    await app.ready();
    const ok = await app.inject({ method: 'GET', url: '/me/ok' });
    expect(ok.statusCode).toBe(200);
    expect(ok.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(ok.body).not.toContain('s3cr3t');
    expect(ok.json()).toEqual({ ...user(), email: 'ada@example.test', emailVerified: true });
    // An answer without a required field is an error, not a shorter body.
    const broken = await app.inject({ method: 'GET', url: '/me/broken' });
    expect(broken.statusCode).toBe(500);
    expect(broken.body).not.toContain('ada_lovelace');
    const missing = await app.inject({ method: 'GET', url: '/me/missing' });
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toMatchObject({ code: 'NOT_FOUND', extra: 'kept: Problem is a loose object' });
    await app.close();
  });
});
