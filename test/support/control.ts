// `skein control` as a child process for end-to-end tests: started on 127.0.0.1 port 0 with the given data
// directory, its URL read from the line it prints, and a small JSON client for its API.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSkein, type SkeinProcess } from './process.ts';
import { waitFor } from './wait-for.ts';

export interface RunningControl extends SkeinProcess {
  readonly url: string;
  /** The API token writes need (control created it under the data directory). */
  readonly token: string;
}

/** API tokens by control URL: api() sends the right one with every write. */
const tokens = new Map<string, string>();

export async function startSkeinControl(dataDir: string, extraArgs: string[] = []): Promise<RunningControl> {
  const proc = spawnSkein(['control', '--listen', '127.0.0.1:0', '--data-dir', dataDir, ...extraArgs]);
  let url: string;
  try {
    url = await waitFor(() => {
      if (proc.exitStatus !== null) throw new Error(`exited: ${JSON.stringify(proc.exitStatus)}`);
      return /listening on (https?:\/\/\S+)/.exec(proc.stdout)?.[1];
    }, 10_000);
  } catch (err) {
    await proc.kill();
    throw new Error(`skein control did not start: ${(err as Error).message}\n${proc.stderr}`, { cause: err });
  }
  const token =
    /new API token in \S+: (\S+)/.exec(proc.stdout)?.[1] ?? readFileSync(join(dataDir, 'api-token'), 'utf8').trim();
  tokens.set(url, token);
  return Object.assign(Object.create(proc) as SkeinProcess, { url, token });
}

/** Registers the API token of a control started another way (in-process, or with --token-file). */
export function useToken(base: string, token: string): void {
  tokens.set(base, token);
}

export interface ApiResult<T = unknown> {
  readonly status: number;
  readonly body: T;
  readonly contentType: string;
}

/** One API call; the body is parsed when the answer is JSON. */
export async function api<T = Record<string, unknown>>(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  opts: { token?: string | null } = {},
): Promise<ApiResult<T>> {
  const token = opts.token === undefined ? tokens.get(base) : opts.token;
  const res = await fetch(`${base}${path}`, {
    method,
    headers: {
      ...(body !== undefined && { 'content-type': 'application/json' }),
      ...(token != null && method !== 'GET' && { authorization: `Bearer ${token}` }),
    },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const contentType = res.headers.get('content-type') ?? '';
  const text = await res.text();
  return {
    status: res.status,
    contentType,
    body: (contentType.startsWith('application/json') ? JSON.parse(text) : text) as T,
  };
}

/** Every process whose parent chain leads to `pid` (read from /proc, so it works after `pid` has exited too). */
export function descendantsOf(pid: number): number[] {
  const parent = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // The command may contain spaces and parentheses: fields after the last ')' are fixed.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      parent.set(Number(name), Number(fields[1]));
    } catch {
      // exited while we looked
    }
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const [child, pp] of parent) {
      if (pp === p) {
        out.push(child);
        walk(child);
      }
    }
  };
  walk(pid);
  return out;
}

export function alive(pid: number): boolean {
  try {
    // A zombie still answers kill(0); count it as gone.
    return !/^\S+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}
