// State a stage keeps across reloads (a breaker's counts, a token bucket, outlier records): held here, by
// name, not on the stage objects, which every Snapshot builds anew. A new Snapshot's stages ask for their
// state while it is compiled and get the running one's when the name is the same; once the new Snapshot is
// serving, what it did not ask for is let go.

/** What a stage's factory sees: its own corner of the store (keys are scoped to the stage and listener). */
export interface StageState {
  /** The value kept under `key`, created by `create` the first time any Snapshot asks for it. */
  get<T>(key: string, create: () => T): T;
}

/** A kept value that holds something to release (a timer, a connection) when no Snapshot uses it any more. */
export interface Disposable {
  dispose(): void;
}

export class StateStore {
  private readonly values = new Map<string, unknown>();
  /** Keys asked for by the Snapshot being compiled; null when none is. */
  private asked: Set<string> | null = null;

  /** Starts recording what the next Snapshot asks for. */
  beginCompile(): void {
    this.asked = new Set();
  }

  /** The store as one stage of one listener sees it. */
  scope(stage: string, listener: string): StageState {
    const prefix = `${stage}\u0000${listener}\u0000`;
    return {
      get: <T>(key: string, create: () => T): T => {
        const full = prefix + key;
        this.asked?.add(full);
        if (this.values.has(full)) return this.values.get(full) as T;
        const value = create();
        this.values.set(full, value);
        return value;
      },
    };
  }

  /** The compiled Snapshot is serving: drop (and dispose) what it did not ask for. */
  commit(): void {
    const asked = this.asked;
    this.asked = null;
    if (asked === null) return;
    for (const [key, value] of this.values) {
      if (asked.has(key)) continue;
      this.values.delete(key);
      dispose(value);
    }
  }

  /** The compiled Snapshot was refused: drop only what it created (the running one's keys stay). */
  abort(before: ReadonlySet<string>): void {
    this.asked = null;
    for (const [key, value] of this.values) {
      if (before.has(key)) continue;
      this.values.delete(key);
      dispose(value);
    }
  }

  /** Shutdown: drop (and dispose) everything. */
  disposeAll(): void {
    this.asked = null;
    const values = [...this.values.values()];
    this.values.clear();
    for (const value of values) dispose(value);
  }

  keys(): ReadonlySet<string> {
    return new Set(this.values.keys());
  }

  get size(): number {
    return this.values.size;
  }
}

function dispose(value: unknown): void {
  if (typeof value === 'object' && value !== null && typeof (value as Disposable).dispose === 'function')
    (value as Disposable).dispose();
}
