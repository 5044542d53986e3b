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

/** Compiles SPIFFE id patterns (`*` matches any run of characters) into one test. */
export function idMatcher(patterns: readonly string[]): (id: string) => boolean {
  const escaped = patterns.map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*'));
  const re = new RegExp(`^(?:${escaped.join('|')})$`);
  return (id) => re.test(id);
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

export class MeshIdentity {
  #policy: MtlsPolicy = DEFAULT_POLICY;
  #material: IdentityMaterial | null = null;
  #trust: TrustMaterial | null = null;
  #revoked = new Set<string>();
  #crlNextUpdateMs = Infinity;
  #server: tls.SecureContext | null = null;
  #client: tls.SecureContext | null = null;
  #leaf: X509Certificate | null = null;
  #chain: X509Certificate[] = [];
  #id = '';
  #options: tls.SecureContextOptions | null = null;
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

  /** What the contexts are built from (a tls.Server's setSecureContext takes it); null until ready. */
  get contextOptions(): tls.SecureContextOptions | null {
    return this.#options;
  }

  /** This proxy's SPIFFE id ('' before it has a certificate). */
  get id(): string {
    return this.#id;
  }

  get policy(): MtlsPolicy {
    return this.#policy;
  }

  /** Ready for handshakes: a certificate and a trust bundle. */
  get ready(): boolean {
    return this.#server !== null;
  }

  /** The leaf's validity (ms since the epoch); 0 before there is one. */
  get notBeforeMs(): number {
    return this.#leaf === null ? 0 : Date.parse(this.#leaf.validFrom);
  }
  get notAfterMs(): number {
    return this.#leaf === null ? 0 : Date.parse(this.#leaf.validTo);
  }

  /** The leaf and its intermediates, for expiry warnings. */
  get chain(): readonly X509Certificate[] {
    return this.#chain;
  }

  /** The roots of the trust bundle. */
  get roots(): X509Certificate[] {
    return this.#trust === null ? [] : pemCertificates(this.#trust.bundlePem);
  }

  get revokedCount(): number {
    return this.#revoked.size;
  }

  /** Checks and applies at once (prepare, then commit). */
  update(next: { policy?: MtlsPolicy; material?: IdentityMaterial; trust?: TrustMaterial }): void {
    this.prepare(next)();
  }

  /**
   * Checks the parts and builds the contexts without changing anything: throws when they do not fit (a key that
   * is not the certificate's, a bundle with no root, a CRL that does not parse, an id outside the trust domain);
   * else returns the commit that swaps them in.
   */
  prepare(next: { policy?: MtlsPolicy; material?: IdentityMaterial; trust?: TrustMaterial }): () => void {
    const policy = next.policy ?? this.#policy;
    const material = next.material ?? this.#material;
    const trust = next.trust ?? this.#trust;
    let revoked = this.#revoked;
    let crlNext = this.#crlNextUpdateMs;
    if (next.trust !== undefined) {
      if (pemCertificates(next.trust.bundlePem).length === 0) throw new Error('the trust bundle holds no certificate');
      ({ serials: revoked, nextUpdateMs: crlNext } = revokedSerials(next.trust.crlPem));
    }
    let leaf = this.#leaf;
    let chain = this.#chain;
    if (next.material !== undefined) {
      chain = pemCertificates(next.material.chainPem);
      if (chain.length === 0) throw new Error('the certificate file holds no certificate');
      leaf = chain[0]!;
      if (!leaf.checkPrivateKey(createPrivateKey(next.material.keyPem)))
        throw new Error('the private key is not the key of the certificate');
      const id = spiffeIdOf(leaf);
      if (id === '') throw new Error('the certificate has no SPIFFE id (URI SAN)');
    }
    let server: tls.SecureContext | null = null;
    let client: tls.SecureContext | null = null;
    let options: tls.SecureContextOptions | null = null;
    if (material !== null && trust !== null) {
      options = {
        key: material.keyPem,
        cert: material.chainPem,
        ca: trust.bundlePem,
        minVersion: policy.minVersion,
        maxVersion: 'TLSv1.3',
        ...cipherOptions(policy.ciphers),
      };
      server = tls.createSecureContext(options);
      client = tls.createSecureContext(options);
    }
    if (leaf !== null && !spiffeIdOf(leaf).startsWith(`spiffe://${policy.trustDomain}/`))
      throw new Error(`the certificate's id ${spiffeIdOf(leaf)} is not in trust domain ${policy.trustDomain}`);
    return () =>
      this.#commit(next, { policy, material, trust, revoked, crlNext, leaf, chain, server, client, options });
  }

  #commit(
    next: { trust?: TrustMaterial },
    c: {
      policy: MtlsPolicy;
      material: IdentityMaterial | null;
      trust: TrustMaterial | null;
      revoked: Set<string>;
      crlNext: number;
      leaf: X509Certificate | null;
      chain: X509Certificate[];
      server: tls.SecureContext | null;
      client: tls.SecureContext | null;
      options: tls.SecureContextOptions | null;
    },
  ): void {
    const { policy, material, trust, revoked, crlNext, leaf, chain, server, client, options } = c;
    this.#options = options;
    this.#policy = policy;
    this.#material = material;
    this.#trust = trust;
    this.#revoked = revoked;
    this.#crlNextUpdateMs = crlNext;
    this.#leaf = leaf;
    this.#chain = chain;
    this.#id = leaf === null ? '' : spiffeIdOf(leaf);
    this.#server = server;
    this.#client = client;
    if (next.trust !== undefined && crlNext !== Infinity && crlNext < Date.now())
      this.#log.warn('mtls: a CRL is past its next update; revocations may be missing', {
        nextUpdate: new Date(crlNext).toISOString(),
      });
    for (const fn of this.#watchers) fn(this);
  }

  /** Options for a server-side TLSSocket: asks every client for a certificate, checked after (verify()). */
  serverOptions(alpn: string[]): tls.TLSSocketOptions {
    return {
      isServer: true,
      secureContext: this.#server ?? undefined,
      requestCert: true,
      rejectUnauthorized: false,
      ALPNProtocols: alpn,
    };
  }

  /** Options for tls.connect to a mesh peer: our certificate, the bundle; the server is checked after. */
  clientOptions(alpn: string[]): tls.ConnectionOptions {
    return {
      secureContext: this.#client ?? undefined,
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
    if (this.#revoked.has(serial)) return { ok: false, reason: 'revoked', detail: `serial ${serial} is on the CRL` };
    const id = spiffeIdOf(cert);
    if (id === '') return { ok: false, reason: 'no-spiffe-id', detail: `serial ${serial} has no SPIFFE URI SAN` };
    const td = this.#policy.trustDomain;
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

/** Node's `ciphers` takes TLS 1.3 suites (TLS_*) and TLS 1.2 ciphers in one list and sorts them out. */
function cipherOptions(ciphers: readonly string[]): Pick<tls.SecureContextOptions, 'ciphers'> {
  return { ciphers: ciphers.join(':') };
}

/** The policy part of the config's `mtls` block. */
export function policyOf(cfg: MtlsConfig): MtlsPolicy {
  return { trustDomain: cfg.trustDomain, minVersion: cfg.minVersion, ciphers: cfg.ciphers };
}
