// The control store's one interface: named collections of JSON records keyed by id. The file store (embedded
// default) and the Redis store (several control replicas sharing state) implement it and run the same
// conformance suite (test/control/store/conformance.ts). Records are plain JSON values: what goes in comes back
// equal. Every record has a version (1 on its first write, one more on each write after), so concurrent
// writers never silently overwrite each other: putIf writes only over the version the writer read. A deleted
// record is gone with its version: written again, it starts again at 1.

export interface StoredRecord {
  readonly id: string;
}

export interface RecordStore {
  /** Every record of `collection`, oldest write first. */
  list<T extends StoredRecord>(collection: string): Promise<T[]>;
  get<T extends StoredRecord>(collection: string, id: string): Promise<T | undefined>;
  /** Inserts or replaces the record with `record.id`; durable when the promise resolves. */
  put<T extends StoredRecord>(collection: string, record: T): Promise<void>;
  /** True when there was a record to delete. */
  delete(collection: string, id: string): Promise<boolean>;
  /** The record with its version; undefined when there is none. */
  getVersioned<T extends StoredRecord>(collection: string, id: string): Promise<Versioned<T> | undefined>;
  /**
   * Writes `record` only if its current version is `expected` (0: only if there is no such record); resolves
   * with the new version. Otherwise rejects with a VersionConflict carrying the current version (0: none).
   */
  putIf<T extends StoredRecord>(collection: string, record: T, expected: number): Promise<number>;
  /**
   * Calls `onChange(id)` after each write or delete in `collection` made through any store over the same backing
   * (this one, or another control replica's over the same Redis). Returns the function that stops it.
   */
  watch(collection: string, onChange: (id: string) => void): () => void;
  /** Waits for writes in flight; the store is unusable afterwards. */
  close(): Promise<void>;
}

/** Collection and id names: safe as file names and Redis keys. */
export const NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,127}$/i;

export interface Versioned<T> {
  readonly record: T;
  readonly version: number;
}

/** putIf found another version than the writer expected: it read a record someone has changed since. */
export class VersionConflict extends Error {
  readonly current: number;

  constructor(collection: string, id: string, expected: number, current: number) {
    super(`${collection}/${id} is at version ${current}, not ${expected}`);
    this.current = current;
  }
}
