// The proxy's certificate from control: it makes its own key pair (the private key never leaves the process),
// sends a CSR naming its SPIFFE id with the bootstrap token (POST /v1/certificates), and installs the chain it
// gets back with control's trust bundle and CRL. It renews at half the certificate's life (24 h certificates:
// every 12 h), or 7 days before the end for long-lived ones (the seed's 90–365 days); a failed renewal is
// retried with backoff while the current certificate still serves.
import { randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { generateKeyPair, privateKeyToPem, signingAlgorithm } from '../../certs/keys.ts';
import { Pkcs10CertificateRequestGenerator, SubjectAlternativeNameExtension } from '../../certs/x509.ts';
import type { Logger } from '../../src/log.ts';
import type { MeshIdentity } from './identity.ts';

const DAY_MS = 24 * 3600_000;
/** Longer-lived than this: renew 7 days before the end instead of at half life. */
const LONG_LIVED_MS = 14 * DAY_MS;
const RETRY_MIN_MS = 1_000;
const RETRY_MAX_MS = 60_000;
/** setTimeout's limit (about 24.8 days); longer waits are taken in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * When a certificate is renewed: half its life, counted from when it was received (CAs backdate notBefore for
 * clock skew, which is not life the proxy gets), or 7 days before the end when it is longer-lived.
 */
export function renewAtMs(receivedMs: number, notBeforeMs: number, notAfterMs: number): number {
  const start = Math.max(receivedMs, notBeforeMs);
  const life = notAfterMs - start;
  return life > LONG_LIVED_MS ? notAfterMs - 7 * DAY_MS : start + life / 2;
}

export interface IssuerOptions {
  /** Control's base URL. */
  readonly control: string;
  /** The file holding the bootstrap token (read at every request, so a rotated token is picked up). */
  readonly tokenFile: string;
  /** The SPIFFE id to ask for. */
  readonly spiffeId: string;
  readonly dnsNames?: readonly string[];
  readonly identity: MeshIdentity;
  readonly log: Logger;
  /** Told after each new certificate (the expiry metric). */
  readonly onIssued?: () => void;
}

export class CertificateIssuer {
  readonly #o: IssuerOptions;
  #timer: NodeJS.Timeout | null = null;
  #closed = false;
  #failures = 0;

  constructor(o: IssuerOptions) {
    this.#o = o;
  }

  /** Resolves once the proxy has a certificate and a trust bundle; retries (with backoff) until then. */
  async start(): Promise<void> {
    for (;;) {
      try {
        await this.renew();
        return;
      } catch (err) {
        if (this.#closed) throw new Error('closed before a certificate was issued');
        const waitMs = this.#backoff();
        this.#o.log.warn('mtls: cannot get a certificate from control; retrying', {
          control: this.#o.control,
          error: (err as Error).message,
          inMs: waitMs,
        });
        await new Promise((r) => setTimeout(r, waitMs));
      }
    }
  }

  close(): void {
    this.#closed = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
  }

  /** A new key and certificate (and the current bundle and CRL) now; schedules the next renewal. */
  async renew(): Promise<void> {
    const o = this.#o;
    const keys = await generateKeyPair('ec');
    const csr = await Pkcs10CertificateRequestGenerator.create({
      keys,
      signingAlgorithm: signingAlgorithm('ec'),
      extensions: [
        new SubjectAlternativeNameExtension([
          { type: 'url', value: o.spiffeId },
          ...(o.dnsNames ?? []).map((value) => ({ type: 'dns' as const, value })),
        ]),
      ],
    });
    const token = readFileSync(o.tokenFile, 'utf8').trim();
    const receivedMs = Date.now();
    const res = await fetch(new URL('/v1/certificates', o.control), {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ csr: csr.toString('pem') }),
      signal: AbortSignal.timeout(10_000),
    });
    const body = (await res.json()) as { chain?: string; serial?: string; notAfter?: string; error?: unknown };
    if (res.status !== 201 || typeof body.chain !== 'string')
      throw new Error(`control answered ${res.status}: ${JSON.stringify(body.error ?? body).slice(0, 300)}`);
    const [bundlePem, crlPem] = await Promise.all([this.#get('/v1/trust-bundle'), this.#get('/v1/crl')]);
    o.identity.update({
      material: { keyPem: await privateKeyToPem(keys.privateKey), chainPem: body.chain },
      trust: { bundlePem, crlPem },
    });
    this.#failures = 0;
    const renewAt = renewAtMs(receivedMs, o.identity.notBeforeMs, o.identity.notAfterMs);
    o.log.info('mtls: certificate installed', {
      id: o.identity.id,
      serial: body.serial,
      notAfter: body.notAfter,
      renewAt: new Date(renewAt).toISOString(),
    });
    o.onIssued?.();
    this.#schedule(renewAt);
  }

  async #get(path: string): Promise<string> {
    const res = await fetch(new URL(path, this.#o.control), { signal: AbortSignal.timeout(10_000) });
    const text = await res.text();
    if (res.status !== 200) throw new Error(`GET ${path}: control answered ${res.status}`);
    return text;
  }

  #schedule(atMs: number): void {
    if (this.#closed) return;
    if (this.#timer !== null) clearTimeout(this.#timer);
    const waitMs = Math.max(0, atMs - Date.now());
    this.#timer = setTimeout(
      () => (waitMs > MAX_TIMER_MS ? this.#schedule(atMs) : void this.#renewOrRetry()),
      Math.min(waitMs, MAX_TIMER_MS),
    );
    this.#timer.unref();
  }

  async #renewOrRetry(): Promise<void> {
    try {
      await this.renew();
    } catch (err) {
      const waitMs = this.#backoff();
      this.#o.log.warn('mtls: certificate renewal failed; the current one serves meanwhile', {
        error: (err as Error).message,
        notAfter: new Date(this.#o.identity.notAfterMs).toISOString(),
        retryInMs: waitMs,
      });
      this.#schedule(Date.now() + waitMs);
    }
  }

  /** Exponential with full jitter, capped. */
  #backoff(): number {
    const cap = Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** Math.min(this.#failures++, 16));
    return randomInt(Math.max(1, Math.floor(cap / 2)), cap + 1);
  }
}
