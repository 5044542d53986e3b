// The proxy's mesh identity: its key and certificate chain, the roots it trusts and the serials revoked, and
// the TLS contexts built from them. Listeners and upstream pools read `serverContext` / `clientContext` at each
// new handshake, so a rotated certificate, a new trust bundle or a new CRL applies to the next connection while
// the open ones carry on with what they were made with. Every peer is checked the same way in both directions
// (verify.ts): chain to a trusted root, validity dates, revocation, trust domain, and the expected ids.
import { createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import tls from 'node:tls';
import { X509Crl } from '../../certs/x509.ts';
import type { MtlsConfig } from '../../src/config/schema.ts';
import { DEFAULT_CIPHERS } from '../../src/config/mtls-schema.ts';
import type { Logger } from '../../src/log.ts';

export interface IdentityMaterial {
  /** PEM private key (PKCS#8). */
  readonly keyPem: string;
  /** PEM: the leaf, then the intermediates up to (not including) the root. */
  readonly chainPem: string;
}

export interface TrustMaterial {
  /** PEM roots (several during a root rotation's overlap). */
  readonly bundlePem: string;
  /** PEM CRLs, one per intermediate in use; '' for none. */
  readonly crlPem: string;
}

export interface MtlsPolicy {
  readonly trustDomain: string;
  readonly minVersion: 'TLSv1.2' | 'TLSv1.3';
  readonly ciphers: readonly string[];
}

/** What a handshake check concluded; `reason` is the metric label and the log's word for it. */
export type PeerCheck =
  | { readonly ok: true; readonly spiffeId: string; readonly certSha256: string }
  | { readonly ok: false; readonly reason: RefusalReason; readonly detail: string };

export type RefusalReason =
  | 'no-certificate'
  | 'untrusted-chain'
  | 'expired'
  | 'not-yet-valid'
  | 'revoked'
  | 'no-spiffe-id'
  | 'wrong-trust-domain'
  | 'unexpected-identity';

export const DEFAULT_POLICY: MtlsPolicy = {
  trustDomain: 'cluster.local',
  minVersion: 'TLSv1.2',
  ciphers: DEFAULT_CIPHERS,
};

const SPIFFE_URI = /URI:(spiffe:\/\/[^,\s]+)/;

/** The SPIFFE id in a certificate's URI SAN, or ''. */
export function spiffeIdOf(cert: X509Certificate): string {
  return SPIFFE_URI.exec(cert.subjectAltName ?? '')?.[1] ?? '';
}

/** A certificate's serial as the CA writes it: lowercase hex without leading zeros. */
export function normalSerial(serial: string): string {
  return serial.toLowerCase().replace(/^0+(?=.)/, '');
}

/** Serials on the CRLs in `pem` (several PEM blocks); throws on one that does not parse. */
export function revokedSerials(pem: string): { serials: Set<string>; nextUpdateMs: number } {
  const serials = new Set<string>();
  let nextUpdateMs = Infinity;
  for (const block of pem.match(/-----BEGIN X509 CRL-----[\s\S]+?-----END X509 CRL-----/g) ?? []) {
    const crl = new X509Crl(block);
    for (const entry of crl.entries) serials.add(normalSerial(entry.serialNumber));
    if (crl.nextUpdate !== undefined) nextUpdateMs = Math.min(nextUpdateMs, crl.nextUpdate.getTime());
  }
  return { serials, nextUpdateMs };
}

/** Node's verification codes, in our words. */
function reasonOf(code: string): RefusalReason {
  switch (code) {
    case 'CERT_HAS_EXPIRED':
      return 'expired';
    case 'CERT_NOT_YET_VALID':
      return 'not-yet-valid';
    case 'CERT_REVOKED':
      return 'revoked';
    default:
      return 'untrusted-chain';
  }
}

/** Everything the identity holds, replaced whole by a commit (so a failed prepare changes nothing). */
interface IdentityState {
  readonly policy: MtlsPolicy;
  readonly material: IdentityMaterial | null;
  readonly trust: TrustMaterial | null;
  readonly roots: X509Certificate[];
  readonly revoked: Set<string>;
  readonly crlNextUpdateMs: number;
  /** The leaf, then its intermediates. */
  readonly chain: X509Certificate[];
  readonly id: string;
  /** What the contexts are built from, and the client context itself; null until certificate and bundle. */
  readonly options: tls.SecureContextOptions | null;
  readonly client: tls.SecureContext | null;
}

const EMPTY: IdentityState = {
  policy: DEFAULT_POLICY,
  material: null,
  trust: null,
  roots: [],
  revoked: new Set(),
  crlNextUpdateMs: Infinity,
  chain: [],
  id: '',
  options: null,
  client: null,
};

export class MeshIdentity {
  #s: IdentityState = EMPTY;
  readonly #log: Logger;
  readonly #watchers = new Set<(identity: MeshIdentity) => void>();

  constructor(log: Logger) {
    this.#log = log;
  }

  /** Calls `fn` after every change (a rotated certificate, a new bundle or CRL); returns the unsubscribe. */
  subscribe(fn: (identity: MeshIdentity) => void): () => void {
    this.#watchers.add(fn);
    return () => this.#watchers.delete(fn);
  }

  /** The key and chain in use (for presenting this identity to control), or null before there is one. */
  get material(): IdentityMaterial | null {
    return this.#s.material;
  }

  /** What the contexts are built from (a tls.Server's setSecureContext takes it); null until ready. */
  get contextOptions(): tls.SecureContextOptions | null {
    return this.#s.options;
  }

  /** This proxy's SPIFFE id ('' before it has a certificate). */
  get id(): string {
    return this.#s.id;
  }

  get policy(): MtlsPolicy {
    return this.#s.policy;
  }

  /** Ready for handshakes: a certificate and a trust bundle. */
  get ready(): boolean {
    return this.#s.options !== null;
  }

  /** The leaf's validity (ms since the epoch); 0 before there is one. */
  get notBeforeMs(): number {
    const leaf = this.#s.chain[0];
    return leaf === undefined ? 0 : Date.parse(leaf.validFrom);
  }
  get notAfterMs(): number {
    const leaf = this.#s.chain[0];
    return leaf === undefined ? 0 : Date.parse(leaf.validTo);
  }

  /** The leaf and its intermediates, for expiry warnings. */
  get chain(): readonly X509Certificate[] {
    return this.#s.chain;
  }

  /** The roots of the trust bundle. */
  get roots(): readonly X509Certificate[] {
    return this.#s.roots;
  }

  get revokedCount(): number {
    return this.#s.revoked.size;
  }

  /** Checks and applies at once (prepare, then commit). */
  update(next: { policy?: MtlsPolicy; material?: IdentityMaterial; trust?: TrustMaterial }): void {
    this.prepare(next)();
  }

  /**
   * Checks the parts and builds the context without changing anything: throws when they do not fit (a key that
   * is not the certificate's, a bundle with no root, a CRL that does not parse, an id outside the trust domain);
   * else returns the commit that swaps them in.
   */
  prepare(next: { policy?: MtlsPolicy; material?: IdentityMaterial; trust?: TrustMaterial }): () => void {
    const cur = this.#s;
    const policy = next.policy ?? cur.policy;
    const material = next.material ?? cur.material;
    const trust = next.trust ?? cur.trust;
    let { roots, revoked, crlNextUpdateMs, chain } = cur;
    if (next.trust !== undefined) {
      roots = pemCertificates(next.trust.bundlePem);
      if (roots.length === 0) throw new Error('the trust bundle holds no certificate');
      ({ serials: revoked, nextUpdateMs: crlNextUpdateMs } = revokedSerials(next.trust.crlPem));
    }
    if (next.material !== undefined) {
      chain = pemCertificates(next.material.chainPem);
      if (chain.length === 0) throw new Error('the certificate file holds no certificate');
      if (!chain[0]!.checkPrivateKey(createPrivateKey(next.material.keyPem)))
        throw new Error('the private key is not the key of the certificate');
      if (spiffeIdOf(chain[0]!) === '') throw new Error('the certificate has no SPIFFE id (URI SAN)');
    }
    const id = chain.length === 0 ? '' : spiffeIdOf(chain[0]!);
    if (id !== '' && !id.startsWith(`spiffe://${policy.trustDomain}/`))
      throw new Error(`the certificate's id ${id} is not in trust domain ${policy.trustDomain}`);
    const options: tls.SecureContextOptions | null =
      material === null || trust === null
        ? null
        : {
            key: material.keyPem,
            cert: material.chainPem,
            ca: trust.bundlePem,
            minVersion: policy.minVersion,
            maxVersion: 'TLSv1.3',
            // Node's `ciphers` takes TLS 1.3 suites (TLS_*) and TLS 1.2 ciphers in one list and sorts them out.
            ciphers: policy.ciphers.join(':'),
          };
    // Built now, so options OpenSSL refuses (an unknown cipher) throw here, before anything is swapped.
    const client = options === null ? null : tls.createSecureContext(options);
    const state: IdentityState = {
      policy,
      material,
      trust,
      roots,
      revoked,
      crlNextUpdateMs,
      chain,
      id,
      options,
      client,
    };
    return () => {
      this.#s = state;
      if (next.trust !== undefined && crlNextUpdateMs !== Infinity && crlNextUpdateMs < Date.now())
        this.#log.warn('mtls: a CRL is past its next update; revocations may be missing', {
          nextUpdate: new Date(crlNextUpdateMs).toISOString(),
        });
      for (const fn of this.#watchers) fn(this);
    };
  }

  /** Options for tls.connect to a mesh peer: our certificate, the bundle; the server is checked after. */
  clientOptions(alpn: string[]): tls.ConnectionOptions {
    return {
      secureContext: this.#s.client ?? undefined,
      rejectUnauthorized: false,
      ALPNProtocols: alpn,
      // No SNI and no host name check: peers are addressed by IP and identified by their SPIFFE id (verify()).
      servername: '',
      checkServerIdentity: () => undefined,
    };
  }

  /**
   * The peer of a finished handshake, or why it is refused: no certificate, a chain that does not end in the
   * bundle, outside its dates, revoked, no SPIFFE id, another trust domain, or not one of `expected`.
   */
  verify(socket: tls.TLSSocket, expected: ((id: string) => boolean) | null): PeerCheck {
    const cert = socket.getPeerX509Certificate();
    if (cert === undefined) return { ok: false, reason: 'no-certificate', detail: 'the peer sent no certificate' };
    if (!socket.authorized) {
      const code = String(socket.authorizationError ?? 'UNKNOWN');
      return { ok: false, reason: reasonOf(code), detail: `${code} (serial ${normalSerial(cert.serialNumber)})` };
    }
    const serial = normalSerial(cert.serialNumber);
    if (this.#s.revoked.has(serial)) return { ok: false, reason: 'revoked', detail: `serial ${serial} is on the CRL` };
    const id = spiffeIdOf(cert);
    if (id === '') return { ok: false, reason: 'no-spiffe-id', detail: `serial ${serial} has no SPIFFE URI SAN` };
    const td = this.#s.policy.trustDomain;
    if (!id.startsWith(`spiffe://${td}/`))
      return { ok: false, reason: 'wrong-trust-domain', detail: `${id} is not in trust domain ${td}` };
    if (expected !== null && !expected(id))
      return { ok: false, reason: 'unexpected-identity', detail: `${id} is not an id this cluster accepts` };
    return { ok: true, spiffeId: id, certSha256: createHash('sha256').update(cert.raw).digest('hex') };
  }
}

function pemCertificates(pem: string): X509Certificate[] {
  return (pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map(
    (b) => new X509Certificate(b),
  );
}

/** The policy part of the config's `mtls` block. */
export function policyOf(cfg: MtlsConfig): MtlsPolicy {
  return { trustDomain: cfg.trustDomain, minVersion: cfg.minVersion, ciphers: cfg.ciphers };
}
