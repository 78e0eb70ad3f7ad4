/**
 * TRUST_PROXY left off (the default) while requests arrive through a proxy: every client then has
 * the proxy's address, so all of them share one per-IP rate limit, one login-failure budget and one
 * connection cap, and one abuser locks everyone out. Nothing else would tell the operator, so the
 * first request that shows it — an X-Forwarded-For header from a peer on a loopback or private
 * network, where proxies sit — is logged once as a warning naming the setting. A client on the
 * public internet sending the header itself proves nothing and is ignored.
 */
import { BlockList, isIPv4 } from 'node:net';
import type { Logger } from '../platform/logger.js';

const PROXY_NETWORKS = new BlockList();
for (const [network, prefix] of [
  ['127.0.0.0', 8],
  ['10.0.0.0', 8],
  ['172.16.0.0', 12],
  ['192.168.0.0', 16],
  ['100.64.0.0', 10],
] as const) {
  PROXY_NETWORKS.addSubnet(network, prefix, 'ipv4');
}
PROXY_NETWORKS.addAddress('::1', 'ipv6');
PROXY_NETWORKS.addSubnet('fc00::', 7, 'ipv6');

/** Whether a socket peer sits where a reverse proxy would: loopback or a private network. */
export function isProxyNetworkPeer(address: string | undefined): boolean {
  if (address === undefined || address === '') return false;
  const v4 = address.startsWith('::ffff:') ? address.slice('::ffff:'.length) : address;
  if (isIPv4(v4)) return PROXY_NETWORKS.check(v4, 'ipv4');
  try {
    return PROXY_NETWORKS.check(address, 'ipv6');
  } catch {
    return false;
  }
}

/**
 * The check for each request while TRUST_PROXY is off (undefined when it is set: nothing to say).
 * Stops looking once it has warned.
 */
export function proxyHint(
  trustProxy: number | readonly string[],
  log: Pick<Logger, 'warn'>,
): ((request: { headers: Record<string, unknown>; socket: { remoteAddress?: string } }) => void) | undefined {
  if (trustProxy !== 0) return undefined;
  let warned = false;
  return (request) => {
    if (warned || request.headers['x-forwarded-for'] === undefined) return;
    if (!isProxyNetworkPeer(request.socket.remoteAddress)) return;
    warned = true;
    log.warn(
      { peer: request.socket.remoteAddress },
      'requests arrive through a proxy (X-Forwarded-For from a private or loopback peer) but TRUST_PROXY is off: every client has the proxy\'s address and shares one rate limit, login-failure budget and connection cap; set TRUST_PROXY to the proxy (README "Deployment")',
    );
  };
}
