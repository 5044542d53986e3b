// One Kubernetes resource kind kept in memory the way the API asks clients to: list (paged) for a consistent
// snapshot and its resourceVersion, then watch from that resourceVersion with bookmarks, moving it forward with
// every event. A watch that ends or breaks resumes from the last resourceVersion it saw (after a backoff when it
// broke); only a 410 Gone (the version was compacted away) makes it list again. The items held are replaced only
// when a list completes, so a broken watch or a failing list never empties what the discovery pushes: the last
// known set stays until the API answers with a new one.
import type { Watch } from '@kubernetes/client-node';
import { type KubeMeta, objectKey } from './translate.ts';

export interface ListPage<T> {
  readonly metadata?: { readonly resourceVersion?: string; readonly _continue?: string };
  readonly items: readonly T[];
}

export interface ListWatchOptions<T> {
  /** For logs and status: `services`, `endpointslices`, `pods`. */
  readonly name: string;
  /** One page of the list (`cont`: the previous page's continue token). */
  readonly list: (cont: string | undefined) => Promise<ListPage<T>>;
  /** The watch's path (`/api/v1/services`, ...) and extra query (labelSelector). */
  readonly watchPath: string;
  readonly watchQuery?: Readonly<Record<string, string>>;
  readonly watch: Watch;
  /** The items changed (after a list, or an event). */
  readonly onChange: () => void;
  readonly log: (level: 'info' | 'warn' | 'error', message: string) => void;
  /** First wait after a failure, doubled per failure in a row up to 30 s (default 500 ms). */
  readonly retryBaseMs?: number;
}

export interface ListWatchStatus {
  readonly name: string;
  readonly synced: boolean;
  readonly resourceVersion: string;
  readonly items: number;
  readonly watching: boolean;
  /** Lists after the first (410 Gone). */
  readonly relists: number;
  /** Watches resumed from a resourceVersion after one ended or broke. */
  readonly resumes: number;
  readonly lastError: string | null;
}

const MAX_RETRY_MS = 30_000;
/** Watches are asked to end after 5-10 minutes (spread, so many controls do not reconnect at once). */
const WATCH_TIMEOUT_S = 300;

interface Status {
  readonly code?: number;
  readonly reason?: string;
  readonly message?: string;
}

export class ListWatch<T extends { readonly metadata?: KubeMeta }> {
  readonly #opts: ListWatchOptions<T>;
  #items = new Map<string, T>();
  #resourceVersion = '';
  #synced = false;
  #watching = false;
  #relists = 0;
  #resumes = 0;
  #lastError: string | null = null;
  #closed = false;
  #listing = false;
  #abort: AbortController | undefined;
  #wake: (() => void) | undefined;
  #timer: NodeJS.Timeout | undefined;
  readonly #done: Promise<void>;

  constructor(opts: ListWatchOptions<T>) {
    this.#opts = opts;
    this.#done = this.#run();
  }

  get items(): ReadonlyMap<string, T> {
    return this.#items;
  }

  get synced(): boolean {
    return this.#synced;
  }

  status(): ListWatchStatus {
    return {
      name: this.#opts.name,
      synced: this.#synced,
      resourceVersion: this.#resourceVersion,
      items: this.#items.size,
      watching: this.#watching,
      relists: this.#relists,
      resumes: this.#resumes,
      lastError: this.#lastError,
    };
  }

  /** Stops the watch and any wait. A list in flight cannot be aborted: its answer is dropped, not waited for. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#abort?.abort();
    clearTimeout(this.#timer);
    this.#wake?.();
    if (!this.#listing) await this.#done;
  }

  async #run(): Promise<void> {
    let needList = true;
    let failures = 0;
    while (!this.#closed) {
      if (needList) {
        try {
          this.#listing = true;
          await this.#list();
          this.#listing = false;
          needList = false;
          failures = 0;
        } catch (err) {
          this.#listing = false;
          if (this.#closed) break;
          this.#failed(`list failed: ${message(err)}`);
          await this.#sleep(++failures);
          continue;
        }
      }
      if (this.#closed) break;
      const ended = await this.#watchOnce();
      if (this.#closed) break;
      if (ended === 'gone') {
        this.#opts.log(
          'info',
          `kubernetes ${this.#opts.name}: resourceVersion ${this.#resourceVersion} is gone; listing again`,
        );
        this.#relists++;
        needList = true;
        continue;
      }
      this.#resumes++;
      if (ended === 'ended') failures = 0;
      else if (ended === 'empty')
        await this.#sleep(++failures); // ended at once, nothing said: not a hot loop
      else {
        this.#failed(`watch broke: ${ended.error}; resuming from resourceVersion ${this.#resourceVersion}`);
        await this.#sleep(++failures);
      }
    }
  }

  /** Lists every page, then swaps the items in whole. */
  async #list(): Promise<void> {
    const next = new Map<string, T>();
    let cont: string | undefined;
    let resourceVersion = '';
    do {
      const page = await this.#opts.list(cont);
      for (const item of page.items) next.set(objectKey(item.metadata), item);
      resourceVersion = page.metadata?.resourceVersion ?? resourceVersion;
      cont = page.metadata?._continue || undefined;
    } while (cont !== undefined && !this.#closed);
    if (this.#closed) return;
    this.#items = next;
    this.#resourceVersion = resourceVersion;
    this.#synced = true;
    this.#lastError = null;
    this.#opts.onChange();
  }

  /**
   * One watch request, until it ends: 'ended' (the server closed it, or it was quiet past the client's
   * inactivity timeout of 30 s, as a watch on a quiet cluster is between bookmarks: resumed at once), 'empty'
   * (the server closed it without a single event: resumed after a backoff), 'gone' (410) or the error that
   * broke it.
   */
  #watchOnce(): Promise<'ended' | 'empty' | 'gone' | { error: string }> {
    return new Promise((resolve) => {
      let gone = false;
      let events = 0;
      const query = {
        ...this.#opts.watchQuery,
        resourceVersion: this.#resourceVersion,
        allowWatchBookmarks: true,
        timeoutSeconds: WATCH_TIMEOUT_S + Math.floor(Math.random() * WATCH_TIMEOUT_S),
      };
      const done = (err: unknown) => {
        this.#watching = false;
        this.#abort = undefined;
        if (gone || statusCode(err) === 410) resolve('gone');
        else if (this.#closed) resolve('ended');
        else if ((err as { name?: unknown } | null)?.name === 'TimeoutError')
          resolve('ended'); // quiet: resume
        else if (err === null || err === undefined) resolve(events > 0 ? 'ended' : 'empty');
        else resolve({ error: message(err) });
      };
      const event = (type: string, object: unknown) => {
        events++;
        if (type === 'ERROR') {
          const status = object as Status;
          if (status.code === 410) {
            gone = true;
            this.#abort?.abort();
          } else this.#failed(`watch error: ${status.code ?? '?'} ${status.reason ?? ''} ${status.message ?? ''}`);
          return;
        }
        const item = object as T;
        const rv = item.metadata?.resourceVersion;
        if (rv !== undefined) this.#resourceVersion = rv;
        if (type === 'BOOKMARK') return;
        const key = objectKey(item.metadata);
        if (type === 'ADDED' || type === 'MODIFIED') this.#items.set(key, item);
        else if (type === 'DELETED') this.#items.delete(key);
        else return;
        this.#opts.onChange();
      };
      this.#watching = true;
      this.#opts.watch.watch(this.#opts.watchPath, query, event, done).then(
        (abort) => {
          this.#abort = abort;
          if (this.#closed || gone) abort.abort();
        },
        (err: unknown) => done(err),
      );
    });
  }

  #failed(text: string): void {
    this.#lastError = text;
    this.#opts.log('warn', `kubernetes ${this.#opts.name}: ${text}`);
  }

  #sleep(failures: number): Promise<void> {
    if (this.#closed) return Promise.resolve();
    const base = this.#opts.retryBaseMs ?? 500;
    const ms = Math.min(MAX_RETRY_MS, base * 2 ** Math.min(failures - 1, 16));
    return new Promise((resolve) => {
      this.#wake = resolve;
      this.#timer = setTimeout(resolve, ms * (0.5 + Math.random() / 2));
    });
  }
}

function statusCode(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as { statusCode?: unknown; code?: unknown };
  return typeof e.statusCode === 'number' ? e.statusCode : typeof e.code === 'number' ? e.code : undefined;
}

/** One line: the API's Status (code, reason, message) for a client ApiException, else the error's message. */
function message(err: unknown): string {
  const e = err as { code?: unknown; body?: unknown };
  if (typeof e?.code === 'number' && typeof e.body === 'string') {
    try {
      const status = JSON.parse(e.body) as Status;
      return `HTTP ${e.code} ${status.reason ?? ''}: ${status.message ?? ''}`;
    } catch {
      return `HTTP ${e.code}`;
    }
  }
  return err instanceof Error ? err.message.split('\n')[0] : String(err);
}
