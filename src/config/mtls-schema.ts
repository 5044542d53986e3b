// Mutual TLS between proxies with identities from the mesh's CA (certs/, control/api/certificates.ts).
// `mtls` at the top of a config says where this proxy's identity comes from and what a handshake accepts;
// each listener says whether it requires mTLS, and each cluster whether calls to it use it.
import { z } from 'zod';

/** TLS 1.3 suites the seed names, then TLS 1.2 ECDHE AEAD suites for peers that stop at 1.2 (OpenSSL names). */
export const DEFAULT_CIPHERS = [
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-RSA-CHACHA20-POLY1305',
];

const TRUST_DOMAIN = /^[a-z0-9._-]+$/;

export const MeshTls = z
  .strictObject({
    /** Peers must hold a SPIFFE id in this trust domain (spiffe://<trustDomain>/...). */
    trustDomain: z
      .string()
      .regex(TRUST_DOMAIN, 'lowercase letters, digits, . _ - only (a SPIFFE trust domain)')
      .default('cluster.local'),
    /**
     * This proxy's certificate (PEM: the leaf, then the chain) and key. Absent: the proxy makes its own key and
     * asks control to sign it (`skein proxy --control URL --bootstrap-token-file F`), renewing at half its life.
     */
    certFile: z.string().min(1).optional(),
    keyFile: z.string().min(1).optional(),
    /** The roots peers' chains must end in (PEM, several during a root rotation). From control when absent. */
    trustBundleFile: z.string().min(1).optional(),
    /** CRLs (PEM) of the intermediates: a peer whose serial is on one is refused. From control when absent. */
    crlFile: z.string().min(1).optional(),
    /** Lowest TLS version offered and accepted; TLS 1.2 and 1.3 only. */
    minVersion: z.enum(['TLSv1.2', 'TLSv1.3']).default('TLSv1.2'),
    /** Cipher suites, OpenSSL names; TLS 1.3 suites (TLS_*) and TLS 1.2 ones in one list. */
    ciphers: z
      .array(z.string().regex(/^[A-Za-z0-9_-]+$/, 'an OpenSSL cipher suite name'))
      .min(1)
      .default(DEFAULT_CIPHERS),
  })
  .refine((m) => (m.certFile === undefined) === (m.keyFile === undefined), {
    message: 'certFile and keyFile go together',
    path: ['keyFile'],
  });

/**
 * A listener's mTLS: strict, only mTLS connections from peers of the trust domain; permissive, mTLS or plaintext
 * on the same port (a TLS ClientHello is told from plaintext by its first byte), for migrating; disabled, none.
 */
export const ListenerMtls = z.enum(['strict', 'permissive', 'disabled']);

/**
 * Calls to a cluster: always mTLS; never; or auto (the default), mTLS to the endpoints that are in the mesh
 * (label `mesh: "true"`, which control sets for endpoints with a proxy) when this proxy has an identity.
 */
export const ClusterMtls = z.strictObject({
  mode: z.enum(['auto', 'always', 'never']).default('auto'),
  /** The server's SPIFFE id must match one of these (`*` matches any run of characters); any id of the trust
   *  domain when absent. */
  serverIds: z.array(z.string().startsWith('spiffe://')).min(1).optional(),
});

export type MeshTlsConfig = z.infer<typeof MeshTls>;
export type ClusterMtlsConfig = z.infer<typeof ClusterMtls>;
