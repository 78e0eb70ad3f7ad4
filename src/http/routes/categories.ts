/** Admins edit job categories (issue 12 §1); everyone reads them at GET /v1/categories (jobs.ts). */
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { Problem } from '../../../protocol/src/rest/common.js';
import { Category } from '../../../protocol/src/rest/jobs.js';
import {
  CategoryIdParams,
  CreateCategoryRequest,
  UpdateCategoryRequest,
} from '../../../protocol/src/rest/reviews.js';
import { createCategory, updateCategory } from '../../domain/marketplace/categories.js';
import type { MarketplaceDeps } from '../../domain/marketplace/jobs.js';
import { principalOf } from '../plugins/auth.js';

const errors = { 400: Problem, 401: Problem, 403: Problem, 404: Problem, 409: Problem };

export function registerCategoryRoutes(app: FastifyInstance, marketplace: MarketplaceDeps): void {
  const r = app.withTypeProvider<ZodTypeProvider>();

  r.post('/v1/admin/categories', {
    config: { auth: 'admin' },
    schema: {
      operationId: 'createCategory',
      tags: ['jobs', 'admin'],
      summary: 'Add a job category (admins); a taken slug is 409 SLUG_TAKEN',
      body: CreateCategoryRequest,
      response: { 201: Category, ...errors },
    },
    handler: async (request, reply) =>
      reply.status(201).send(await createCategory(marketplace, principalOf(request), request.body)),
  });

  r.patch('/v1/admin/categories/:id', {
    config: { auth: 'admin' },
    schema: {
      operationId: 'updateCategory',
      tags: ['jobs', 'admin'],
      summary: 'Rename a category or change its slug (admins); its id, and so its jobs, stay',
      params: CategoryIdParams,
      body: UpdateCategoryRequest,
      response: { 200: Category, ...errors },
    },
    handler: async (request) => {
      const body = request.body;
      return updateCategory(marketplace, principalOf(request), request.params.id, {
        ...(body.slug === undefined ? {} : { slug: body.slug }),
        ...(body.name === undefined ? {} : { name: body.name }),
      });
    },
  });
}
