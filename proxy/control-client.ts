// The proxy's side of config push (control/push.ts): one long-lived `GET /v1/push` to control, reading
// newline-delimited snapshots. Each snapshot is checked (its schema, that its hash names its content), applied
// through the caller (which merges it over the proxy's own config and validates the result), kept on local
// disk once it runs, and acknowledged; one that cannot be applied is refused with the reasons and never
// replaces the running config. Control down: the proxy keeps what it runs (and, restarted, the snapshot kept on
// disk), and reconnects with exponential backoff and full jitter; on reconnect it says which snapshot it has,
// so control sends nothing it already runs.
// Trust messages (the mesh's roots and CRLs, control/trust.ts) are checked (shape, and that the hash names the
// content) and handed to `onTrust` once per distinct hash. Control may be https://: the `tls` option gives the
// CA to verify it with and the proxy's own certificate, read again for every new connection.
import { randomInt } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { dirname } from 'node:path';
import { ConfigError } from '../src/config/load.ts';
import { Overlay, overlayHash } from '../src/config/overlay.ts';
import type { Logger } from '../src/log.ts';
import { TrustMessage, trustHash } from '../src/trust-message.ts';

/** Control pings every 15 s; three missed pings and the stream is taken for dead. */
const READ_TIMEOUT_MS = 45_000;
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 30_000;

export interface KeptSnapshot {
  readonly overlay: Overlay;
  readonly hash: string;
}

/** What a trust message gives the proxy: PEM roots, PEM CRLs (one per live intermediate), their hash. */
export interface ControlTrust {
  readonly bundle: string;
  readonly crl: string;
  readonly hash: string;
}

/** TLS material for an https:// control: the CA that signed control's certificate, and the proxy's own. */
export interface ControlTlsMaterial {
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
}

export interface ControlClientOptions {
  /** Control's base URL, http://host:port or https://host:port. */
  readonly url: string;
  /** This proxy's id in control's /proxies. */
  readonly node: string;
  readonly service: string;
  /** Where the running snapshot is kept across restarts; null: not kept. */
  readonly stateFile: string | null;
  /** Applies an overlay (merged over the proxy's own config); throws a ConfigError when it cannot. */
  readonly apply: (overlay: Overlay) => Promise<void>;
  readonly log: Logger;
  /**
   * The proxy's per-version counts for canary judging (src/canary/version-counts.ts), posted to control every
   * reportIntervalMs while the stream is up; absent: nothing reported.
   */
  readonly report?: () => Promise<unknown[]>;
  readonly reportIntervalMs?: number;
  /**
   * Called with each valid trust message whose hash differs from the last one applied; throwing refuses it (it
   * is taken again when control sends it again, after a reconnect).
   */
  readonly onTrust?: (trust: ControlTrust) => void;
  /**
   * For an https:// control: called for every new connection (push stream, acknowledgements, stats), so a
   * rotated proxy certificate or a new bundle is used from the next connection on.
   */
  readonly tls?: () => ControlTlsMaterial;
  /** Backoff bounds (tests shorten them). */
  readonly backoffMinMs?: number;
  readonly backoffMaxMs?: number;
}

/** The snapshot kept by a previous run, or null when there is none or it does not read back. */
export function loadKeptSnapshot(file: string, log: Logger): KeptSnapshot | null {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') log.warn('cannot read the kept control snapshot', { file });
    return null;
  }
  try {
    const raw = JSON.parse(text) as { overlay: unknown; hash: unknown };
    const overlay = Overlay.parse(raw.overlay);
    if (overlayHash(overlay) !== raw.hash) throw new Error('its hash does not match its content');
    return { overlay, hash: raw.hash as string };
  } catch (err) {
    log.warn('the kept control snapshot is damaged; ignored', { file, error: (err as Error).message });
    return null;
  }
}

export class ControlClient {
  readonly #opts: ControlClientOptions;
  #running: KeptSnapshot | null;
  #req: http.ClientRequest | null = null;
  #timer: NodeJS.Timeout | null = null;
  #failures = 0;
  #closed = false;
  #reporter: NodeJS.Timeout | null = null;
  /** Snapshots are applied one at a time, in the order they came. */
  #chain: Promise<void> = Promise.resolve();
  /** The hash of the last trust message applied. */
  #trustHash = '';
  /**
   * Keeps the acknowledgement and stats connections alive. An https.Agent pools connections by their TLS
   * options, so a request with new material (a rotated certificate) opens a new connection.
   */
  readonly #agent: http.Agent;
  readonly #https: boolean;

  constructor(opts: ControlClientOptions, running: KeptSnapshot | null) {
    this.#opts = opts;
    this.#running = running;
    this.#https = new URL(opts.url).protocol === 'https:';
    this.#agent = this.#https
      ? new https.Agent({ keepAlive: true, maxSockets: 4 })
      : new http.Agent({ keepAlive: true, maxSockets: 4 });
  }

  /** The hash of the trust message last handed to onTrust ('' before the first). */
  get trustHash(): string {
    return this.#trustHash;
  }

  /** The snapshot the proxy runs (from control, or kept from a previous run), or null. */
  get running(): KeptSnapshot | null {
    return this.#running;
  }

  start(): void {
    this.#connect();
    const report = this.#opts.report;
    if (report !== undefined) {
      this.#reporter = setInterval(() => void this.#report(report), this.#opts.reportIntervalMs ?? 5_000);
      this.#reporter.unref();
    }
  }

  close(): void {
    this.#closed = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    if (this.#reporter !== null) clearInterval(this.#reporter);
    this.#req?.destroy();
    this.#agent.destroy();
  }

  /** TLS options for one new connection to an https control (none for http). */
  #tlsOptions(): https.RequestOptions {
    if (!this.#https) return {};
    const m = this.#opts.tls?.() ?? {};
    return {
      ...(m.ca !== undefined && { ca: m.ca }),
      ...(m.cert !== undefined && { cert: m.cert }),
      ...(m.key !== undefined && { key: m.key }),
    };
  }

  /** POSTs JSON to control on the kept-alive agent; answers the status (the body is read and dropped). */
  #post(path: string, body: unknown, timeoutMs = 10_000): Promise<number> {
    const url = new URL(path, this.#opts.url);
    const data = JSON.stringify(body);
    const request = this.#https ? https.request : http.request;
    return new Promise((resolve, reject) => {
      const req = request(
        url,
        {
          method: 'POST',
          agent: this.#agent,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) },
          ...this.#tlsOptions(),
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
          res.on('error', reject);
        },
      );
      req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer from control in ${timeoutMs} ms`)));
      req.on('error', reject);
      req.end(data);
    });
  }

  /** One stats report, only while connected (a control that is down gets nothing piled up). */
  async #report(report: () => Promise<unknown[]>): Promise<void> {
    if (this.#req === null) return;
    try {
      const versions = await report();
      await this.#post('/v1/push/stats', { node: this.#opts.node, versions });
    } catch {
      // control is down or slow: the next report has the same cumulative counts and more
    }
  }

  #connect(): void {
    if (this.#closed) return;
    const o = this.#opts;
    const url = new URL('/v1/push', o.url);
    url.searchParams.set('node', o.node);
    url.searchParams.set('service', o.service);
    if (this.#running !== null) url.searchParams.set('have', this.#running.hash);
    if (this.#trustHash !== '') url.searchParams.set('haveTrust', this.#trustHash);
    let gotAny = false;
    let buffered = '';
    let tlsOptions: https.RequestOptions;
    try {
      tlsOptions = this.#tlsOptions();
    } catch (err) {
      o.log.warn('no TLS material for control yet', { control: o.url, error: (err as Error).message });
      tlsOptions = {};
    }
    const get = this.#https ? https.get : http.get;
    const req = get(url, { agent: false, timeout: READ_TIMEOUT_MS, ...tlsOptions }, (res) => {
      if (res.statusCode !== 200) {
        o.log.warn('control refused the push stream', { control: o.url, status: res.statusCode });
        res.resume();
        req.destroy();
        return;
      }
      o.log.info('connected to control', { control: o.url, node: o.node });
      res.setEncoding('utf8');
      res.on('data', (s: string) => {
        if (!gotAny) {
          gotAny = true;
          this.#failures = 0;
        }
        buffered += s;
        let nl: number;
        while ((nl = buffered.indexOf('\n')) !== -1) {
          const line = buffered.slice(0, nl);
          buffered = buffered.slice(nl + 1);
          if (line !== '') this.#onLine(line);
        }
        if (buffered.length > 16 * 1024 * 1024) req.destroy(new Error('a push message over 16 MiB'));
      });
    });
    this.#req = req;
    req.on('timeout', () => req.destroy(new Error(`nothing from control for ${READ_TIMEOUT_MS} ms`)));
    req.on('error', (err) => {
      // 'close' follows and decides; a TLS failure is worth saying (a wrong CA, a refused certificate).
      if (/certificate|SSL|TLS|self.signed|verify/i.test(`${(err as NodeJS.ErrnoException).code} ${err.message}`))
        o.log.warn('control TLS handshake failed', { control: o.url, error: err.message });
    });
    req.on('close', () => {
      if (this.#req === req) this.#req = null;
      if (this.#closed) return;
      if (!gotAny) this.#failures++;
      const min = o.backoffMinMs ?? BACKOFF_MIN_MS;
      const cap = Math.min(o.backoffMaxMs ?? BACKOFF_MAX_MS, min * 2 ** Math.min(this.#failures, 16));
      const waitMs = randomInt(Math.max(1, Math.floor(cap / 2)), cap + 1); // jitter, never a thundering herd
      o.log.warn('control stream closed; reconnecting', { control: o.url, inMs: waitMs });
      this.#timer = setTimeout(() => this.#connect(), waitMs);
      this.#timer.unref();
    });
  }

  #onLine(line: string): void {
    let msg: { type?: unknown; hash?: unknown; overlay?: unknown; bundle?: unknown; crl?: unknown };
    try {
      msg = JSON.parse(line) as typeof msg;
    } catch {
      this.#opts.log.warn('control sent a line that is not JSON; ignored');
      return;
    }
    if (msg.type === 'trust') return this.#onTrust(msg);
    if (msg.type !== 'snapshot') return; // ping, or a message type of a newer control
    this.#chain = this.#chain.then(() => this.#onSnapshot(msg.overlay, msg.hash));
  }

  #onTrust(raw: unknown): void {
    const o = this.#opts;
    if (o.onTrust === undefined) return;
    const parsed = TrustMessage.safeParse(raw);
    if (!parsed.success) {
      const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(message)'}: ${i.message}`);
      o.log.warn('control sent a malformed trust message; ignored', { problems });
      return;
    }
    const { bundle, crl, hash } = parsed.data;
    if (trustHash(bundle, crl) !== hash) {
      o.log.warn('control sent a trust message whose hash does not name its content; ignored', {
        hash: hash.slice(0, 12),
      });
      return;
    }
    if (hash === this.#trustHash) return;
    try {
      o.onTrust({ bundle, crl, hash });
      this.#trustHash = hash;
      o.log.info('control trust bundle and CRL applied', { hash: hash.slice(0, 12) });
    } catch (err) {
      o.log.error('control trust bundle and CRL refused', { hash: hash.slice(0, 12), error: (err as Error).message });
    }
  }

  async #onSnapshot(raw: unknown, hash: unknown): Promise<void> {
    const o = this.#opts;
    const parsed = Overlay.safeParse(raw);
    const version = parsed.success ? parsed.data.version : -1;
    const sentHash = typeof hash === 'string' && /^[0-9a-f]{64}$/.test(hash) ? hash : '0'.repeat(64);
    let problems: string[] = [];
    if (!parsed.success) problems = parsed.error.issues.map((i) => `overlay.${i.path.join('.')}: ${i.message}`);
    else if (overlayHash(parsed.data) !== sentHash) problems = ['hash: does not name the snapshot it came with'];
    else {
      try {
        await o.apply(parsed.data);
        this.#running = { overlay: parsed.data, hash: sentHash };
        this.#keep(this.#running);
        o.log.info('control snapshot applied', { version, hash: sentHash.slice(0, 12) });
      } catch (err) {
        problems = err instanceof ConfigError ? [...err.problems] : [(err as Error).message];
      }
    }
    if (problems.length > 0) o.log.error('control snapshot refused; the running config stays', { version, problems });
    await this.#ack({
      node: o.node,
      version: Math.max(0, version),
      hash: sentHash,
      ok: problems.length === 0,
      problems,
    });
  }

  #keep(s: KeptSnapshot): void {
    const file = this.#opts.stateFile;
    if (file === null) return;
    try {
      mkdirSync(dirname(file), { recursive: true });
      const tmp = `${file}.tmp`;
      writeFileSync(tmp, JSON.stringify(s), { mode: 0o600 });
      renameSync(tmp, file);
    } catch (err) {
      this.#opts.log.warn('cannot keep the control snapshot on disk', { file, error: (err as Error).message });
    }
  }

  async #ack(body: { node: string; version: number; hash: string; ok: boolean; problems: string[] }): Promise<void> {
    try {
      const status = await this.#post('/v1/push/ack', {
        ...body,
        problems: body.problems.slice(0, 100).map((p) => p.slice(0, 2000)),
      });
      if (status !== 200) this.#opts.log.warn('control did not take the acknowledgement', { status });
    } catch (err) {
      this.#opts.log.warn('cannot acknowledge to control', { error: (err as Error).message });
    }
  }
}
