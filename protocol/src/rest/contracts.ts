/**
 * Contracts over REST (issue 12 §3–4). A contract starts when the hirer accepts a bid and moves only
 * through the transitions of the process table (src/domain/marketplace/contract-process.ts): 409
 * INVALID_TRANSITION names the current state, 403 the wrong party, 404 for anyone who is neither
 * party nor admin. Every POST requires an `Idempotency-Key` header (a retry gets the first answer).
 */
import { z } from 'zod';
import { BidId, ContractId, JobId, RoomId, UserId } from '../ids.js';
import { Cursor, Iso, PageLimit, page } from './common.js';
import { csv } from './jobs.js';
import { Amount, Currency } from './payments.js';
import { multiLineText } from './text.js';

export const ContractState = z.enum([
  'active',
  'delivered',
  'completed',
  'cancelled',
  'disputed',
  'resolved',
]);
export const ContractEventName = z.enum([
  'deliver',
  'request_changes',
  'approve',
  'auto_approve',
  'cancel',
  'dispute',
  'resolve',
]);

export const Contract = z
  .object({
    id: ContractId,
    jobId: JobId,
    bidId: BidId,
    hirerId: UserId,
    workerId: UserId,
    title: z.string().describe("The job's title when the bid was accepted."),
    amount: Amount.describe('Held in escrow from the start; minor units.'),
    currency: Currency,
    deliveryDays: z.int().min(1).max(365),
    state: ContractState,
    version: z.int().min(1).describe('Transitions applied; send it back as If-Match to act on what you saw.'),
    deliveries: z.int().min(0),
    roomId: RoomId.nullable().describe('The job room: both parties are members.'),
    dueAt: Iso,
    deliveredAt: Iso.nullable(),
    autoApproveAt: Iso.nullable().describe('While delivered: when the delivery is approved automatically.'),
    completedAt: Iso.nullable(),
    cancelledAt: Iso.nullable(),
    disputedAt: Iso.nullable(),
    resolvedAt: Iso.nullable(),
    reviewDeadlineAt: Iso.nullable().describe('Once ended: until when each party may review the other.'),
    createdAt: Iso,
    updatedAt: Iso,
  })
  .meta({ id: 'Contract' });

export const ContractTransition = z
  .object({
    version: z.int().min(1),
    event: z.string().describe('accept, or an event of the process table.'),
    from: ContractState.nullable(),
    to: ContractState,
    actor: z.enum(['hirer', 'worker', 'admin', 'timer']),
    actorId: UserId.nullable().describe(
      'Who fired it: null for the timer, and for an admin unless you are one (who moderates is not public).',
    ),
    message: z.string().optional(),
    at: Iso,
  })
  .meta({ id: 'ContractTransition' });

export const ContractDetail = Contract.extend({
  transitions: z.array(ContractTransition).describe('Oldest first: the whole history.'),
  available: z
    .array(ContractEventName)
    .describe(
      'Events the caller may fire now: a delivery past its autoApproveAt offers neither request_changes nor dispute, and a contract delivered once (active again after a request for changes) offers no cancel. A resolve split is checked only when sent.',
    ),
}).meta({ id: 'ContractDetail' });

export const ContractPage = page(Contract).meta({ id: 'ContractPage' });

export const ContractIdParams = z.object({ id: ContractId });

export const TransitionRequest = z
  .strictObject({ message: multiLineText({ max: 2000 }).optional().describe('Shown in the job room.') })
  .meta({ id: 'TransitionRequest' });

export const ResolveRequest = z
  .strictObject({
    toWorker: z
      .int()
      .min(0)
      .max(Number.MAX_SAFE_INTEGER)
      .describe('Minor units to the worker (before the fee).'),
    toHirer: z.int().min(0).max(Number.MAX_SAFE_INTEGER).describe('Minor units back to the hirer.'),
    message: multiLineText({ max: 2000 }).optional(),
  })
  .meta({ id: 'ResolveRequest', description: 'toWorker + toHirer must equal the escrowed amount.' });

export const ContractListQuery = z.strictObject({
  state: csv(ContractState).optional().describe('Comma-separated states; default all.'),
  cursor: Cursor.optional(),
  limit: PageLimit,
});
