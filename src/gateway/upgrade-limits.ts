/**
 * Admission of WebSocket upgrades before any auth work: a token bucket per client network (per node;
 * the caller keys it by platform/client-network.ts, so an IPv6 /64 is one client), and the rule
 * that finds the client IP behind trusted proxies. Opening a socket costs a JWT check, a
 * session lookup and a user actor, so an address that floods upgrades is refused with HTTP 429 at
 * the cost of one map lookup.
 */

import type { IncomingMessage } from 'node:http';
import proxyAddr from '@fastify/proxy-addr';

/**
 * Fastify's `trustProxy` as the config gives it: a hop count, or proxy addresses/CIDRs (`false` is
 * 0; `true` trusts every hop and lets any client choose its address, so the config refuses it).
 */
export type TrustProxy = boolean | number | readonly string[];

/**
 * The client address of a request that reached us from `remoteAddress` with this X-Forwarded-For
 * header, by exactly the rule Fastify applies to REST requests (same library, same trust), so a
 * client has one address for REST limits and for upgrades.
 */
export function clientAddressResolver(trust: TrustProxy) {
  const trusted =
    typeof trust === 'boolean'
      ? () => trust
      : typeof trust === 'number'
        ? (_address: string, hop: number) => hop < trust
        : proxyAddr.compile([...trust]);
  return (remoteAddress: string, forwardedFor: string | undefined): string => {
    if (trust === false || trust === 0 || forwardedFor === undefined || forwardedFor === '') {
      return remoteAddress;
    }
    // proxy-addr reads only these two fields of the request.
    const request = { socket: { remoteAddress }, headers: { 'x-forwarded-for': forwardedFor } };
    return proxyAddr(request as unknown as IncomingMessage, trusted);
  };
}

export interface UpgradeRateOptions {
  /** Tokens added per second to each address's bucket. */
  readonly perSecond: number;
  /** Bucket capacity: upgrades an idle address may make at once. */
  readonly burst: number;
  /** Milliseconds on a monotonic clock (performance.now): only differences are used. */
  readonly now: () => number;
  /** Addresses tracked at most; past it, full buckets are forgotten first, then the oldest. */
  readonly maxTracked?: number;
}

export type UpgradeAdmission = { readonly ok: true } | { readonly ok: false; readonly retryAfterS: number };

export function createUpgradeRateLimiter(options: UpgradeRateOptions) {
  const maxTracked = options.maxTracked ?? 100_000;
  const buckets = new Map<string, { tokens: number; at: number }>();

  const refill = (bucket: { tokens: number; at: number }, now: number) => {
    bucket.tokens = Math.min(options.burst, bucket.tokens + ((now - bucket.at) / 1000) * options.perSecond);
    bucket.at = now;
  };
  const prune = (now: number) => {
    for (const [address, bucket] of buckets) {
      refill(bucket, now);
      if (bucket.tokens >= options.burst) buckets.delete(address);
    }
    // Still too many busy addresses (a spread-out flood): forget the oldest half rather than grow.
    if (buckets.size > maxTracked) {
      let drop = buckets.size - Math.floor(maxTracked / 2);
      for (const address of buckets.keys()) {
        if (drop-- <= 0) break;
        buckets.delete(address);
      }
    }
  };

  return {
    /** Takes one token for `address`, or says when one will be there. */
    admit(address: string): UpgradeAdmission {
      const now = options.now();
      let bucket = buckets.get(address);
      if (bucket === undefined) {
        if (buckets.size >= maxTracked) prune(now);
        bucket = { tokens: options.burst, at: now };
        buckets.set(address, bucket);
      } else {
        refill(bucket, now);
      }
      if (bucket.tokens >= 1) {
        bucket.tokens -= 1;
        return { ok: true };
      }
      return { ok: false, retryAfterS: Math.max(1, Math.ceil((1 - bucket.tokens) / options.perSecond)) };
    },
    /** Addresses currently tracked (for tests and metrics). */
    size: () => buckets.size,
  };
}

export type UpgradeRateLimiter = ReturnType<typeof createUpgradeRateLimiter>;

/**
 * The open WebSockets of each client network, upgrades in progress included (WS_MAX_CONNECTIONS_PER_IP):
 * the upgrade bucket bounds how fast one address opens sockets, not how many it holds, so without
 * this one address could keep thousands of sockets (of many accounts) and their file descriptors.
 * A place is taken when an upgrade is admitted and given back once, when the upgrade is refused or
 * abandoned, or when its socket closes.
 */
export function createConnectionCap(maxPerClient: number) {
  const open = new Map<string, number>();
  return {
    /** A place for `client`, as the function that gives it back (idempotent); undefined at the cap. */
    acquire(client: string): (() => void) | undefined {
      const count = open.get(client) ?? 0;
      if (count >= maxPerClient) return undefined;
      open.set(client, count + 1);
      let released = false;
      return () => {
        if (released) return;
        released = true;
        const left = (open.get(client) ?? 1) - 1;
        if (left <= 0) open.delete(client);
        else open.set(client, left);
      };
    },
    /** Places `client` holds now. */
    held: (client: string) => open.get(client) ?? 0,
    /** Clients holding a place (for tests). */
    size: () => open.size,
  };
}

export type ConnectionCap = ReturnType<typeof createConnectionCap>;
