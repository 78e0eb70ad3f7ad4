/**
 * What travels on the benchmark's sockets. The gigwire frame codec (standard msgpack, no records,
 * `{t, id?, d?}` envelopes) shared by the load client and the raw uWS peer, and the stamped message
 * body: `<step>|<intended send time, wall ms>|<padding>`, so a receiver in any worker process can
 * compute publish→receive latency and attribute the message to its rate step.
 */
import { Packr } from 'msgpackr';

const packr = new Packr({ useRecords: false });

/** A frame of the gigwire envelope; `d` stays loosely typed and is checked where it is read. */
export interface Frame {
  readonly t: string;
  readonly id?: number;
  readonly d?: Readonly<Record<string, unknown>>;
}

export const MSGPACK_SUBPROTOCOL = 'gigwire.v1.msgpack';
export const BEARER_PREFIX = 'bearer.';
export const CONNECT_PREFIX = 'connect.';

export function encodeFrame(frame: Frame): Buffer {
  return packr.pack(frame);
}

export function decodeFrame(data: Uint8Array): Frame | null {
  const value: unknown = packr.unpack(data);
  if (typeof value !== 'object' || value === null || typeof (value as { t?: unknown }).t !== 'string') {
    return null;
  }
  return value as Frame;
}

/** Builds a body of exactly `bytes` characters (at least the stamp) for one step. */
export function stampBody(step: number, intendedWallMs: number, bytes: number): string {
  const stamp = `${step}|${intendedWallMs.toFixed(3)}|`;
  return stamp.length >= bytes ? stamp : stamp + 'x'.repeat(bytes - stamp.length);
}

/** The step and intended send time of a stamped body, or null for a body the bench did not stamp. */
export function readStamp(body: unknown): { readonly step: number; readonly sentWallMs: number } | null {
  if (typeof body !== 'string') return null;
  const first = body.indexOf('|');
  const second = first < 0 ? -1 : body.indexOf('|', first + 1);
  if (second < 0) return null;
  const step = Number(body.slice(0, first));
  const sentWallMs = Number(body.slice(first + 1, second));
  return Number.isFinite(step) && Number.isFinite(sentWallMs) ? { step, sentWallMs } : null;
}
