/** Where the outbox relay sends what an event causes (shared by relay.ts and its dispatchers). */
import type { Clock } from '../../platform/clock.js';
import type { Logger } from '../../platform/logger.js';
import type { TaskQueue } from '../../platform/queues/tasks.js';

/**
 * Tasks, enqueued before the relay marks its events published. Live pushes are not made here: they
 * go out once the events are marked (live.ts), and nothing here reads the database.
 */
export interface RelayTargets {
  readonly taskQueue: TaskQueue;
  readonly clock: Clock;
  readonly log: Logger;
}
