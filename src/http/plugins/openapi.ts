/**
 * OpenAPI 3.1 generated from the zod schemas of protocol/src/rest (fastify-type-provider-zod), served
 * at /openapi.json, with Swagger UI at /docs (renders under helmet's default CSP).
 */
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import { jsonSchemaTransform, jsonSchemaTransformObject } from 'fastify-type-provider-zod';

export async function registerOpenApi(app: FastifyInstance, version: string): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'gigwire REST API',
        version,
        description:
          'Accounts, profiles and operations of gigwire. Errors are RFC 9457 problem+json with a stable `code` ' +
          '(see protocol/PROTOCOL.md). Access tokens are EdDSA JWTs verifiable from /.well-known/jwks.json.',
      },
      components: {
        securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
      },
    },
    transform: jsonSchemaTransform,
    transformObject: jsonSchemaTransformObject,
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
}
