// Which store control runs on, from `--store` and `--store-prefix`: the file store under the data directory
// (the embedded default) or the Redis store (several control replicas sharing state). Parsed at the edge with
// errors that name the option; opened by startControl.
import { join } from 'node:path';
import { FileStore } from './file.ts';
import { PREFIX_PATTERN, RedisStore, redactUrl } from './redis.ts';
import type { RecordStore } from './types.ts';

export type StoreChoice =
  { readonly kind: 'file' } | { readonly kind: 'redis'; readonly url: string; readonly prefix: string };

export const DEFAULT_STORE_PREFIX = 'skein';

/** `file`, or `redis://HOST:PORT[/DB]` with an optional key prefix. Throws an Error naming the bad option. */
export function parseStoreChoice(store: string, prefix: string | undefined): StoreChoice {
  if (store === 'file') {
    if (prefix !== undefined) throw new Error('--store-prefix applies to a Redis store only (--store redis://...)');
    return { kind: 'file' };
  }
  const usage = `--store must be 'file' or redis://HOST:PORT[/DB], got '${store}'`;
  let url: URL;
  try {
    url = new URL(store);
  } catch {
    throw new Error(usage);
  }
  if (url.protocol !== 'redis:' || url.hostname === '' || url.search !== '' || url.hash !== '') throw new Error(usage);
  if (!/^(\/\d{0,2})?$/.test(url.pathname)) throw new Error(`${usage}: DB is a database number`);
  const chosen = prefix ?? DEFAULT_STORE_PREFIX;
  if (!PREFIX_PATTERN.test(chosen))
    throw new Error(`--store-prefix must be letters, digits and . _ - : (at most 128), got '${chosen}'`);
  return { kind: 'redis', url: store, prefix: chosen };
}

export function openStore(choice: StoreChoice, dataDir: string, warn: (message: string) => void): Promise<RecordStore> {
  if (choice.kind === 'file') return Promise.resolve(new FileStore({ dir: join(dataDir, 'store'), warn }));
  return RedisStore.open({ url: choice.url, prefix: choice.prefix, warn });
}

/** For logs: where the records are (a password in the URL is not shown). */
export function describeStore(choice: StoreChoice, dataDir: string): string {
  if (choice.kind === 'file') return `files under ${join(dataDir, 'store')}`;
  return `Redis ${redactUrl(choice.url)} prefix ${choice.prefix}`;
}
