// The certificates of a bench run's TLS targets, made for the run into its directory by the mesh's own CA
// (certs/ca.ts, what `skein ca init` and `skein ca issue` run): the two skein-mtls proxies' SPIFFE identities and
// nginx-tls's server certificate (DNS name localhost), so every TLS target in a run chains to the same root and
// the load generator trusts exactly that root.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { initCa, issueForId } from '../../certs/ca.ts';

export const BENCH_TRUST_DOMAIN = 'cluster.local';
/** The name nginx-tls's certificate is for; the generator sends it as SNI and checks it. */
export const BENCH_TLS_SERVERNAME = 'localhost';

export const benchSpiffeId = (account: string) => `spiffe://${BENCH_TRUST_DOMAIN}/ns/bench/sa/${account}`;

export interface CertFiles {
  /** The leaf, then the intermediate (PEM). */
  readonly certFile: string;
  readonly keyFile: string;
}

export interface BenchCerts {
  readonly caDir: string;
  /** The CA's roots (PEM): the trust bundle of the proxies and the generator's CA file. */
  readonly bundleFile: string;
  /** The outbound proxy's identity (the caller, spiffe://cluster.local/ns/bench/sa/bench-client). */
  readonly outbound: CertFiles;
  /** The inbound proxy's identity (the callee, spiffe://cluster.local/ns/bench/sa/bench-origin). */
  readonly inbound: CertFiles;
  /** nginx-tls's server certificate: a SPIFFE id too, and the DNS name localhost. */
  readonly nginx: CertFiles;
}

/** Creates a CA in `dir`/ca and issues the run's three certificates (valid 24 hours) beside it. */
export async function makeBenchCerts(dir: string): Promise<BenchCerts> {
  const caDir = join(dir, 'ca');
  await initCa(caDir, { trustDomain: BENCH_TRUST_DOMAIN });
  const issue = async (account: string, dnsNames: string[] = []): Promise<CertFiles> => {
    const issued = await issueForId(caDir, benchSpiffeId(account), { dnsNames });
    const prefix = join(dir, account);
    writeFileSync(`${prefix}.crt`, issued.chainPem, { mode: 0o644 });
    writeFileSync(`${prefix}.key`, issued.keyPem ?? '', { mode: 0o600 });
    return { certFile: `${prefix}.crt`, keyFile: `${prefix}.key` };
  };
  return {
    caDir,
    bundleFile: join(caDir, 'bundle.pem'),
    outbound: await issue('bench-client'),
    inbound: await issue('bench-origin'),
    nginx: await issue('nginx', [BENCH_TLS_SERVERNAME]),
  };
}
