/**
 * The marketplace's bid steps over real HTTP, as a client sends them: a worker's bid on a posted
 * job and a hirer's accept of it, each under a fresh Idempotency-Key unless one is given. They
 * answer the HTTP result unchecked: each test asserts what it expects of it.
 */
import { randomUUID } from 'node:crypto';
import type { httpClient, Registered } from './http.js';

type Api = ReturnType<typeof httpClient>;

/** `worker` bids `bid` on the job `jobId`. */
export const placeBid = (
  api: Api,
  worker: Registered,
  jobId: string,
  bid: { amount: number; deliveryDays: number; coverLetter?: string },
) =>
  api.call<{ id: string; version: number }>('POST', `/v1/jobs/${jobId}/bids`, {
    token: worker.accessToken,
    headers: { 'idempotency-key': randomUUID() },
    body: bid,
  });

/** `hirer` accepts `bid` at the version they saw (If-Match), under `key` (a fresh one unless given). */
export const acceptBid = <T = Record<string, unknown>>(
  api: Api,
  hirer: Registered,
  bid: { id: string; version: number },
  key: string = randomUUID(),
) =>
  api.call<T>('POST', `/v1/bids/${bid.id}/accept`, {
    token: hirer.accessToken,
    headers: { 'idempotency-key': key, 'if-match': `"${bid.version}"` },
  });
