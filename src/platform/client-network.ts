/**
 * The network a client address stands for, shared by the limits that count clients (login
 * throttling in domain/auth, WebSocket upgrades in gateway/) so one client is one key for both.
 */

/**
 * The 8 groups of an IPv6 address as numbers, however it is written: `::` expanded, groups with or
 * without leading zeros (uWS writes every group as four digits), an embedded IPv4 tail as two
 * groups; undefined when it is no IPv6 address.
 */
function ipv6Groups(ip: string): number[] | undefined {
  let text = ip.toLowerCase().split('%')[0] ?? '';
  const v4 = /(?:^|:)(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (v4 !== null) {
    const octets = v4.slice(1).map(Number) as [number, number, number, number];
    if (octets.some((octet) => octet > 255)) return undefined;
    const [a, b, c, d] = octets;
    const start = v4.index + (v4[0].startsWith(':') ? 1 : 0);
    text = `${text.slice(0, start)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail, extra] = text.split('::');
  if (extra !== undefined) return undefined;
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const missing = 8 - left.length - right.length;
  if (tail === undefined ? missing !== 0 : missing < 1) return undefined;
  const groups = [...left, ...Array<string>(tail === undefined ? 0 : missing).fill('0'), ...right];
  if (!groups.every((group) => /^[0-9a-f]{1,4}$/.test(group))) return undefined;
  return groups.map((group) => Number.parseInt(group, 16));
}

/**
 * The address of an X-Forwarded-For entry that carries the client's port (`203.0.113.5:4711`,
 * `[2001:db8::1]:4711`, as Azure Application Gateway writes them) or brackets: counted with its
 * port, every new connection of one client was a new client to the per-IP limits.
 */
function withoutPort(ip: string): string {
  const v4 = /^(\d{1,3}(?:\.\d{1,3}){3}):\d{1,5}$/.exec(ip);
  if (v4 !== null) return v4[1] as string;
  const v6 = /^\[([^\]]+)\](?::\d{1,5})?$/.exec(ip);
  return v6 === null ? ip : (v6[1] as string);
}

/**
 * What login throttling and the WebSocket upgrade limit count as one client: an IPv4 address, or
 * an IPv6 /64 (one subscriber usually holds a whole /64, so counting single IPv6 addresses would
 * give it billions of budgets). An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, in any spelling:
 * a dual-stack listener reports every IPv4 client so) is its IPv4 address.
 */
export function clientNetwork(given: string | null): string {
  if (given === null || given === '') return 'unknown';
  const ip = withoutPort(given);
  if (!ip.includes(':')) return ip;
  const groups = ipv6Groups(ip);
  if (groups === undefined) return ip;
  const [g0, g1, g2, g3, g4, g5, hi = 0, lo = 0] = groups;
  if (g0 === 0 && g1 === 0 && g2 === 0 && g3 === 0 && g4 === 0 && g5 === 0xffff) {
    return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  }
  return `${groups
    .slice(0, 4)
    .map((g) => g.toString(16))
    .join(':')}::/64`;
}
