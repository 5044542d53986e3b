// Control's hold on the mesh's CA directory (certs/): opened (or made) at start, with the bootstrap token proxies
// get certificates with. Every operation that rewrites the directory (issuing, revoking, signing a CRL: each
// rewrites ca.json or revoked.json) goes through `run`, one at a time in arrival order. `skein ca` run by an
// operator on the same directory is another process: control notices its writes by polling (trust.ts).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_LEAF_VALID_HOURS, initCa } from '../certs/ca.ts';
import { caPaths, readMeta } from '../certs/store.ts';
import { type ApiToken, loadOrCreateToken } from './token.ts';

export interface ControlCa {
  readonly dir: string;
  readonly trustDomain: string;
  /** True when this start made the CA (the directory held none). */
  readonly created: boolean;
  readonly bootstrapToken: ApiToken;
  /** Runs a CA operation after the ones before it have finished. */
  run<T>(work: () => Promise<T> | T): Promise<T>;
}

export interface OpenCaOptions {
  readonly dataDir: string;
  readonly bootstrapTokenFile?: string;
  readonly certHours?: number;
}

/** Opens the CA directory, making a CA there when it holds none, and the bootstrap token. */
export async function openCa(opts: OpenCaOptions, caDir: string): Promise<ControlCa> {
  const certHours = opts.certHours ?? DEFAULT_LEAF_VALID_HOURS;
  if (!(certHours > 0) || !Number.isFinite(certHours))
    throw new Error(`certificate validity must be a number of hours > 0, got ${certHours}`);
  const paths = caPaths(caDir);
  const created = !existsSync(paths.meta);
  const meta = created ? await initCa(caDir) : readMeta(paths);
  for (const file of [paths.intermediateCert, paths.intermediateKey, paths.bundle])
    if (!existsSync(file)) throw new Error(`${caDir}: the CA is incomplete (${file} is missing)`);
  const bootstrapToken = loadOrCreateToken(
    opts.bootstrapTokenFile ?? join(opts.dataDir, 'bootstrap-token'),
    'bootstrap token',
  );
  let queue: Promise<unknown> = Promise.resolve();
  const run = <T>(work: () => Promise<T> | T): Promise<T> => {
    const next = queue.then(work, work);
    queue = next.catch(() => undefined);
    return next;
  };
  return { dir: caDir, trustDomain: meta.trustDomain, created, bootstrapToken, run };
}
