// The file store, control's embedded default: one JSON file per collection under the data directory, read once
// at first use and rewritten whole on every change by write-to-temp, fsync and rename, so a crash leaves the old
// file or the new one, never half of either. Writes to one collection are serialized: each one checks versions,
// changes the records and rewrites the file in its turn, so putIf is atomic against every other write of this
// process (one process owns a data dir). A file that does not parse is moved aside (never deleted) and the
// collection starts empty, with a warning saying where it went.
import { mkdirSync, readFileSync, renameSync } from 'node:fs';
import { open, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { NAME_PATTERN, type RecordStore, type StoredRecord, VersionConflict, type Versioned } from './types.ts';

/** The collection file: `{ "format": 2, "records": [{ "version": 1, "record": {...} }, ...] }`, in write order. */
const FORMAT = 2;

interface Entry {
  readonly record: StoredRecord;
  readonly version: number;
}

interface Collection {
  readonly entries: Map<string, Entry>;
  /** The last write queued; the next one chains after it. */
  tail: Promise<void>;
}

export interface FileStoreOptions {
  readonly dir: string;
  /** Told when a damaged collection file was moved aside, or a watcher threw. */
  readonly warn?: (message: string) => void;
}

function checkName(what: string, name: string): void {
  if (!NAME_PATTERN.test(name)) throw new Error(`invalid ${what} name '${name}'`);
}

/** The records of a collection file: the versioned format, or the first format (a plain array: version 1 each). */
function parseCollection(text: string): Entry[] {
  const parsed: unknown = JSON.parse(text);
  const entries: Entry[] = [];
  if (Array.isArray(parsed)) {
    for (const r of parsed as StoredRecord[]) entries.push({ record: r, version: 1 });
  } else if (
    typeof parsed === 'object' &&
    parsed !== null &&
    (parsed as { format?: unknown }).format === FORMAT &&
    Array.isArray((parsed as { records?: unknown }).records)
  ) {
    for (const e of (parsed as { records: Entry[] }).records) {
      if (!Number.isInteger(e?.version) || e.version < 1) throw new Error('a record has no version');
      entries.push({ record: e.record, version: e.version });
    }
  } else {
    throw new Error(`neither a JSON array nor a format ${FORMAT} collection`);
  }
  for (const e of entries) if (typeof e.record?.id !== 'string') throw new Error('a record has no string id');
  return entries;
}

export class FileStore implements RecordStore {
  readonly dir: string;
  readonly #warn: (message: string) => void;
  readonly #collections = new Map<string, Collection>();
  readonly #watchers = new Map<string, Set<(id: string) => void>>();
  #closed = false;

  constructor(opts: FileStoreOptions) {
    this.dir = opts.dir;
    this.#warn = opts.warn ?? (() => {});
    mkdirSync(this.dir, { recursive: true });
  }

  #file(collection: string): string {
    return join(this.dir, `${collection}.json`);
  }

  #load(collection: string): Collection {
    checkName('collection', collection);
    if (this.#closed) throw new Error('the store is closed');
    let c = this.#collections.get(collection);
    if (c !== undefined) return c;
    c = { entries: new Map(), tail: Promise.resolve() };
    const file = this.#file(collection);
    let text: string | undefined;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (text !== undefined) {
      try {
        for (const e of parseCollection(text)) c.entries.set(e.record.id, e);
      } catch (err) {
        c.entries.clear();
        const aside = `${file}.damaged-${new Date().toISOString().replaceAll(':', '-')}`;
        renameSync(file, aside);
        this.#warn(`${file} could not be read (${(err as Error).message}); moved it to ${aside} and started empty`);
      }
    }
    this.#collections.set(collection, c);
    return c;
  }

  async list<T extends StoredRecord>(collection: string): Promise<T[]> {
    return [...this.#load(collection).entries.values()].map((e) => structuredClone(e.record) as T);
  }

  async get<T extends StoredRecord>(collection: string, id: string): Promise<T | undefined> {
    return (await this.getVersioned<T>(collection, id))?.record;
  }

  async getVersioned<T extends StoredRecord>(collection: string, id: string): Promise<Versioned<T> | undefined> {
    const e = this.#load(collection).entries.get(id);
    return e === undefined ? undefined : { record: structuredClone(e.record) as T, version: e.version };
  }

  async put<T extends StoredRecord>(collection: string, record: T): Promise<void> {
    await this.#write(collection, record, undefined);
  }

  async putIf<T extends StoredRecord>(collection: string, record: T, expected: number): Promise<number> {
    return this.#write(collection, record, expected);
  }

  async delete(collection: string, id: string): Promise<boolean> {
    const c = this.#load(collection);
    return this.#queue(collection, c, id, () => {
      if (!c.entries.has(id)) return false;
      c.entries.delete(id);
      return true;
    });
  }

  watch(collection: string, onChange: (id: string) => void): () => void {
    checkName('collection', collection);
    let set = this.#watchers.get(collection);
    if (set === undefined) this.#watchers.set(collection, (set = new Set()));
    // A wrapper of its own, so the same function watched twice is two watches, each stopped by its own call.
    const watcher = (id: string) => onChange(id);
    set.add(watcher);
    return () => {
      set.delete(watcher);
    };
  }

  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all([...this.#collections.values()].map((c) => c.tail));
  }

  /** put (expected undefined: any version) and putIf: the new version once the file holds it. */
  #write(collection: string, record: StoredRecord, expected: number | undefined): Promise<number> {
    checkName('record id', record.id);
    const c = this.#load(collection);
    // Copied now: the caller may change its object while the write waits its turn.
    const copy = JSON.parse(JSON.stringify(record)) as StoredRecord;
    return this.#queue(collection, c, copy.id, () => {
      const current = c.entries.get(copy.id)?.version ?? 0;
      if (expected !== undefined && expected !== current)
        throw new VersionConflict(collection, copy.id, expected, current);
      // Re-inserting moves the record to the end: the file stays in write order. A deleted record starts again
      // at version 1.
      c.entries.delete(copy.id);
      c.entries.set(copy.id, { record: copy, version: current + 1 });
      return current + 1;
    });
  }

  /**
   * Runs `change` (which checks and changes the records; it may throw, or return false for "nothing changed")
   * after every write queued before it, then rewrites the file and tells the watchers. A write that fails leaves
   * the records as they were.
   */
  #queue<R>(collection: string, c: Collection, id: string, change: () => R): Promise<R> {
    const run = c.tail.then(async () => {
      const before = new Map(c.entries);
      const result = change();
      if (result === false) return result;
      try {
        await this.#rewrite(collection, c);
      } catch (err) {
        c.entries.clear();
        for (const [k, v] of before) c.entries.set(k, v);
        throw err;
      }
      this.#notify(collection, id);
      return result;
    });
    c.tail = run.then(
      () => {},
      () => {},
    );
    return run;
  }

  #notify(collection: string, id: string): void {
    for (const watcher of this.#watchers.get(collection) ?? []) {
      try {
        watcher(id);
      } catch (err) {
        this.#warn(`a watcher of ${collection} failed on ${id}: ${(err as Error).message}`);
      }
    }
  }

  async #rewrite(collection: string, c: Collection): Promise<void> {
    const file = this.#file(collection);
    const tmp = `${file}.tmp-${process.pid}`;
    const body = { format: FORMAT, records: [...c.entries.values()] };
    const handle = await open(tmp, 'w', 0o600);
    try {
      await handle.writeFile(`${JSON.stringify(body, null, 1)}\n`);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, file);
  }
}
