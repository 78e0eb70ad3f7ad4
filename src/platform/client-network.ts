/**
 * The network a client address stands for, shared by the limits that count clients (login
 * throttling in domain/auth, WebSocket upgrades in gateway/) so one client is one key for both.
 */

/** The 8 groups of an IPv6 address (`::` expanded, an embedded IPv4 tail as two groups). */
function ipv6Groups(ip: string): string[] | undefined {
  let text = ip.toLowerCase().split('%')[0] ?? '';
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (v4 !== null) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail, extra] = text.split('::');
  if (extra !== undefined) return undefined;
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const missing = 8 - left.length - right.length;
  if (tail === undefined ? missing !== 0 : missing < 1) return undefined;
  return [...left, ...Array<string>(tail === undefined ? 0 : missing).fill('0'), ...right];
}

/**
 * What login throttling and the WebSocket upgrade limit count as one client: an IPv4 address, or
 * an IPv6 /64 (one subscriber usually holds a whole /64, so counting single IPv6 addresses would
 * give it billions of budgets).
 */
export function clientNetwork(ip: string | null): string {
  if (ip === null || ip === '') return 'unknown';
  if (!ip.includes(':')) return ip;
  const groups = ipv6Groups(ip);
  if (groups === undefined) return ip;
  const mapped = groups.slice(0, 6).join(':') === '0:0:0:0:0:ffff';
  if (mapped) {
    const [hi = 0, lo = 0] = groups.slice(6).map((g) => Number.parseInt(g, 16));
    return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  }
  return `${groups
    .slice(0, 4)
    .map((g) => Number.parseInt(g, 16).toString(16))
    .join(':')}::/64`;
}
