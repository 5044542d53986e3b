// Rate limiting's arithmetic and its shared store. Local: a token bucket per key (requestsPerSecond refills,
// burstSize holds), the keys bounded in number (least recently used dropped) so a client sending random key
// values can't grow memory. Global: GCRA kept in Redis by one atomic Lua script, reached through ioredis, one
// connection per process per address; a key Redis said is over its limit is refused locally until the time
// Redis named, so only requests that may pass wait for a round trip. Times are milliseconds (performance.now()
// locally, Redis's own clock in the script, so replicas' clocks never disagree).
import { Redis } from 'ioredis';

/** One key's bucket: tokens left at `atMs`. */
interface Bucket {
  tokens: number;
  atMs: number;
}

/** Token buckets by key, at most `maxKeys` of them (the least recently used goes first). */
export class TokenBuckets {
  readonly perMs: number;
  readonly burst: number;
  readonly maxKeys: number;
  /** Insertion order is recency: a hit moves its key to the end. */
  private readonly buckets = new Map<string, Bucket>();

  constructor(requestsPerSecond: number, burst: number, maxKeys: number) {
    this.perMs = requestsPerSecond / 1000;
    this.burst = burst;
    this.maxKeys = maxKeys;
  }

  /** Takes a token for `key` at `nowMs`: 0 when there was one, else the ms until one is there (nothing taken). */
  take(key: string, nowMs: number): number {
    const buckets = this.buckets;
    let b = buckets.get(key);
    if (b === undefined) {
      if (buckets.size >= this.maxKeys) buckets.delete(buckets.keys().next().value!);
      b = { tokens: this.burst, atMs: nowMs };
    } else {
      buckets.delete(key);
      const elapsed = nowMs - b.atMs;
      if (elapsed > 0) {
        b.tokens = Math.min(this.burst, b.tokens + elapsed * this.perMs);
        b.atMs = nowMs;
      }
    }
    buckets.set(key, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return (1 - b.tokens) / this.perMs;
  }

  get size(): number {
    return this.buckets.size;
  }
}

/**
 * GCRA (the generic cell rate algorithm), the same arithmetic as the Lua script below, for tests and as its
 * specification. `tat`: the key's theoretical arrival time (0 = none). Allowed when now ≥ tat' − burst·T, where
 * tat' = max(tat, now) + T and T = 1000/rate ms; then tat' is stored. Refused: retry after (tat' − burst·T − now).
 */
export function gcra(
  tatMs: number,
  nowMs: number,
  intervalMs: number,
  burst: number,
): { allowed: boolean; tatMs: number; retryAfterMs: number } {
  const next = Math.max(tatMs, nowMs) + intervalMs;
  const allowAt = next - burst * intervalMs;
  if (nowMs < allowAt) return { allowed: false, tatMs, retryAfterMs: allowAt - nowMs };
  return { allowed: true, tatMs: next, retryAfterMs: 0 };
}

/**
 * GCRA in Redis, atomic (one script). KEYS[1]: the key; ARGV: interval (µs), burst. Time is Redis's (TIME, µs).
 * Returns {1, 0} when allowed (the new TAT stored, expiring when it no longer matters), {0, µs to wait} when not.
 */
export const GCRA_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if tat < now then tat = now end
local nexttat = tat + interval
local allowat = nexttat - burst * interval
if now < allowat then return {0, math.ceil(allowat - now)} end
redis.call('SET', KEYS[1], string.format('%.0f', nexttat), 'PX', math.ceil((nexttat - now) / 1000) + 1)
return {1, 0}
`;

interface GcraClient extends Redis {
  skeinGcra(key: string, intervalUs: number, burst: number): Promise<[number, number]>;
}

/** What a global check came to: allowed, refused (ms to wait), or Redis could not say. */
export type GlobalVerdict = { readonly allowed: boolean; readonly retryAfterMs: number } | 'unavailable';

export interface RedisConnectionOptions {
  readonly timeoutMs: number;
  /** Told of connection errors (at most once per reconnect cycle; never throws into Redis's callbacks). */
  readonly onError?: (message: string) => void;
}

/** A shared connection to one Redis address, counted by its users (a Snapshot's stages hold leases). */
class SharedRedis {
  readonly client: GcraClient;
  users = 0;
  private errorReported = false;

  constructor(url: string, opts: RedisConnectionOptions) {
    const client = new Redis(url, {
      // Offline: a command fails at once (the policy's failureMode answers), never waits in a queue.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: opts.timeoutMs,
      connectTimeout: Math.max(1000, opts.timeoutMs),
      // Reconnect for ever, quickly at first, then once a second.
      retryStrategy: (times: number) => Math.min(times * 50, 1000),
      lazyConnect: false,
    }) as GcraClient;
    client.defineCommand('skeinGcra', { numberOfKeys: 1, lua: GCRA_SCRIPT });
    // Without a listener an 'error' event would be thrown: nothing Redis does may end the process.
    client.on('error', (err: unknown) => {
      if (this.errorReported) return;
      this.errorReported = true;
      try {
        opts.onError?.(err instanceof Error ? err.message : String(err));
      } catch {
        // a logger's failure is not Redis's
      }
    });
    client.on('ready', () => {
      this.errorReported = false;
    });
    this.client = client;
  }
}

const connections = new Map<string, SharedRedis>();

/** A user's hold on a shared connection; dispose() lets it go (the last one closes it). */
export interface RedisLease {
  readonly client: GcraClient;
  dispose(): void;
}

/** The process's connection to `url` (made on first use; the first user's timeout applies to all). */
export function leaseRedis(url: string, opts: RedisConnectionOptions): RedisLease {
  let shared = connections.get(url);
  if (shared === undefined) {
    shared = new SharedRedis(url, opts);
    connections.set(url, shared);
  }
  shared.users++;
  const s = shared;
  let released = false;
  return {
    client: s.client,
    dispose() {
      if (released) return;
      released = true;
      if (--s.users > 0) return;
      connections.delete(url);
      s.client.disconnect();
    },
  };
}

/**
 * A limit shared through Redis: `check` asks the script unless the key is known to be over its limit until a
 * later time (then it answers at once). Keys blocked locally are bounded like the token buckets.
 */
export class GlobalLimiter {
  private readonly lease: RedisLease;
  private readonly intervalUs: number;
  private readonly burst: number;
  private readonly prefix: string;
  private readonly maxKeys: number;
  /** Key → performance.now() ms until which Redis would refuse it. */
  private readonly blocked = new Map<string, number>();

  constructor(lease: RedisLease, name: string, requestsPerSecond: number, burst: number, maxKeys: number) {
    this.lease = lease;
    this.intervalUs = 1_000_000 / requestsPerSecond;
    this.burst = burst;
    this.prefix = `skein:rl:${name}:`;
    this.maxKeys = maxKeys;
  }

  /** Locally known to be over the limit: the ms left; else 0 (ask Redis). */
  blockedFor(key: string, nowMs: number): number {
    const until = this.blocked.get(key);
    if (until === undefined) return 0;
    if (until > nowMs) return until - nowMs;
    this.blocked.delete(key);
    return 0;
  }

  /** Asks Redis for one request of `key`; never rejects. */
  async check(key: string): Promise<GlobalVerdict> {
    try {
      const reply = await this.lease.client.skeinGcra(this.prefix + key, this.intervalUs, this.burst);
      if (!Array.isArray(reply)) return 'unavailable';
      const allowed = Number(reply[0]) === 1;
      const retryAfterMs = Number(reply[1]) / 1000;
      if (!allowed) this.block(key, performance.now() + retryAfterMs);
      return { allowed, retryAfterMs };
    } catch {
      return 'unavailable';
    }
  }

  private block(key: string, untilMs: number): void {
    const blocked = this.blocked;
    if (!blocked.has(key) && blocked.size >= this.maxKeys) blocked.delete(blocked.keys().next().value!);
    blocked.set(key, untilMs);
  }
}
