/**
 * Actors on other nodes: an ActorRef whose `ask` travels over the Bus to the node that hosts the
 * actor and whose answer comes back the same way, with a timeout and the remote AppError's code.
 * This is the seam placement builds on: a caller holds an ActorRef and does not care where it runs.
 *
 * Wire: each node listens on `node.<nodeId>.requests` and `node.<nodeId>.replies`. A request names
 * the kind, the actor id, the message without its Reply (`RemoteKind.toWire`) and a correlation id;
 * the host rebuilds the message with a Reply of its own (`RemoteKind.fromWire`), asks its local
 * actor, and publishes `{corr, ok, value}` or `{corr, ok: false, error: {code, message, details}}`
 * (a code the asker's version does not know arrives as INTERNAL with `details.remoteCode`).
 * Envelopes are typed by the bus catalogue (ActorRequest, ActorReply in platform/bus/topics.ts);
 * the message inside is parsed with its kind's schema where it arrives. Delivery is at-most-once (Redis pub/sub): a lost
 * request or answer is a timeout (UNAVAILABLE), so remote requests must be safe to resend
 * (room sends carry their clientMsgId).
 *
 * A request that reaches no process (PUBLISH counted 0 receivers) fails at once with
 * UNAVAILABLE `{reason: 'NODE_GONE'}`: the host's subscriber connection is closed, so it is dead or
 * cut off — the caller's placement can drop it before its lease lapses.
 */
import { randomUUID } from 'node:crypto';
import type { z } from 'zod';
import { ErrorCode } from '../../../protocol/src/codes.js';
import type { Bus } from '../../platform/bus/bus.js';
import {
  type ActorReply,
  type ActorRequest,
  actorRepliesTopic,
  actorRequestsTopic,
} from '../../platform/bus/topics.js';
import { AppError } from '../../platform/errors.js';
import type { Logger } from '../../platform/logger.js';
import type { Timers } from '../../platform/timers.js';
import type { ActorRef, Reply } from './types.js';

/** How one kind's messages cross the wire: the message without its Reply, and back. */
export interface RemoteKind<Msg, Wire> {
  readonly kind: string;
  /** Parses a request's message where it arrives. */
  readonly wire: z.ZodType<Wire>;
  /** The message as sent (JSON-safe, no Reply); undefined: this message never leaves its node. */
  readonly toWire: (message: Msg) => Wire | undefined;
}

/** Why a remote request failed without an answer of the host (details.reason). */
export const NODE_GONE = 'NODE_GONE';
export const NO_ANSWER = 'NO_ANSWER';

/** Serves one kind's requests on this node: answers with the value or an AppError. */
export type RemoteHandler<Wire> = (id: string, message: Wire) => Promise<unknown>;

export interface RemoteActors {
  /** Starts listening for requests and replies addressed to this node. */
  readonly start: () => Promise<void>;
  /** Answers requests of `kind` arriving from other nodes with `handle`. */
  readonly serve: <Msg, Wire>(kind: RemoteKind<Msg, Wire>, handle: RemoteHandler<Wire>) => void;
  /** An ActorRef for the actor `id` of `kind` hosted on `nodeId`. */
  readonly ref: <Msg, Wire>(kind: RemoteKind<Msg, Wire>, id: string, nodeId: string) => ActorRef<Msg>;
  /** Stops listening; open requests fail UNAVAILABLE. */
  readonly close: () => Promise<void>;
}

interface Waiting {
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: AppError) => void;
  readonly cancelTimer: () => void;
}

/** A Reply that records the one answer the message's builder will never get here. */
class DetachedReply implements Reply<unknown> {
  settled = false;
  ok(): void {
    this.settled = true;
  }
  fail(): void {
    this.settled = true;
  }
}

const knownCodes: ReadonlySet<string> = new Set(Object.values(ErrorCode));

/**
 * The AppError a failed reply stands for. A code this version does not know (a newer node answered
 * during a rolling deploy) is INTERNAL here, the remote code kept in details.remoteCode.
 */
function remoteError(error: Extract<ActorReply, { ok: false }>['error']): AppError {
  const { code, message, details } = error;
  if (knownCodes.has(code)) {
    return new AppError(code as ErrorCode, message, details === undefined ? {} : { details });
  }
  return new AppError('INTERNAL', message, { details: { ...details, remoteCode: code } });
}

export function createRemoteActors(options: {
  readonly bus: Bus;
  readonly nodeId: string;
  readonly timers: Timers;
  readonly log: Logger;
  /** Milliseconds a remote ask waits when the caller names no timeout. */
  readonly askTimeoutMs: number;
}): RemoteActors {
  const { bus, nodeId, timers, log } = options;
  const waiting = new Map<string, Waiting>();
  const served = new Map<string, { kind: RemoteKind<unknown, unknown>; handle: RemoteHandler<unknown> }>();
  const unsubscribes: (() => Promise<void>)[] = [];

  const answer = (to: string, reply: ActorReply) => {
    bus.publish(actorRepliesTopic(to), reply).catch((error: unknown) => {
      log.warn({ err: error, to }, 'remote reply could not be published');
    });
  };

  const onRequest = (request: ActorRequest) => {
    const { from, corr, kind, id } = request;
    const entry = served.get(kind);
    const message = entry?.kind.wire.safeParse(request.message);
    if (entry === undefined || message === undefined || !message.success) {
      answer(from, {
        corr,
        ok: false,
        error: { code: 'VALIDATION_FAILED', message: `this node does not serve that ${kind} request` },
      });
      return;
    }
    entry.handle(id, message.data).then(
      (value) => answer(from, { corr, ok: true, value: value ?? null }),
      (error: unknown) => {
        if (error instanceof AppError) {
          answer(from, {
            corr,
            ok: false,
            error: {
              code: error.code,
              message: error.message,
              ...(error.details === undefined ? {} : { details: { ...error.details } }),
            },
          });
          return;
        }
        log.error({ err: error, kind, id }, 'remote request handler failed');
        answer(from, { corr, ok: false, error: { code: 'INTERNAL', message: 'internal error' } });
      },
    );
  };

  const onReply = (reply: ActorReply) => {
    const entry = waiting.get(reply.corr);
    if (entry === undefined) return; // timed out already
    waiting.delete(reply.corr);
    entry.cancelTimer();
    if (reply.ok) entry.resolve(reply.value === null ? undefined : reply.value);
    else entry.reject(remoteError(reply.error));
  };

  const ask = <R>(kind: string, id: string, to: string, message: unknown, timeoutMs: number): Promise<R> =>
    new Promise<R>((resolve, reject) => {
      const corr = randomUUID();
      const cancelTimer = timers.schedule(timeoutMs, () => {
        if (!waiting.delete(corr)) return;
        reject(
          new AppError('UNAVAILABLE', `node ${to} did not answer within ${timeoutMs} ms`, {
            details: { reason: NO_ANSWER, retryable: true },
          }),
        );
      });
      waiting.set(corr, { resolve: resolve as (value: unknown) => void, reject, cancelTimer });
      bus.publish(actorRequestsTopic(to), { from: nodeId, corr, kind, id, message }).then(
        (reached) => {
          if (reached > 0 || !waiting.delete(corr)) return;
          cancelTimer();
          reject(
            new AppError('UNAVAILABLE', `node ${to} is gone`, {
              details: { reason: NODE_GONE, node: to, retryable: true },
            }),
          );
        },
        (error: unknown) => {
          if (!waiting.delete(corr)) return;
          cancelTimer();
          reject(
            new AppError('UNAVAILABLE', 'the bus is unreachable; try again', {
              cause: error,
              details: { retryable: true },
            }),
          );
        },
      );
    });

  return {
    start: async () => {
      unsubscribes.push(
        await bus.subscribe(actorRequestsTopic(nodeId), onRequest),
        await bus.subscribe(actorRepliesTopic(nodeId), onReply),
      );
    },
    serve: (kind, handle) => {
      served.set(kind.kind, {
        kind: kind as RemoteKind<unknown, unknown>,
        handle: handle as RemoteHandler<unknown>,
      });
    },
    ref: <Msg, Wire>(kind: RemoteKind<Msg, Wire>, id: string, to: string): ActorRef<Msg> => ({
      kind: kind.kind,
      id,
      tell: (message) => {
        const wire = kind.toWire(message);
        if (wire === undefined) return;
        void ask(kind.kind, id, to, wire, options.askTimeoutMs).catch(() => undefined);
      },
      ask: <R>(build: (reply: Reply<R>) => Msg, timeoutMs?: number): Promise<R> => {
        let wire: Wire | undefined;
        try {
          wire = kind.toWire(build(new DetachedReply() as Reply<R>));
        } catch (error) {
          return Promise.reject(error);
        }
        if (wire === undefined) {
          return Promise.reject(
            new AppError('INTERNAL', `this ${kind.kind} message cannot be sent to another node`),
          );
        }
        return ask<R>(kind.kind, id, to, wire, timeoutMs ?? options.askTimeoutMs);
      },
    }),
    close: async () => {
      for (const unsubscribe of unsubscribes.splice(0)) await unsubscribe();
      for (const [corr, entry] of waiting) {
        waiting.delete(corr);
        entry.cancelTimer();
        entry.reject(new AppError('UNAVAILABLE', 'this node is stopping'));
      }
    },
  };
}
