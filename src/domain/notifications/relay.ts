/**
 * The outbox relay's part in notifications: one `notifications.deliver` task per (event,
 * recipient), the pair as its task id, so a relay that enqueues an event twice (a crash before its
 * commit) adds nothing. The task reads the event again; its payload carries ids only.
 */
import type { OutboxEventRow } from '../../db/repositories/outbox.repo.js';
import type { Logger } from '../../platform/logger.js';
import { type TaskQueue, taskId } from '../../platform/queues/tasks.js';
import { notificationsOf } from './from-events.js';

export async function enqueueNotificationTasks(
  event: Pick<OutboxEventRow, 'id' | 'type' | 'payload' | 'trace_id'>,
  tasks: Pick<TaskQueue, 'enqueue'>,
  log?: Logger,
): Promise<number> {
  const intents = notificationsOf(event);
  const traceId = event.trace_id?.slice(0, 128) ?? undefined;
  for (const intent of intents) {
    await tasks.enqueue(
      'notifications.deliver',
      { eventId: event.id, userId: intent.userId, ...(traceId === undefined ? {} : { traceId }) },
      taskId(event.id, intent.userId),
    );
  }
  if (intents.length > 0) {
    log?.info(
      { eventId: event.id, event: event.type, recipients: intents.length, ...(traceId ? { traceId } : {}) },
      'notification tasks enqueued',
    );
  }
  return intents.length;
}
