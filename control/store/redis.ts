// The Redis store: control's shared state when several control replicas run side by side. Every collection is
// three keys under the prefix: `<prefix>:<collection>:records` (hash id → JSON), `:versions` (hash id → version)
// and `:order` (sorted set id → write sequence from `:seq`; a re-put gets a new sequence, so listing by score is
// write order). Each write is one Lua script: version check, change and a PUBLISH of `<collection>/<id>` on
// `<prefix>:changes`, atomic against every replica's writes. Watching subscribes a second connection (created on
// the first watch) to that channel, so a replica hears its peers' writes as well as its own.
import { Redis } from 'ioredis';
import { NAME_PATTERN, type RecordStore, type StoredRecord, VersionConflict, type Versioned } from './types.ts';

/** Key prefixes: like names, plus ':' so a deployment can nest them (`skein:staging`). */
export const PREFIX_PATTERN = /^[a-z0-9][a-z0-9._:-]{0,127}$/i;

// KEYS: records, versions, order, seq. ARGV: id, JSON, expected ('' = any version), channel, message.
// Returns {1, new version} or {0, current version}.
const PUT_SCRIPT = `
local current = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
if ARGV[3] ~= '' and tonumber(ARGV[3]) ~= current then return {0, current} end
local version = current + 1
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], version)
redis.call('ZADD', KEYS[3], redis.call('INCR', KEYS[4]), ARGV[1])
redis.call('PUBLISH', ARGV[4], ARGV[5])
return {1, version}`;

// KEYS: records, versions, order. ARGV: id, channel, message. Returns 1 when there was a record.
const DELETE_SCRIPT = `
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 1`;

// KEYS: records, versions. ARGV: id. Returns {JSON, version} or {} — one read, never a record of one write with
// the version of another.
const GET_SCRIPT = `
local json = redis.call('HGET', KEYS[1], ARGV[1])
if not json then return {} end
return {json, redis.call('HGET', KEYS[2], ARGV[1])}`;

// KEYS: order, records. Returns the JSON of every record in write order.
const LIST_SCRIPT = `
local out = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local json = redis.call('HGET', KEYS[2], id)
  if json then out[#out + 1] = json end
end
return out`;

interface StoreClient extends Redis {
  skeinStorePut(...args: string[]): Promise<[number, number]>;
  skeinStoreDelete(...args: string[]): Promise<number>;
  skeinStoreGet(...args: string[]): Promise<[string, string] | []>;
  skeinStoreList(...args: string[]): Promise<string[]>;
}

export interface RedisStoreOptions {
  /** redis://host:port[/db] */
  readonly url: string;
  /** Key prefix; replicas that share state use the same one (default 'skein'). */
  readonly prefix?: string;
  /** Told when Redis is unreachable for a while, or a watcher threw. */
  readonly warn?: (message: string) => void;
}

/** The URL for messages: a password in it is shown as ***. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password === '') return url;
    u.password = '***';
    return u.href;
  } catch {
    return url;
  }
}

function checkName(what: string, name: string): void {
  if (!NAME_PATTERN.test(name)) throw new Error(`invalid ${what} name '${name}'`);
}

export class RedisStore implements RecordStore {
  readonly url: string;
  readonly prefix: string;
  readonly #redis: StoreClient;
  readonly #warn: (message: string) => void;
  readonly #channel: string;
  readonly #watchers = new Map<string, Set<(id: string) => void>>();
  #subscriber: Redis | undefined;
  /** Until it resolves, a write of ours could be published before our own watch listens: writes wait for it. */
  #subscribed: Promise<unknown> | undefined;
  readonly #inFlight = new Set<Promise<unknown>>();
  #closed = false;

  private constructor(redis: StoreClient, opts: RedisStoreOptions, prefix: string) {
    this.#redis = redis;
    this.url = opts.url;
    this.prefix = prefix;
    this.#warn = opts.warn ?? (() => {});
    this.#channel = `${prefix}:changes`;
  }

  /** Connects; rejects when Redis cannot be reached now. Once connected, it reconnects for ever. */
  static async open(opts: RedisStoreOptions): Promise<RedisStore> {
    const prefix = opts.prefix ?? 'skein';
    if (!PREFIX_PATTERN.test(prefix)) throw new Error(`invalid key prefix '${prefix}'`);
    let connected = false;
    const redis = new Redis(opts.url, {
      lazyConnect: true,
      // The first connection fails at once (control refuses to start); later outages are retried for ever.
      retryStrategy: (times: number) => (connected ? Math.min(times * 100, 2000) : null),
    }) as StoreClient;
    redis.defineCommand('skeinStorePut', { numberOfKeys: 4, lua: PUT_SCRIPT });
    redis.defineCommand('skeinStoreDelete', { numberOfKeys: 3, lua: DELETE_SCRIPT });
    redis.defineCommand('skeinStoreGet', { numberOfKeys: 2, lua: GET_SCRIPT });
    redis.defineCommand('skeinStoreList', { numberOfKeys: 2, lua: LIST_SCRIPT });
    const store = new RedisStore(redis, opts, prefix);
    let lastError = '';
    redis.on('error', (err: Error) => {
      // Without a listener an 'error' event would end the process; say each new problem once.
      if (connected && err.message !== lastError) store.#warn(`Redis store ${redactUrl(opts.url)}: ${err.message}`);
      lastError = err.message;
    });
    redis.on('ready', () => (lastError = ''));
    try {
      await redis.connect();
    } catch (err) {
      redis.disconnect();
      throw new Error(`cannot reach Redis at ${redactUrl(opts.url)}: ${(err as Error).message || lastError}`);
    }
    connected = true;
    return store;
  }

  #keys(collection: string): { records: string; versions: string; order: string; seq: string } {
    checkName('collection', collection);
    if (this.#closed) throw new Error('the store is closed');
    const base = `${this.prefix}:${collection}`;
    return { records: `${base}:records`, versions: `${base}:versions`, order: `${base}:order`, seq: `${base}:seq` };
  }

  async list<T extends StoredRecord>(collection: string): Promise<T[]> {
    const k = this.#keys(collection);
    return (await this.#redis.skeinStoreList(k.order, k.records)).map((json) => JSON.parse(json) as T);
  }

  async get<T extends StoredRecord>(collection: string, id: string): Promise<T | undefined> {
    return (await this.getVersioned<T>(collection, id))?.record;
  }

  async getVersioned<T extends StoredRecord>(collection: string, id: string): Promise<Versioned<T> | undefined> {
    const k = this.#keys(collection);
    const found = await this.#redis.skeinStoreGet(k.records, k.versions, id);
    if (found.length === 0) return undefined;
    return { record: JSON.parse(found[0]) as T, version: Number(found[1]) };
  }

  async put<T extends StoredRecord>(collection: string, record: T): Promise<void> {
    await this.#track(this.#write(collection, record, ''));
  }

  async putIf<T extends StoredRecord>(collection: string, record: T, expected: number): Promise<number> {
    return this.#track(this.#write(collection, record, String(expected)));
  }

  async #write(collection: string, record: StoredRecord, expected: string): Promise<number> {
    const k = this.#keys(collection);
    checkName('record id', record.id);
    const json = JSON.stringify(record);
    await this.#subscribed;
    const message = `${collection}/${record.id}`;
    const [ok, version] = await this.#redis.skeinStorePut(
      k.records,
      k.versions,
      k.order,
      k.seq,
      record.id,
      json,
      expected,
      this.#channel,
      message,
    );
    if (ok !== 1) throw new VersionConflict(collection, record.id, Number(expected), version);
    return version;
  }

  async delete(collection: string, id: string): Promise<boolean> {
    return this.#track(this.#delete(collection, id));
  }

  async #delete(collection: string, id: string): Promise<boolean> {
    const k = this.#keys(collection);
    await this.#subscribed;
    return (
      (await this.#redis.skeinStoreDelete(k.records, k.versions, k.order, id, this.#channel, `${collection}/${id}`)) ===
      1
    );
  }

  watch(collection: string, onChange: (id: string) => void): () => void {
    checkName('collection', collection);
    if (this.#closed) throw new Error('the store is closed');
    let set = this.#watchers.get(collection);
    if (set === undefined) this.#watchers.set(collection, (set = new Set()));
    const watcher = (id: string) => onChange(id);
    set.add(watcher);
    if (this.#subscriber === undefined) this.#subscribe();
    return () => {
      set.delete(watcher);
    };
  }

  #subscribe(): void {
    // Same server and options; ioredis subscribes again by itself after a reconnect.
    const sub = this.#redis.duplicate();
    this.#subscriber = sub;
    sub.on('error', () => {}); // the command connection already reports Redis being away
    sub.on('message', (_channel: string, message: string) => {
      const slash = message.indexOf('/');
      const collection = message.slice(0, slash);
      const id = message.slice(slash + 1);
      for (const watcher of this.#watchers.get(collection) ?? []) {
        try {
          watcher(id);
        } catch (err) {
          this.#warn(`a watcher of ${collection} failed on ${id}: ${(err as Error).message}`);
        }
      }
    });
    this.#subscribed = sub.subscribe(this.#channel).catch((err: unknown) => {
      this.#warn(`Redis store ${redactUrl(this.url)}: cannot watch ${this.#channel}: ${(err as Error).message}`);
    });
  }

  /** Remembers a write until it settles: close() waits for it (it may still be waiting for the subscription). */
  #track<R>(write: Promise<R>): Promise<R> {
    this.#inFlight.add(write);
    write.then(
      () => this.#inFlight.delete(write),
      () => this.#inFlight.delete(write),
    );
    return write;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.allSettled([...this.#inFlight]);
    // QUIT is queued after every command already sent: writes in flight finish first.
    await Promise.all(
      [this.#redis, this.#subscriber].map(async (c) => {
        if (c === undefined) return;
        try {
          await c.quit();
        } catch {
          c.disconnect();
        }
      }),
    );
  }
}
