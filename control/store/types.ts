// The control store's one interface: named collections of JSON records keyed by id. The file store (embedded
// default) implements it now; a Redis store will implement the same interface and run the same conformance
// suite (test/control/store/conformance.ts). Records are plain JSON values: what goes in comes back equal.

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
  /** Waits for writes in flight; the store is unusable afterwards. */
  close(): Promise<void>;
}

/** Collection and id names: safe as file names and Redis keys. */
export const NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,127}$/i;
