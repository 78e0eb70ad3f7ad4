/**
 * Whether TRUST_PROXY's addresses and ranges together trust every client of an address family, as
 * `true` does: then any client could choose its IP with a made-up X-Forwarded-For. Read as
 * @fastify/proxy-addr (Fastify, the gateway and the connection caps) matches them: an IPv4 client
 * (or one written `::ffff:a.b.c.d`) is matched by IPv4 ranges and by IPv4-mapped IPv6 ranges of at
 * least /96 (`::ffff:0.0.0.0/96` holds every IPv4 address); an IPv6 client by the other IPv6
 * ranges. So `0.0.0.0/0`, `::/0`, `::ffff:0.0.0.0/96` or `0.0.0.0/1,128.0.0.0/1` trust everyone,
 * and `0.0.0.0/1` alone does not. Entries are valid addresses or CIDRs (`isProxyEntry`), or the
 * names proxy-addr knows.
 *
 * May import: nothing of gigwire.
 */
import { isIP } from 'node:net';

/** proxy-addr's names, as it expands them. */
const NAMED_RANGES: Readonly<Record<string, readonly string[]>> = {
  linklocal: ['169.254.0.0/16', 'fe80::/10'],
  loopback: ['127.0.0.1/8', '::1/128'],
  uniquelocal: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7'],
};

interface Range {
  readonly start: bigint;
  readonly end: bigint;
}

const ipv4Number = (address: string): bigint =>
  address.split('.').reduce((value, part) => (value << 8n) | BigInt(Number(part)), 0n);

/** An IPv6 address (valid, no zone) as its 128 bits. */
function ipv6Number(address: string): bigint {
  let text = address;
  const dotted = /\d+\.\d+\.\d+\.\d+$/.exec(text)?.[0];
  if (dotted !== undefined) {
    const value = ipv4Number(dotted);
    text = `${text.slice(0, -dotted.length)}${(value >> 16n).toString(16)}:${(value & 0xffffn).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const first = head === '' ? [] : head.split(':');
  const last = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups =
    tail === undefined
      ? first
      : [...first, ...Array<string>(8 - first.length - last.length).fill('0'), ...last];
  return groups.reduce((value, group) => (value << 16n) | BigInt(Number.parseInt(group, 16)), 0n);
}

const rangeOf = (network: bigint, bits: number, width: number): Range => {
  const size = 1n << BigInt(width - bits);
  const start = (network >> BigInt(width - bits)) << BigInt(width - bits);
  return { start, end: start + size - 1n };
};

/** Whether the ranges together hold every number from 0 to `last`. */
function covers(ranges: readonly Range[], last: bigint): boolean {
  let next = 0n;
  for (const range of [...ranges].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0))) {
    if (range.start > next) return false;
    if (range.end >= next) next = range.end + 1n;
    if (next > last) return true;
  }
  return false;
}

const MAPPED_PREFIX = 0xffffn << 32n;
const LAST_IPV4 = (1n << 32n) - 1n;
const LAST_IPV6 = (1n << 128n) - 1n;

/** The IPv4 and the IPv6 client ranges one entry trusts (as numbers: IPv4 32 bits, IPv6 128). */
function rangesOf(entry: string): { readonly ipv4: Range[]; readonly ipv6: Range[] } {
  const ipv4: Range[] = [];
  const ipv6: Range[] = [];
  for (const item of NAMED_RANGES[entry] ?? [entry]) {
    const [address = '', bitsText] = item.split('/');
    const family = isIP(address);
    // A scoped address (`fe80::1%eth0`) trusts only clients of that zone.
    if (family === 0 || address.includes('%')) continue;
    const bits = bitsText === undefined ? (family === 4 ? 32 : 128) : Number(bitsText);
    if (family === 4) {
      ipv4.push(rangeOf(ipv4Number(address), bits, 32));
      continue;
    }
    const value = ipv6Number(address);
    if (value >> 32n !== MAPPED_PREFIX >> 32n) ipv6.push(rangeOf(value, bits, 128));
    // proxy-addr matches an IPv4-mapped range only against IPv4 clients, and only from /96 on (a
    // bare mapped address is one IPv4 address).
    else if (bitsText === undefined || bits >= 96)
      ipv4.push(rangeOf(value & LAST_IPV4, bitsText === undefined ? 32 : bits - 96, 32));
  }
  return { ipv4, ipv6 };
}

/**
 * @returns the address family every client of which the entries trust together, with the fewest of
 * the entries (in their order) that do, or undefined when some client of each family is trusted by
 * none.
 */
export function trustsEveryClient(
  entries: readonly string[],
): { readonly family: 'IPv4' | 'IPv6'; readonly entries: readonly string[] } | undefined {
  const ranges = [...new Set(entries)].map((entry) => ({ entry, ...rangesOf(entry) }));
  // IPv4-mapped addresses are IPv4 clients: no IPv6 client is one of them.
  const mapped = rangeOf(MAPPED_PREFIX, 96, 128);
  const families = [
    {
      family: 'IPv4',
      of: (list: typeof ranges) =>
        covers(
          list.flatMap((r) => r.ipv4),
          LAST_IPV4,
        ),
    },
    {
      family: 'IPv6',
      of: (list: typeof ranges) => covers([mapped, ...list.flatMap((r) => r.ipv6)], LAST_IPV6),
    },
  ] as const;
  for (const { family, of } of families) {
    if (!of(ranges)) continue;
    let needed = ranges;
    for (const candidate of ranges) {
      const without = needed.filter((r) => r !== candidate);
      if (of(without)) needed = without;
    }
    return { family, entries: needed.map((r) => r.entry) };
  }
  return undefined;
}
