/**
 * Presence in Redis with one lease per node, not a TTL per socket: for each user a hash
 * nodeId → open sockets there, for each node the set of its users, and a sorted set of node leases.
 * A user is online while any node counts a socket for them. Nodes renew their lease every few
 * seconds; a node whose lease lapsed (it died without closing its sockets) is reaped by any live
 * node: its users lose that node's count and, with no other node, go offline.
 * Transitions (offline→online on the first socket, online→offline on the last) are decided inside
 * Lua scripts, so racing connects and disconnects on several nodes agree on exactly one of each.
 * The gateway sends the changes of many sockets at once (`apply`): one script per presence group
 * with all its users' changes, all groups in one pipeline, so a burst of connects costs a round
 * trip per batch instead of one per socket.
 *
 * Redis Cluster: a script may touch keys of one hash slot only, and APPLY touches users' hashes
 * and the node's user set. So users fall into GROUPS groups by a hash of their id, a
 * node keeps one user set per group, and a user's hash shares the hash tag `{<prefix>:presence:<g>}`
 * with the node's set for that group: one script per group stays atomic in one slot, and presence still
 * spreads over GROUPS slots. Reaping a node reads its GROUPS sets.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';

export type PresenceTransition = 'online' | 'offline' | null;

/** One socket of a user opened (+1) or closed (-1) on this node. */
export interface PresenceChange {
  readonly userId: string;
  readonly delta: 1 | -1;
}

export interface PresenceStore {
  /** Counts a socket of the user on this node; 'online' when it is the user's first anywhere. */
  readonly connected: (userId: string) => Promise<PresenceTransition>;
  /** Uncounts it; 'offline' when it was the user's last anywhere. */
  readonly disconnected: (userId: string) => Promise<PresenceTransition>;
  /**
   * Applies many changes in one round trip (one pipeline, one script per presence group), in
   * their order for each user; answers each change's transition, in the order given.
   */
  readonly apply: (changes: readonly PresenceChange[]) => Promise<PresenceTransition[]>;
  readonly isOnline: (userIds: readonly string[]) => Promise<boolean[]>;
  /** Nodes whose lease has not lapsed, with its expiry: the node registry placement reads. */
  readonly liveNodes: () => Promise<{ nodeId: string; expiresAt: number }[]>;
  /**
   * Renews this node's lease (call every leaseMs / 3). True when there was none: it lapsed and a
   * reaper removed it with this node's counts (or the node never had one), so counts need a
   * `reconcile`.
   */
  readonly renewLease: () => Promise<boolean>;
  /**
   * When this NODE_ID's lease ends (ms since the epoch by Redis's clock), whoever renewed it;
   * undefined without a live one.
   */
  readonly ownLeaseExpiresAt: () => Promise<number | undefined>;
  /**
   * Lets this node's lease lapse now (shutdown begins): placement on every node stops giving it
   * rooms at its next read, and should this node die before `clearNode`, any reaper cleans up.
   */
  readonly expireLease: () => Promise<void>;
  /** Reaps nodes whose lease lapsed; returns the users that went offline. */
  readonly reapDeadNodes: () => Promise<string[]>;
  /** Removes this node's own counts (at start, after a crash; at clean shutdown); returns users now offline. */
  readonly clearNode: (nodeId?: string) => Promise<string[]>;
  /**
   * Sets this node's counts to exactly `counts` (users missing from it: none), whatever Redis held
   * for the node: after batches of changes were lost (Redis unreachable, a command timed out) or
   * the node's counts were reaped while its lease had lapsed. Answers the users whose state it
   * changed ('online' / 'offline'), in no particular order.
   */
  readonly reconcile: (
    counts: ReadonlyMap<string, number>,
  ) => Promise<{ userId: string; transition: 'online' | 'offline' }[]>;
}

/**
 * Changes of users of one presence group on this node, in order. KEYS[1] is this node's user set
 * of the group, KEYS[2] the node's mark of its last batch in the group, KEYS[2 + j] the hash of
 * change j's user; ARGV[1] the node id, ARGV[2] the batch's id, ARGV[2j + 1] change j's delta
 * (1 or -1) and ARGV[2j + 2] its user id. Answers per change: 1 when it was the user's first
 * socket anywhere (+1) or their last (-1), else 0; so racing nodes agree on exactly one of each.
 *
 * A batch runs once: ioredis sends a command again when its connection closed before the answer
 * came (autoResendUnfulfilledCommands), although Redis may have run it already. Counted twice, a
 * socket would stay counted after it closed (its user online for good) or a close would take a
 * user with an open socket offline. So the mark keeps the batch id with its answers, and the same
 * batch arriving again only gets them back (scale review 25).
 */
const APPLY = `
local node = ARGV[1]
local batch = ARGV[2]
local out = {}
local mark = redis.call('GET', KEYS[2])
if mark and string.sub(mark, 1, #batch + 1) == batch .. ':' then
  local flags = string.sub(mark, #batch + 2)
  for j = 1, #flags do out[j] = tonumber(string.sub(flags, j, j)) end
  return out
end
for j = 1, #KEYS - 2 do
  local key = KEYS[j + 2]
  local user = ARGV[2 * j + 2]
  local result = 0
  if ARGV[2 * j + 1] == '1' then
    local before = redis.call('HLEN', key)
    local count = redis.call('HINCRBY', key, node, 1)
    redis.call('SADD', KEYS[1], user)
    if before == 0 and count == 1 then result = 1 end
  else
    local current = tonumber(redis.call('HGET', key, node) or '0')
    if current > 0 then
      if current == 1 then
        redis.call('HDEL', key, node)
        redis.call('SREM', KEYS[1], user)
      else
        redis.call('HINCRBY', key, node, -1)
      end
      if redis.call('HLEN', key) == 0 then result = 1 end
    end
  end
  out[j] = result
end
-- Kept far beyond a reconnect's resend; a dead node's marks then go by themselves.
redis.call('SET', KEYS[2], batch .. ':' .. table.concat(out), 'PX', 600000)
return out`;

/**
 * Sets this node's count of each user of one presence group. KEYS[1] is this node's user set of
 * the group, KEYS[1 + j] user j's hash; ARGV[1] the node id, ARGV[2j] user j's count here (0: none)
 * and ARGV[2j + 1] their id. Answers per user: 1 when they went online, -1 offline, else 0.
 */
const RECONCILE = `
local node = ARGV[1]
local out = {}
for j = 1, #KEYS - 1 do
  local key = KEYS[j + 1]
  local want = tonumber(ARGV[2 * j])
  local user = ARGV[2 * j + 1]
  local before = redis.call('HLEN', key)
  if want > 0 then
    redis.call('HSET', key, node, want)
    redis.call('SADD', KEYS[1], user)
  else
    redis.call('HDEL', key, node)
    redis.call('SREM', KEYS[1], user)
  end
  local after = redis.call('HLEN', key)
  local result = 0
  if before == 0 and after > 0 then result = 1 elseif before > 0 and after == 0 then result = -1 end
  out[j] = result
end
return out`;

/** Sent as EVALSHA (the script text is ~1 KB: as EVAL, each batch would write it once per group). */
const APPLY_SHA = createHash('sha1').update(APPLY).digest('hex');

/** Redis lost its script cache (restart, SCRIPT FLUSH): the script did not run. */
const isNoScript = (error: unknown) => error instanceof Error && error.message.startsWith('NOSCRIPT');

/**
 * Drops one node's count of each user (KEYS: their hashes, all of one presence group; ARGV[1] the
 * node); answers per user 1 when they have no node left, else 0. Many users per script: a reaper
 * clearing a dead node of 10 000 users one round trip each took seconds on a networked Redis,
 * holding every one of them online well past the 15 s a dead node's users have (scale review 25).
 */
const DROP_NODE = `
local out = {}
for j = 1, #KEYS do
  local result = 0
  if redis.call('HDEL', KEYS[j], ARGV[1]) == 1 and redis.call('HLEN', KEYS[j]) == 0 then result = 1 end
  out[j] = result
end
return out`;

/** Users per DROP_NODE script: about a millisecond of Redis's time each. */
const DROP_CHUNK = 500;

/**
 * Leases are timed by Redis's clock (TIME), never by the nodes': one node's clock stepped (NTP, a VM
 * resumed) or off would otherwise make it see every other lease as lapsed (reaping their users
 * offline and taking every room) or write a lease the others see as lapsed. `now` is in ms.
 */
const REDIS_NOW = `
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`;
/** KEYS[1] the leases, ARGV[1] the lease in ms, ARGV[2] the node: ZADD's answer (1: it was gone). */
const RENEW_LEASE = `${REDIS_NOW}return redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), ARGV[2])`;
/** KEYS[1] the leases, ARGV[1] the node: its lease ends now. */
const EXPIRE_LEASE = `${REDIS_NOW}redis.call('ZADD', KEYS[1], now, ARGV[1])
return 0`;
/** KEYS[1] the leases: the live ones, WITHSCORES. */
const LIVE_LEASES = `${REDIS_NOW}return redis.call('ZRANGEBYSCORE', KEYS[1], string.format('(%d', now), '+inf', 'WITHSCORES')`;
/** KEYS[1] the leases: the nodes whose lease lapsed. */
const LAPSED_LEASES = `${REDIS_NOW}return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', now))`;
/** KEYS[1] the leases, ARGV[1] the node: the end of its lease if it is live, else nil. */
const OWN_LEASE = `${REDIS_NOW}local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) <= now then return false end
return score`;

/** The changes of one presence group in one `apply`: their indexes, the script's keys and arguments. */
interface GroupChanges {
  readonly indexes: number[];
  readonly keys: string[];
  readonly args: string[];
}

/** How many hash slots presence spreads over (see the header); changing it moves every key. */
const GROUPS = 16;

/** A user's presence group: FNV-1a of the id, so every process computes the same one. */
function presenceGroup(userId: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < userId.length; i++) {
    hash ^= userId.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % GROUPS;
}

export function createRedisPresenceStore(options: {
  readonly redis: Redis;
  readonly prefix: string;
  readonly nodeId: string;
  /** How long a lease lasts without renewal; a dead node's users go offline within this plus one reap interval. */
  readonly leaseMs: number;
}): PresenceStore {
  const { redis, prefix, nodeId } = options;
  const tag = (group: number) => `{${prefix}:presence:${group}}`;
  const userKey = (userId: string) => `${tag(presenceGroup(userId))}:user:${userId}`;
  const nodeUsersKey = (node: string, group: number) => `${tag(group)}:node-users:${node}`;
  const batchMarkKey = (node: string, group: number) => `${tag(group)}:batch:${node}`;
  const leasesKey = `${prefix}:presence:leases`;

  const clearNode = async (node: string): Promise<string[]> => {
    const offline: string[] = [];
    for (let group = 0; group < GROUPS; group++) {
      const users = await redis.smembers(nodeUsersKey(node, group));
      for (let i = 0; i < users.length; i += DROP_CHUNK) {
        const chunk = users.slice(i, i + DROP_CHUNK);
        const flags = await redis.eval(DROP_NODE, chunk.length, ...chunk.map(userKey), node);
        if (!Array.isArray(flags)) throw new Error('presence drop answered no list');
        chunk.forEach((userId, j) => {
          if (flags[j] === 1) offline.push(userId);
        });
      }
      await redis.del(nodeUsersKey(node, group), batchMarkKey(node, group));
    }
    // Last, so a reaper that dies half-way leaves the lease lapsed and another one finishes the job.
    await redis.zrem(leasesKey, node);
    return offline;
  };

  const apply = async (changes: readonly PresenceChange[]): Promise<PresenceTransition[]> => {
    if (changes.length === 0) return [];
    // Its id: the same batch sent again after a reconnect is not counted again (APPLY).
    const batch = randomUUID();
    // Per group: the indexes of its changes (in order), its keys and its arguments.
    const groups = new Map<number, GroupChanges>();
    changes.forEach((change, index) => {
      const group = presenceGroup(change.userId);
      let entry = groups.get(group);
      if (entry === undefined) {
        entry = {
          indexes: [],
          keys: [nodeUsersKey(nodeId, group), batchMarkKey(nodeId, group)],
          args: [nodeId, batch],
        };
        groups.set(group, entry);
      }
      entry.indexes.push(index);
      entry.keys.push(userKey(change.userId));
      entry.args.push(change.delta === 1 ? '1' : '-1', change.userId);
    });
    const transitions: PresenceTransition[] = changes.map(() => null);
    const answer = (indexes: readonly number[], flags: unknown) => {
      if (!Array.isArray(flags)) throw new Error('presence script answered no list');
      indexes.forEach((index, j) => {
        if (flags[j] === 1) transitions[index] = changes[index]?.delta === 1 ? 'online' : 'offline';
      });
    };
    // One write for all groups (standalone Redis; each script still stays in its group's slot).
    const run = async (entries: readonly GroupChanges[], sha: boolean) => {
      const pipeline = redis.pipeline();
      for (const { keys, args } of entries) {
        if (sha) pipeline.evalsha(APPLY_SHA, keys.length, ...keys, ...args);
        else pipeline.eval(APPLY, keys.length, ...keys, ...args);
      }
      const results = (await pipeline.exec()) ?? [];
      const unknownScript: GroupChanges[] = [];
      entries.forEach((entry, i) => {
        const [error, flags] = results[i] ?? [new Error('presence pipeline answered nothing')];
        if (sha && isNoScript(error)) unknownScript.push(entry);
        else if (error) throw error;
        else answer(entry.indexes, flags);
      });
      // Those scripts did not run; other groups' users are independent of theirs, so order holds.
      if (unknownScript.length > 0) await run(unknownScript, false);
    };
    await run([...groups.values()], true);
    return transitions;
  };

  const reconcile = async (counts: ReadonlyMap<string, number>) => {
    // Only this node writes its own sets (and a reaper, once its lease lapsed), and the presence
    // service runs no batch meanwhile: what the sets name now is what the scripts below see.
    const named = new Set<string>(counts.keys());
    for (let group = 0; group < GROUPS; group++) {
      for (const userId of await redis.smembers(nodeUsersKey(nodeId, group))) named.add(userId);
    }
    const groups = new Map<number, { users: string[]; keys: string[]; args: string[] }>();
    for (const userId of named) {
      const group = presenceGroup(userId);
      let entry = groups.get(group);
      if (entry === undefined) {
        entry = { users: [], keys: [nodeUsersKey(nodeId, group)], args: [nodeId] };
        groups.set(group, entry);
      }
      entry.users.push(userId);
      entry.keys.push(userKey(userId));
      entry.args.push(String(Math.max(0, counts.get(userId) ?? 0)), userId);
    }
    const changed: { userId: string; transition: 'online' | 'offline' }[] = [];
    for (const { users, keys, args } of groups.values()) {
      const flags = await redis.eval(RECONCILE, keys.length, ...keys, ...args);
      if (!Array.isArray(flags)) throw new Error('presence reconcile answered no list');
      users.forEach((userId, j) => {
        if (flags[j] === 1) changed.push({ userId, transition: 'online' });
        else if (flags[j] === -1) changed.push({ userId, transition: 'offline' });
      });
    }
    return changed;
  };

  return {
    connected: async (userId) => (await apply([{ userId, delta: 1 }]))[0] ?? null,
    disconnected: async (userId) => (await apply([{ userId, delta: -1 }]))[0] ?? null,
    apply,
    isOnline: async (userIds) => {
      if (userIds.length === 0) return [];
      const pipeline = redis.pipeline();
      for (const userId of userIds) pipeline.hlen(userKey(userId));
      const results = (await pipeline.exec()) ?? [];
      return results.map(([, count]) => Number(count) > 0);
    },
    liveNodes: async () => {
      const flat = (await redis.eval(LIVE_LEASES, 1, leasesKey)) as string[];
      const nodes: { nodeId: string; expiresAt: number }[] = [];
      for (let i = 0; i + 1 < flat.length; i += 2) {
        nodes.push({ nodeId: flat[i] ?? '', expiresAt: Number(flat[i + 1]) });
      }
      return nodes;
    },
    // ZADD answers how many members it added: 1 when the lease was gone.
    renewLease: async () =>
      Number(await redis.eval(RENEW_LEASE, 1, leasesKey, String(options.leaseMs), nodeId)) === 1,
    ownLeaseExpiresAt: async () => {
      const score = (await redis.eval(OWN_LEASE, 1, leasesKey, nodeId)) as string | null;
      return score === null ? undefined : Number(score);
    },
    expireLease: async () => {
      await redis.eval(EXPIRE_LEASE, 1, leasesKey, nodeId);
    },
    reapDeadNodes: async () => {
      const dead = ((await redis.eval(LAPSED_LEASES, 1, leasesKey)) as string[]).filter(
        (node) => node !== nodeId,
      );
      const offline: string[] = [];
      for (const node of dead) {
        // One reaper per dead node, even with many live nodes racing.
        const claimed = await redis.set(`${prefix}:presence:reaping:${node}`, nodeId, 'PX', 30_000, 'NX');
        if (claimed === 'OK') offline.push(...(await clearNode(node)));
      }
      return offline;
    },
    clearNode: (node = nodeId) => clearNode(node),
    reconcile,
  };
}
