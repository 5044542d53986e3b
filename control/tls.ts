// `skein control --tls`: control serves its API over HTTPS with a certificate it issues itself from its CA
// (spiffe://TD/ns/skein-system/sa/skein-control plus the DNS names and addresses clients reach it by), re-issued
// at half its life and when a root rotation brings a new intermediate; the trust bundle it verifies client
// certificates with follows the CA directory (trust.ts). It asks every client for a certificate but does not
// require one, so token callers (curl, CI) keep working; `writerAuthorizer` lets a write through on a client
// certificate that chains to the bundle, is not revoked and whose SPIFFE id matches --writer-ids.
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type http from 'node:http';
import type https from 'node:https';
import { isIP } from 'node:net';
import type tls from 'node:tls';
import { issueForId } from '../certs/ca.ts';
import { normalizeSerial } from '../certs/crl.ts';
import { caPaths } from '../certs/store.ts';
import type { ControlCa } from './ca.ts';
import { ApiError } from './http.ts';
import type { TrustState, TrustWatcher } from './trust.ts';

/** Control's own identity in the mesh. */
export const CONTROL_ID_PATH = '/ns/skein-system/sa/skein-control';
const RETRY_MS = 60_000;
/** setTimeout's limit; a longer wait is taken in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface ControlTlsOptions {
  readonly ca: ControlCa;
  readonly trust: TrustWatcher;
  /** DNS names and IP addresses for the certificate's SANs. */
  readonly names: readonly string[];
  readonly certHours: number;
  readonly log: (level: 'info' | 'warn' | 'error', message: string) => void;
}

interface Served {
  readonly key: string;
  readonly chain: string;
  readonly serial: string;
  readonly notAfterMs: number;
  readonly issuedAtMs: number;
  /** The intermediate it was signed by (PEM), to notice a rotation. */
  readonly intermediate: string;
}

export class ControlTls {
  readonly #o: ControlTlsOptions;
  #served: Served;
  #servers: tls.Server[] = [];
  #timer: NodeJS.Timeout | null = null;
  #unsubscribe: () => void = () => {};
  #closed = false;

  private constructor(o: ControlTlsOptions, served: Served) {
    this.#o = o;
    this.#served = served;
  }

  static async start(o: ControlTlsOptions): Promise<ControlTls> {
    const t = new ControlTls(o, await ControlTls.#issue(o));
    t.#schedule();
    t.#unsubscribe = o.trust.onChange((state) => t.#onTrust(state));
    return t;
  }

  get id(): string {
    return `spiffe://${this.#o.ca.trustDomain}${CONTROL_ID_PATH}`;
  }

  /** The HTTPS server's options: this certificate, the bundle for client certificates (asked for, not required). */
  get serverOptions(): https.ServerOptions {
    return {
      key: this.#served.key,
      cert: this.#served.chain,
      ca: this.#o.trust.state.bundle,
      requestCert: true,
      rejectUnauthorized: false,
      minVersion: 'TLSv1.2',
    };
  }

  /** Keeps `server`'s certificate and client trust current from now on. */
  attach(server: tls.Server): void {
    this.#servers.push(server);
  }

  close(): void {
    this.#closed = true;
    this.#unsubscribe();
    if (this.#timer !== null) clearTimeout(this.#timer);
  }

  static async #issue(o: ControlTlsOptions): Promise<Served> {
    const dnsNames = o.names.filter((n) => isIP(n) === 0);
    const ipAddresses = o.names.filter((n) => isIP(n) !== 0);
    return o.ca.run(async () => {
      const intermediate = readFileSync(caPaths(o.ca.dir).intermediateCert, 'utf8');
      const issued = await issueForId(o.ca.dir, `spiffe://${o.ca.trustDomain}${CONTROL_ID_PATH}`, {
        dnsNames,
        ipAddresses,
        validHours: o.certHours,
      });
      o.log(
        'info',
        `control TLS certificate serial ${issued.serial} for ${issued.spiffeId} ${o.names.join(', ')} (until ${issued.notAfter.toISOString()})`,
      );
      return {
        key: issued.keyPem ?? '',
        chain: issued.chainPem,
        serial: issued.serial,
        notAfterMs: issued.notAfter.getTime(),
        issuedAtMs: Date.now(),
        intermediate,
      };
    });
  }

  /** Renewal at half life. */
  #schedule(delayMs?: number): void {
    if (this.#closed) return;
    if (this.#timer !== null) clearTimeout(this.#timer);
    const s = this.#served;
    const at = s.issuedAtMs + (s.notAfterMs - s.issuedAtMs) / 2;
    const wait = Math.min(MAX_TIMER_MS, Math.max(0, delayMs ?? at - Date.now()));
    this.#timer = setTimeout(() => {
      if (delayMs === undefined && Date.now() < at) return this.#schedule(); // a step of a longer wait
      void this.#renew('half its life');
    }, wait);
    this.#timer.unref();
  }

  async #renew(why: string): Promise<void> {
    try {
      this.#served = await ControlTls.#issue(this.#o);
      this.#apply();
      this.#o.log('info', `control TLS certificate renewed (${why})`);
      this.#schedule();
    } catch (err) {
      this.#o.log('error', `cannot renew control's TLS certificate (${why}): ${(err as Error).message}; retrying`);
      this.#schedule(RETRY_MS);
    }
  }

  #onTrust(_state: TrustState): void {
    let intermediate = '';
    try {
      intermediate = readFileSync(caPaths(this.#o.ca.dir).intermediateCert, 'utf8');
    } catch {
      // mid-rotation: the bundle update below still applies; the next change compares again
    }
    if (intermediate !== '' && intermediate !== this.#served.intermediate) void this.#renew('a new intermediate');
    else this.#apply();
  }

  /** New handshakes get the current certificate and bundle; open connections keep theirs. */
  #apply(): void {
    const options = this.serverOptions;
    for (const server of this.#servers) server.setSecureContext(options);
  }
}

/** The SPIFFE id in a certificate's URI SAN, or ''. */
function spiffeIdOf(cert: X509Certificate): string {
  return /URI:(spiffe:\/\/[^,\s]+)/.exec(cert.subjectAltName ?? '')?.[1] ?? '';
}

export interface WriterAuthorizerOptions {
  /** The API token check (bearerAuthorizer). */
  readonly token: (req: http.IncomingMessage) => string;
  /** Whether a SPIFFE id may write (--writer-ids). */
  readonly writer: (id: string) => boolean;
  /** The serials revoked now. */
  readonly revoked: () => ReadonlySet<string>;
}

/**
 * The write check with mTLS: a client certificate that verified against the bundle (the TLS handshake's
 * verdict), is not revoked and names a writer id makes the write, as that id; without a certificate, or with one
 * that does not qualify but with an Authorization header, the API token decides. A certificate that does not
 * qualify and no token: 401 (untrusted or revoked) or 403 (a valid identity that is not a writer).
 */
export function writerAuthorizer(o: WriterAuthorizerOptions): (req: http.IncomingMessage) => string {
  return (req) => {
    const socket = req.socket as tls.TLSSocket;
    const cert = typeof socket.getPeerX509Certificate === 'function' ? socket.getPeerX509Certificate() : undefined;
    if (cert === undefined) return o.token(req);
    const serial = normalizeSerial(cert.serialNumber);
    const id = spiffeIdOf(cert);
    let refusal: ApiError;
    if (!socket.authorized)
      refusal = new ApiError(
        'SKEIN_UNAUTHORIZED',
        `the client certificate (serial ${serial}) does not verify against the trust bundle: ${String(socket.authorizationError)}`,
      );
    else if (o.revoked().has(serial))
      refusal = new ApiError('SKEIN_UNAUTHORIZED', `the client certificate (serial ${serial}) is revoked`);
    else if (id === '' || !o.writer(id))
      refusal = new ApiError(
        'SKEIN_FORBIDDEN',
        `${id === '' ? 'a certificate without a SPIFFE id' : id} may not write (not one of control's --writer-ids)`,
      );
    else return id;
    if (req.headers.authorization !== undefined) return o.token(req);
    throw refusal;
  };
}
