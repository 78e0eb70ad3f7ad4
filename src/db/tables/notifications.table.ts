import type { Generated } from 'kysely';
import type { NotificationId, UserId } from '../../../protocol/src/ids.js';

export type DigestStatus = 'open' | 'sent' | 'empty';
export type EmailPreference = 'never' | 'offline' | 'always';

export interface NotificationsTable {
  id: Generated<NotificationId>;
  user_id: UserId;
  /** The outbox event id, or our own key for notifications without one (`unread.<room>.<readSeq>`). */
  event_id: string;
  type: string;
  title: string;
  body: string;
  data: Record<string, unknown>;
  in_app: boolean;
  digest_id: string | null;
  trace_id: string | null;
  created_at: Generated<Date>;
  pushed_at: Date | null;
  read_at: Date | null;
}

export interface NotificationDigestsTable {
  id: Generated<string>;
  user_id: UserId;
  status: Generated<DigestStatus>;
  due_at: Date;
  created_at: Generated<Date>;
  closed_at: Date | null;
  email_key: string | null;
}

export interface NotificationPreferencesTable {
  user_id: UserId;
  type: string;
  in_app: boolean;
  email: EmailPreference;
  updated_at: Generated<Date>;
}
