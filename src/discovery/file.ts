// The file discovery source: a JSON or YAML file of endpoints (`[{address, weight?, labels?}]` or `{endpoints: [...]}`),
// re-read when it changes. A bad read reports onError and keeps the last good list; an unchanged list is not re-emitted.
import { type FSWatcher, watch } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, extname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { type DiscoveryConfig, StaticEndpoint } from '../config/schema.ts';
import { endpointFromConfig, endpointListKey } from './endpoint-list.ts';
import type { DiscoveredEndpoint, DiscoveryEvents, DiscoverySource } from './types.ts';

export type FileDiscoveryConfig = Extract<DiscoveryConfig, { type: 'file' }>;

export interface FileSourceOptions {
  /** Relative paths resolve against this (the config file's directory); default process.cwd(). */
  baseDir?: string;
  /** fs.watch misses events on some filesystems (NFS, some container mounts); this stat poll catches them. */
  pollIntervalMs?: number;
  /** Coalesces the burst of events one save produces (truncate, write, rename) into one read. */
  debounceMs?: number;
  /** false: rely on the poll alone (tests of the fallback). */
  watch?: boolean;
}

const EndpointList = z.array(StaticEndpoint);
const EndpointDocument = z.strictObject({ endpoints: EndpointList });

/**
 * Parses and validates an endpoint file's text. Throws an Error whose message names the file, each bad field's path
 * and the reason, e.g. `/etc/skein/api.yaml: endpoints[1].address: expected host:port, ...`.
 */
export function parseEndpointFile(text: string, filePath: string): DiscoveredEndpoint[] {
  // JSON files get JSON's stricter grammar; anything else is YAML (which also reads most JSON).
  const format = extname(filePath).toLowerCase() === '.json' ? 'JSON' : 'YAML';
  let doc: unknown;
  try {
    doc = format === 'JSON' ? JSON.parse(text) : parseYaml(text, { logLevel: 'error' });
  } catch (err) {
    // yaml's message goes on to quote the offending lines; the first line ("... at line 3, column 1") is the log's.
    const firstLine = (err as Error).message.split('\n')[0].replace(/:$/, '');
    throw new Error(`${filePath}: invalid ${format}: ${firstLine}`, { cause: err });
  }
  if (doc === null || doc === undefined) throw new Error(`${filePath}: the file is empty`);
  const isObject = typeof doc === 'object' && !Array.isArray(doc);
  if (!Array.isArray(doc) && !isObject) {
    throw new Error(`${filePath}: expected a list of endpoints or { endpoints: [...] }, got ${typeof doc}`);
  }
  const result = Array.isArray(doc) ? EndpointList.safeParse(doc) : EndpointDocument.safeParse(doc);
  if (!result.success) {
    // One reason per field: the schema's HostPort reports both "expected host:port" and a port range for "10.0.0.1".
    const byPath = new Map<string, string>();
    for (const issue of result.error.issues) {
      const path = formatIssuePath(issue.path);
      if (!byPath.has(path)) byPath.set(path, issue.message);
    }
    const issues = [...byPath].map(([path, message]) => `${path}: ${message}`);
    throw new Error(`${filePath}: ${issues.join('; ')}`);
  }
  const entries = Array.isArray(result.data) ? result.data : result.data.endpoints;
  return entries.map(endpointFromConfig);
}

/** `['endpoints', 1, 'address']` → `endpoints[1].address`, the form config errors use everywhere. */
function formatIssuePath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? String(part) : `.${String(part)}`;
  }
  return out === '' ? '(top level)' : out;
}

export function createFileSource(config: FileDiscoveryConfig, options: FileSourceOptions = {}): DiscoverySource {
  return new FileSource(resolve(options.baseDir ?? process.cwd(), config.path), options);
}

class FileSource implements DiscoverySource {
  readonly #path: string;
  readonly #pollIntervalMs: number;
  readonly #debounceMs: number;
  readonly #useWatch: boolean;
  #events: DiscoveryEvents | undefined;
  #closed = false;
  #watcher: FSWatcher | undefined;
  #pollTimer: NodeJS.Timeout | undefined;
  #debounceTimer: NodeJS.Timeout | undefined;
  /** What the debounce timer will do: read the file, or only read it if its stat changed. */
  #pending: 'read' | 'stat-check' | undefined;
  #reading = false;
  #readAgain = false;
  /** ino, size and mtime at the last read (or the stat error), so the poll can tell a change cheaply. */
  #lastStatKey: string | undefined;
  #lastListKey: string | undefined;

  constructor(path: string, options: FileSourceOptions) {
    this.#path = path;
    this.#pollIntervalMs = options.pollIntervalMs ?? 2_000;
    this.#debounceMs = options.debounceMs ?? 50;
    this.#useWatch = options.watch ?? true;
  }

  start(events: DiscoveryEvents): void {
    if (this.#events) throw new Error(`file discovery ${this.#path}: already started`);
    this.#events = events;
    if (this.#closed) return;
    this.#startWatcher();
    this.#pollTimer = setInterval(() => void this.#poll(), this.#pollIntervalMs);
    this.#pollTimer.unref();
    void this.#read();
  }

  close(): void {
    this.#closed = true;
    clearInterval(this.#pollTimer);
    clearTimeout(this.#debounceTimer);
    this.#watcher?.close();
    this.#watcher = undefined;
  }

  // The directory, not the file: an editor's rename-on-save or an atomic write-and-rename replaces the inode, and a
  // watch on the old inode would go quiet. Events for other names still get a stat check, because a Kubernetes
  // ConfigMap update swaps a `..data` symlink and never touches our file name.
  #startWatcher(): void {
    if (!this.#useWatch || this.#watcher || this.#closed) return;
    const name = basename(this.#path);
    try {
      const watcher = watch(dirname(this.#path), { persistent: false }, (_event, filename) => {
        this.#schedule(filename === null || filename === name ? 'read' : 'stat-check');
      });
      watcher.on('error', (err) => {
        watcher.close();
        if (this.#watcher === watcher) this.#watcher = undefined;
        if (!this.#closed)
          this.#events?.onError(new Error(`${this.#path}: watch failed: ${err.message}`, { cause: err }));
      });
      this.#watcher = watcher;
    } catch {
      // The directory may not exist yet: the read reports that, and the poll retries the watch.
    }
  }

  #schedule(what: 'read' | 'stat-check'): void {
    if (this.#closed) return;
    if (this.#pending !== 'read') this.#pending = what;
    clearTimeout(this.#debounceTimer);
    this.#debounceTimer = setTimeout(() => {
      const pending = this.#pending;
      this.#pending = undefined;
      void (pending === 'read' ? this.#read() : this.#poll());
    }, this.#debounceMs);
    this.#debounceTimer.unref();
  }

  async #poll(): Promise<void> {
    this.#startWatcher();
    const key = await this.#statKey();
    if (!this.#closed && key !== this.#lastStatKey) await this.#read();
  }

  async #statKey(): Promise<string> {
    try {
      const s = await stat(this.#path);
      return `${s.ino}:${s.size}:${s.mtimeMs}`;
    } catch (err) {
      return `error:${(err as NodeJS.ErrnoException).code ?? 'unknown'}`;
    }
  }

  /** Reads one at a time; a change that arrives mid-read gets one more read after it. */
  async #read(): Promise<void> {
    if (this.#reading) {
      this.#readAgain = true;
      return;
    }
    this.#reading = true;
    try {
      do {
        this.#readAgain = false;
        await this.#readOnce();
      } while (this.#readAgain && !this.#closed);
    } finally {
      this.#reading = false;
    }
  }

  async #readOnce(): Promise<void> {
    // Stat before reading: a write landing between the two leaves a newer stat for the poll to notice.
    this.#lastStatKey = await this.#statKey();
    let endpoints: DiscoveredEndpoint[];
    try {
      let text: string;
      try {
        text = await readFile(this.#path, 'utf8');
      } catch (err) {
        throw new Error(`cannot read endpoints file: ${(err as Error).message}`, { cause: err });
      }
      endpoints = parseEndpointFile(text, this.#path);
    } catch (err) {
      if (!this.#closed) this.#events?.onError(err as Error);
      return;
    }
    if (this.#closed) return;
    const key = endpointListKey(endpoints);
    if (key === this.#lastListKey) return;
    this.#lastListKey = key;
    this.#events?.onEndpoints(endpoints);
  }
}
