// The config's `mtls` files read into identity parts: what the proxy's own files give (certificate and key,
// trust bundle, CRL); a part they do not give comes from control (issuer.ts, the push stream's trust message).
import { readFileSync } from 'node:fs';
import type { MtlsConfig } from '../../src/config/schema.ts';
import type { IdentityMaterial, TrustMaterial } from './identity.ts';

export function readIdentityFiles(cfg: MtlsConfig): { material?: IdentityMaterial; trust?: TrustMaterial } {
  const read = (path: string, field: string) => {
    try {
      return readFileSync(path, 'utf8');
    } catch (err) {
      throw new Error(`mtls.${field}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  };
  return {
    material:
      cfg.certFile === undefined || cfg.keyFile === undefined
        ? undefined
        : { chainPem: read(cfg.certFile, 'certFile'), keyPem: read(cfg.keyFile, 'keyFile') },
    trust:
      cfg.trustBundleFile === undefined
        ? undefined
        : {
            bundlePem: read(cfg.trustBundleFile, 'trustBundleFile'),
            crlPem: cfg.crlFile === undefined ? '' : read(cfg.crlFile, 'crlFile'),
          },
  };
}

/** The files a config's `mtls` names (watched: replacing one in place is a reload). */
export function identityFiles(cfg: MtlsConfig | undefined): string[] {
  if (cfg === undefined) return [];
  return [cfg.certFile, cfg.keyFile, cfg.trustBundleFile, cfg.crlFile].filter((f): f is string => f !== undefined);
}
