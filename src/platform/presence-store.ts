/**
 * Presence in Redis with one lease per node, not a TTL per socket: for each user a hash
 * nodeId → open sockets there, for each node the set of its users, and a sorted set of node leases.
 * A user is online while any node counts a socket for them. Nodes renew their lease every few
 * seconds; a node whose lease lapsed (it died without closing its sockets) is reaped by any live
 * node: its users lose that node's count and, with no other node, go offline.
 * Transitions (offline→online on the first socket, online→offline on the last) are decided inside
 * Lua scripts, so racing connects and disconnects on several nodes agree on exactly one of each.
 *
 * Redis Cluster: a script may touch keys of one hash slot only, and CONNECT/DISCONNECT touch a
 * user's hash and the node's user set. So users fall into GROUPS groups by a hash of their id, a
 * node keeps one user set per group, and a user's hash shares the hash tag `{<prefix>:presence:<g>}`
 * with the node's set for that group: every script stays atomic in one slot, and presence still
 * spreads over GROUPS slots. Reaping a node reads its GROUPS sets.
 */
import type { Redis } from 'ioredis';

export type PresenceTransition = 'online' | 'offline' | null;

export interface PresenceStore {
  /** Counts a socket of the user on this node; 'online' when it is the user's first anywhere. */
  readonly connected: (userId: string) => Promise<PresenceTransition>;
  /** Uncounts it; 'offline' when it was the user's last anywhere. */
  readonly disconnected: (userId: string) => Promise<PresenceTransition>;
  readonly isOnline: (userIds: readonly string[]) => Promise<boolean[]>;
  /** Nodes whose lease has not lapsed, with its expiry: the node registry placement reads. */
  readonly liveNodes: () => Promise<{ nodeId: string; expiresAt: number }[]>;
  /** Renews this node's lease (call every leaseMs / 3). */
  readonly renewLease: () => Promise<void>;
  /**
   * Lets this node's lease lapse now (shutdown begins): placement on every node stops giving it
   * rooms at its next read, and should this node die before `clearNode`, any reaper cleans up.
   */
  readonly expireLease: () => Promise<void>;
  /** Reaps nodes whose lease lapsed; returns the users that went offline. */
  readonly reapDeadNodes: () => Promise<string[]>;
  /** Removes this node's own counts (at start, after a crash; at clean shutdown); returns users now offline. */
  readonly clearNode: (nodeId?: string) => Promise<string[]>;
}

const CONNECT = `
local before = redis.call('HLEN', KEYS[1])
local count = redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
redis.call('SADD', KEYS[2], ARGV[2])
if before == 0 and count == 1 then return 1 end
return 0`;

const DISCONNECT = `
local current = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if current <= 0 then return 0 end
if current == 1 then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('SREM', KEYS[2], ARGV[2])
else
  redis.call('HINCRBY', KEYS[1], ARGV[1], -1)
end
if redis.call('HLEN', KEYS[1]) == 0 then return 1 end
return 0`;

/** Drops one node's count of one user; 1 when the user has no node left. */
const DROP_NODE = `
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
if redis.call('HLEN', KEYS[1]) == 0 then return 1 end
return 0`;

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
  const leasesKey = `${prefix}:presence:leases`;

  const clearNode = async (node: string): Promise<string[]> => {
    const offline: string[] = [];
    for (let group = 0; group < GROUPS; group++) {
      const users = await redis.smembers(nodeUsersKey(node, group));
      for (const userId of users) {
        if ((await redis.eval(DROP_NODE, 1, userKey(userId), node)) === 1) offline.push(userId);
      }
      await redis.del(nodeUsersKey(node, group));
    }
    // Last, so a reaper that dies half-way leaves the lease lapsed and another one finishes the job.
    await redis.zrem(leasesKey, node);
    return offline;
  };

  const script = (lua: string, userId: string) =>
    redis.eval(lua, 2, userKey(userId), nodeUsersKey(nodeId, presenceGroup(userId)), nodeId, userId);

  return {
    connected: async (userId) => ((await script(CONNECT, userId)) === 1 ? 'online' : null),
    disconnected: async (userId) => ((await script(DISCONNECT, userId)) === 1 ? 'offline' : null),
    isOnline: async (userIds) => {
      if (userIds.length === 0) return [];
      const pipeline = redis.pipeline();
      for (const userId of userIds) pipeline.hlen(userKey(userId));
      const results = (await pipeline.exec()) ?? [];
      return results.map(([, count]) => Number(count) > 0);
    },
    liveNodes: async () => {
      const flat = await redis.zrangebyscore(leasesKey, `(${Date.now()}`, '+inf', 'WITHSCORES');
      const nodes: { nodeId: string; expiresAt: number }[] = [];
      for (let i = 0; i + 1 < flat.length; i += 2) {
        nodes.push({ nodeId: flat[i] ?? '', expiresAt: Number(flat[i + 1]) });
      }
      return nodes;
    },
    renewLease: async () => {
      await redis.zadd(leasesKey, Date.now() + options.leaseMs, nodeId);
    },
    expireLease: async () => {
      await redis.zadd(leasesKey, Date.now(), nodeId);
    },
    reapDeadNodes: async () => {
      const dead = (await redis.zrangebyscore(leasesKey, '-inf', Date.now())).filter(
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
  };
}
