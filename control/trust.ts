// What the proxies must trust, kept current: the CA directory's trust bundle and the signed CRLs of its live
// intermediates, with one hash over both (src/trust-message.ts). The push hub sends it to each proxy on connect
// and to all of them when it changes; GET /v1/trust-bundle, GET /v1/crl and control's own mTLS check read the
// same state. It changes when the bundle or the intermediate changes (a root rotation), when a certificate is
// revoked, and when the CRL is re-signed, which happens every RESIGN_MS (CRLs are valid 24 h: a proxy that
// misses a few pushes still holds a valid one) or sooner when its nextUpdate comes within RESIGN_MARGIN_MS.
//
// Writes by control's own API refresh at once. Writes by an operator running `skein ca revoke` or `skein ca
// rotate-root` on the same directory are noticed by polling: every POLL_MS the three files that matter are
// stat()ed (inode, mtime, size; every CA write is write-then-rename, so each write is a new inode). Why not
// fs.watch: inotify on a directory misses or doubles renames across filesystems (network volumes, Kubernetes
// secret mounts that swap a symlink), while three stat() calls every 2 s cost nothing and bound the delay.
import { readFileSync, statSync } from 'node:fs';
import { createCrl, DEFAULT_CRL_VALID_HOURS } from '../certs/crl.ts';
import { caPaths, readRevoked, type RevokedEntry } from '../certs/store.ts';
import { trustHash, type TrustMessage } from '../src/trust-message.ts';
import type { ControlCa } from './ca.ts';
import { X509Certificate, X509Crl } from '../certs/x509.ts';

export const POLL_MS = 2_000;
export const RESIGN_MS = 60 * 60_000;
/** Re-sign early when the CRL would expire within this long (a clock jump, a suspended process). */
const RESIGN_MARGIN_MS = 2 * RESIGN_MS;

export interface TrustState {
  readonly bundle: string;
  readonly crl: string;
  readonly hash: string;
  readonly crlNumber: number;
  /** The earliest nextUpdate of the CRLs (ms since the epoch). */
  readonly crlNextUpdateMs: number;
  readonly signedAtMs: number;
  /** revoked.json as last read. */
  readonly revocations: readonly RevokedEntry[];
  /** Their serials (lowercase hex, no leading zeros). */
  readonly revokedSerials: ReadonlySet<string>;
}

export interface TrustOptions {
  readonly log: (level: 'info' | 'warn' | 'error', message: string) => void;
  readonly pollMs?: number;
  readonly resignMs?: number;
  readonly crlValidHours?: number;
}

/** inode, mtime and size: a file rewritten by rename is a new inode even within one millisecond. */
function fileKey(path: string): string {
  try {
    const s = statSync(path);
    return `${s.ino}:${s.mtimeMs}:${s.size}`;
  } catch {
    return 'absent';
  }
}

function earliestNextUpdate(pem: string): number {
  let next = Infinity;
  for (const block of pem.match(/-----BEGIN X509 CRL-----[\s\S]+?-----END X509 CRL-----/g) ?? []) {
    const at = new X509Crl(block).nextUpdate?.getTime();
    if (at !== undefined) next = Math.min(next, at);
  }
  return next;
}

interface FileKeys {
  readonly bundle: string;
  readonly revoked: string;
  readonly intermediate: string;
}

export class TrustWatcher {
  readonly #ca: ControlCa;
  readonly #o: TrustOptions;
  readonly #paths: ReturnType<typeof caPaths>;
  readonly #listeners = new Set<(state: TrustState) => void>();
  #state: TrustState;
  /** The file keys the state was built from. */
  #keys: FileKeys;
  #timer: NodeJS.Timeout | null = null;
  #lastError = '';
  #message: { hash: string; line: string } | null = null;

  private constructor(ca: ControlCa, o: TrustOptions, state: TrustState, keys: FileKeys) {
    this.#ca = ca;
    this.#o = o;
    this.#paths = caPaths(ca.dir);
    this.#state = state;
    this.#keys = keys;
  }

  /** Reads the bundle, signs a first CRL and starts polling the CA directory. */
  static async open(ca: ControlCa, o: TrustOptions): Promise<TrustWatcher> {
    const built = await ca.run(() => TrustWatcher.#build(ca.dir, o, null, null));
    if (built === null) throw new Error('unreachable: a first build always answers');
    const w = new TrustWatcher(ca, o, built.state, built.keys);
    w.#timer = setInterval(() => void w.refresh().catch(() => {}), o.pollMs ?? POLL_MS);
    w.#timer.unref();
    return w;
  }

  get state(): TrustState {
    return this.#state;
  }

  /** The push stream's line for the current state (JSON + '\n'), built once per change. */
  get messageLine(): { hash: string; line: string } {
    if (this.#message?.hash !== this.#state.hash) {
      const msg: TrustMessage = {
        type: 'trust',
        hash: this.#state.hash,
        bundle: this.#state.bundle,
        crl: this.#state.crl,
      };
      this.#message = { hash: msg.hash, line: `${JSON.stringify(msg)}\n` };
    }
    return this.#message;
  }

  /** Calls fn after every change of the state; returns the unsubscribe. */
  onChange(fn: (state: TrustState) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /**
   * Looks at the CA directory now: re-reads what changed, re-signs the CRL when revocations or the intermediate
   * changed or it is due, and tells the listeners when the hash moved. Answers the state. A failure (the
   * directory half-way through a rotation, say) keeps the previous state, is logged once, and is tried again at
   * the next poll; `refresh` called by a caller rethrows it.
   */
  refresh(): Promise<TrustState> {
    return this.#ca.run(async () => {
      let built;
      try {
        built = await TrustWatcher.#build(this.#ca.dir, this.#o, this.#state, this.#keys);
      } catch (err) {
        const message = (err as Error).message;
        if (message !== this.#lastError) this.#o.log('warn', `cannot refresh the trust bundle and CRL: ${message}`);
        this.#lastError = message;
        throw err;
      }
      this.#lastError = '';
      if (built === null) return this.#state;
      const before = this.#state.hash;
      this.#state = built.state;
      this.#keys = built.keys;
      if (built.state.hash !== before) {
        this.#o.log(
          'info',
          `trust changed (${built.why}): CRL number ${built.state.crlNumber}, ${built.state.revokedSerials.size} revoked, hash ${built.state.hash.slice(0, 12)}`,
        );
        for (const fn of this.#listeners) fn(built.state);
      }
      return built.state;
    });
  }

  close(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    this.#listeners.clear();
  }

  /** A new state, or null when nothing changed and the CRL is not due. Runs inside the CA queue. */
  static async #build(
    dir: string,
    o: TrustOptions,
    prev: TrustState | null,
    prevKeys: FileKeys | null,
  ): Promise<{ state: TrustState; keys: FileKeys; why: string } | null> {
    const paths = caPaths(dir);
    const keys = {
      bundle: fileKey(paths.bundle),
      revoked: fileKey(paths.revoked),
      intermediate: fileKey(paths.intermediateCert),
    };
    const now = Date.now();
    const why: string[] = [];
    if (prev === null || prevKeys === null) why.push('start');
    else {
      if (keys.bundle !== prevKeys.bundle) why.push('trust bundle');
      if (keys.revoked !== prevKeys.revoked) why.push('revocations');
      if (keys.intermediate !== prevKeys.intermediate) why.push('intermediate');
      if (now - prev.signedAtMs >= (o.resignMs ?? RESIGN_MS)) why.push('CRL re-signed');
      else if (prev.crlNextUpdateMs - now < RESIGN_MARGIN_MS) why.push('CRL near its nextUpdate');
    }
    if (why.length === 0) return null;
    const bundle = prev !== null && keys.bundle === prevKeys?.bundle ? prev.bundle : readFileSync(paths.bundle, 'utf8');
    const revocations = readRevoked(paths);
    const crl = await createCrl(dir, o.crlValidHours ?? DEFAULT_CRL_VALID_HOURS);
    // `skein ca rotate-root` renames the new certificates in one at a time: a CRL signed in between carries one
    // generation's name and another's signature. Refuse it; the next poll (the bundle is written last) retries.
    const first = /-----BEGIN X509 CRL-----[\s\S]+?-----END X509 CRL-----/.exec(crl.pem)?.[0];
    const intermediate = new X509Certificate(readFileSync(paths.intermediateCert, 'utf8'));
    if (first === undefined || !(await new X509Crl(first).verify({ publicKey: intermediate.publicKey })))
      throw new Error('the CA directory is changing (a root rotation?); trying again at the next poll');
    return {
      state: {
        bundle,
        crl: crl.pem,
        hash: trustHash(bundle, crl.pem),
        crlNumber: crl.crlNumber,
        crlNextUpdateMs: earliestNextUpdate(crl.pem),
        signedAtMs: now,
        revocations,
        revokedSerials: new Set(revocations.map((e) => e.serial)),
      },
      keys,
      why: why.join(', '),
    };
  }
}
