// What can be known about a listener's TLS files without binding: each is readable, holds a PEM certificate or
// private key, and the key belongs to the certificate. `skein config check`, `proxy --check`, the start and
// every reload run these, so a config that says "valid" does not then fail to serve.
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Config } from './schema.ts';

/** One "field.path: reason" line per problem, in listener order; [] when every TLS listener can start. */
export function checkTlsFiles(config: Config): string[] {
  const problems: string[] = [];
  config.listeners.forEach((l, i) => {
    if (l.tls === undefined) return;
    const at = `listeners[${i}].tls`;
    const certPem = readOrReport(l.tls.certFile, `${at}.certFile`, problems);
    const keyPem = readOrReport(l.tls.keyFile, `${at}.keyFile`, problems);
    let cert: X509Certificate | undefined;
    if (certPem !== undefined) {
      try {
        cert = new X509Certificate(certPem);
      } catch (err) {
        problems.push(`${at}.certFile: ${l.tls.certFile} holds no PEM certificate (${reason(err)})`);
      }
    }
    if (keyPem === undefined) return;
    let key: ReturnType<typeof createPrivateKey>;
    try {
      key = createPrivateKey(keyPem);
    } catch (err) {
      problems.push(`${at}.keyFile: ${l.tls.keyFile} holds no PEM private key (${reason(err)})`);
      return;
    }
    if (cert !== undefined && !cert.checkPrivateKey(key))
      problems.push(`${at}.keyFile: ${l.tls.keyFile} is not the private key of the certificate in ${l.tls.certFile}`);
  });
  return problems;
}

function readOrReport(path: string, field: string, problems: string[]): Buffer | undefined {
  try {
    return readFileSync(path);
  } catch (err) {
    // "ENOENT: no such file or directory, open '/x'" → "ENOENT: no such file or directory": the path is said once.
    problems.push(`${field}: cannot read ${path} (${reason(err).replace(/, \w+ '.*'$/, '')})`);
    return undefined;
  }
}

/** The error's words without OpenSSL's code prefix ("error:0480006C:PEM routines::no start line"). */
function reason(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).replace(/^error:[0-9A-Fa-f]+:[^:]*::?/, '');
}
