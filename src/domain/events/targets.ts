/** Where the outbox relay sends what an event causes (shared by relay.ts and its dispatchers). */
import type { Clock } from '../../platform/clock.js';
import type { Logger } from '../../platform/logger.js';
import type { TaskQueue } from '../../platform/queues/tasks.js';

/**
 * Tasks, enqueued inside the relay's transaction. Live pushes are not made here: they go out after
 * its commit (live.ts), and nothing here reads the database (the relay's transaction holds the
 * embedded database's only connection).
 */
export interface RelayTargets {
  readonly taskQueue: TaskQueue;
  readonly clock: Clock;
  readonly log: Logger;
}
