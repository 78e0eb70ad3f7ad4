import type { ColumnType, Generated } from 'kysely';
import type { EmailId, OutboxEventId, UserId } from '../../../protocol/src/ids.js';

export interface OutboxEventsTable {
  id: Generated<OutboxEventId>;
  type: string;
  payload: Record<string, unknown>;
  created_at: Generated<Date>;
  published_at: Date | null;
  /** The request or frame that wrote the event (migration 0008); null outside one. */
  trace_id: ColumnType<string | null, string | null | undefined, string | null>;
}

export type EmailStatus = 'pending' | 'sent' | 'outbox' | 'failed';

export interface EmailsTable {
  id: Generated<EmailId>;
  idempotency_key: string;
  template: string;
  user_id: UserId | null;
  to_address: string;
  subject: string;
  text_body: string | null;
  html_body: string | null;
  status: EmailStatus;
  attempts: Generated<number>;
  last_error: string | null;
  created_at: Generated<Date>;
  sent_at: Date | null;
}
