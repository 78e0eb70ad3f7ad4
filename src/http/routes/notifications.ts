/**
 * The caller's notifications (issue 13): list (newest first, `unread=true` for unread only), unread
 * count, mark read ({ids} or {all: true}; the user's sockets get a `notifications.read` push), and
 * per-type preferences (in-app on/off, email never | offline | always).
 */
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { Problem } from '../../../protocol/src/rest/common.js';
import {
  NotificationPage,
  NotificationPreferences,
  NotificationsQuery,
  ReadNotificationsRequest,
  ReadNotificationsResult,
  UnreadCount,
  UpdateNotificationPreferences,
} from '../../../protocol/src/rest/notifications.js';
import type { NotificationsApi } from '../../domain/notifications/service.js';
import { principalOf } from '../plugins/auth.js';

const errors = { 400: Problem, 401: Problem, 403: Problem };
const tags = ['notifications'];

export function registerNotificationRoutes(app: FastifyInstance, notifications: NotificationsApi): void {
  const r = app.withTypeProvider<ZodTypeProvider>();

  r.get('/v1/notifications', {
    config: { auth: 'user' },
    schema: {
      operationId: 'listNotifications',
      tags,
      summary: 'Your notifications, newest first (unread=true: only unread ones)',
      querystring: NotificationsQuery,
      response: { 200: NotificationPage, ...errors },
    },
    handler: async (request) =>
      notifications.list(principalOf(request).userId, {
        limit: request.query.limit,
        ...(request.query.unread === undefined ? {} : { unread: request.query.unread }),
        ...(request.query.cursor === undefined ? {} : { cursor: request.query.cursor }),
      }),
  });

  r.get('/v1/notifications/unread-count', {
    config: { auth: 'user' },
    schema: {
      operationId: 'countUnreadNotifications',
      tags,
      summary: 'How many of your notifications are unread (the badge)',
      response: { 200: UnreadCount, ...errors },
    },
    handler: async (request) => ({ count: await notifications.unreadCount(principalOf(request).userId) }),
  });

  r.post('/v1/notifications/read', {
    config: { auth: 'user' },
    schema: {
      operationId: 'readNotifications',
      tags,
      summary: 'Mark notifications read ({ids} or {all: true}); your open sockets are told',
      body: ReadNotificationsRequest,
      response: { 200: ReadNotificationsResult, ...errors },
    },
    handler: async (request) => notifications.read(principalOf(request).userId, request.body),
  });

  r.get('/v1/me/notification-preferences', {
    config: { auth: 'user' },
    schema: {
      operationId: 'getNotificationPreferences',
      tags,
      summary: 'Your notification preferences for every type (defaults where you set nothing)',
      response: { 200: NotificationPreferences, ...errors },
    },
    handler: async (request) => notifications.preferences(principalOf(request).userId),
  });

  r.put('/v1/me/notification-preferences', {
    config: { auth: 'user' },
    schema: {
      operationId: 'updateNotificationPreferences',
      tags,
      summary:
        'Change the preferences of some types (inApp and/or email); answers with all of them. security.* types are always emailed: email other than always is 400',
      body: UpdateNotificationPreferences,
      response: { 200: NotificationPreferences, ...errors },
    },
    handler: async (request) => notifications.updatePreferences(principalOf(request).userId, request.body),
  });
}
