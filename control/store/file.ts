// The file store, control's embedded default: one JSON file per collection under the data directory, read once
// at first use and rewritten whole on every change by write-to-temp, fsync and rename, so a crash leaves the old
// file or the new one, never half of either. Writes to one collection are serialized. A file that does not
// parse is moved aside (never deleted) and the collection starts empty, with a warning saying where it went.
import { mkdirSync, readFileSync, renameSync } from 'node:fs';
import { open, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { NAME_PATTERN, type RecordStore, type StoredRecord } from './types.ts';

interface Collection {
  readonly records: Map<string, StoredRecord>;
  /** The last write queued; the next one chains after it. */
  tail: Promise<void>;
}

export interface FileStoreOptions {
  readonly dir: string;
  /** Told when a damaged collection file was moved aside. */
  readonly warn?: (message: string) => void;
}

function checkName(what: string, name: string): void {
  if (!NAME_PATTERN.test(name)) throw new Error(`invalid ${what} name '${name}'`);
}

export class FileStore implements RecordStore {
  readonly dir: string;
  readonly #warn: (message: string) => void;
  readonly #collections = new Map<string, Collection>();
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
    c = { records: new Map(), tail: Promise.resolve() };
    const file = this.#file(collection);
    let text: string | undefined;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (text !== undefined) {
      try {
        const parsed: unknown = JSON.parse(text);
        if (!Array.isArray(parsed)) throw new Error('not a JSON array');
        for (const r of parsed as StoredRecord[]) {
          if (typeof r?.id !== 'string') throw new Error('a record has no string id');
          c.records.set(r.id, r);
        }
      } catch (err) {
        c.records.clear();
        const aside = `${file}.damaged-${new Date().toISOString().replaceAll(':', '-')}`;
        renameSync(file, aside);
        this.#warn(`${file} could not be read (${(err as Error).message}); moved it to ${aside} and started empty`);
      }
    }
    this.#collections.set(collection, c);
    return c;
  }

  async list<T extends StoredRecord>(collection: string): Promise<T[]> {
    return [...this.#load(collection).records.values()].map((r) => structuredClone(r) as T);
  }

  async get<T extends StoredRecord>(collection: string, id: string): Promise<T | undefined> {
    const r = this.#load(collection).records.get(id);
    return r === undefined ? undefined : (structuredClone(r) as T);
  }

  async put<T extends StoredRecord>(collection: string, record: T): Promise<void> {
    checkName('record id', record.id);
    const c = this.#load(collection);
    // Re-inserting moves the record to the end: the file stays in write order.
    c.records.delete(record.id);
    c.records.set(record.id, JSON.parse(JSON.stringify(record)) as StoredRecord);
    await this.#persist(collection, c);
  }

  async delete(collection: string, id: string): Promise<boolean> {
    const c = this.#load(collection);
    if (!c.records.delete(id)) return false;
    await this.#persist(collection, c);
    return true;
  }

  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all([...this.#collections.values()].map((c) => c.tail));
  }

  /** Queues a rewrite of the collection as it is when the write starts (later changes ride on later writes). */
  #persist(collection: string, c: Collection): Promise<void> {
    const write = c.tail.then(() => this.#write(collection, c));
    c.tail = write.catch(() => {});
    return write;
  }

  async #write(collection: string, c: Collection): Promise<void> {
    const file = this.#file(collection);
    const tmp = `${file}.tmp-${process.pid}`;
    const handle = await open(tmp, 'w', 0o600);
    try {
      await handle.writeFile(`${JSON.stringify([...c.records.values()], null, 1)}\n`);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, file);
  }
}
