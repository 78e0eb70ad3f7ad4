/** Where the outbox relay sends what an event causes (shared by relay.ts and its dispatchers). */
import type { Kysely } from 'kysely';
import type { Database } from '../../db/database.js';
import type { Bus } from '../../platform/bus/bus.js';
import type { Clock } from '../../platform/clock.js';
import type { Logger } from '../../platform/logger.js';
import type { TaskQueue } from '../../platform/queues/tasks.js';

/** Tasks, and (optionally) live pushes on the bus. */
export interface RelayTargets {
  readonly taskQueue: TaskQueue;
  /** The bus, for live pushes after the commit (at-most-once: REST is the truth). */
  readonly bus?: Pick<Bus, 'publish'>;
  readonly db: Kysely<Database>;
  readonly clock: Clock;
  readonly log: Logger;
}
