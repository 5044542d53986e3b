// The two-proxy bench targets: the generator → an outbound skein (the app's sidecar, plaintext from the app) →
// an inbound skein (the callee's sidecar) → the origin. `skein-pair` connects the proxies in plaintext,
// `skein-mtls` over mutual TLS (the cluster's mtls always, the listener strict, identities from the run's CA:
// mesh-certs.ts), and `skein-mtls-handshake` is skein-mtls keeping no idle connection between the proxies, so every
// request opens a new mTLS connection: one full handshake per request. Both proxies run under one bash, so the
// harness's CPU and memory figures (the process tree of the target) count both.
import { stringify } from 'yaml';
import type { ConfigInput } from '../../src/config/schema.ts';
import { BENCH_TRUST_DOMAIN, type BenchCerts, benchSpiffeId, type CertFiles } from './mesh-certs.ts';

export type SkeinMeshTarget = 'skein-pair' | 'skein-mtls' | 'skein-mtls-handshake';

export interface SkeinMeshOptions {
  /** The outbound proxy's listener: where the generator sends. */
  readonly port: number;
  /** The inbound proxy's listener: where the outbound proxy sends. */
  readonly peerPort: number;
  readonly originPort: number;
  /** The inbound proxy's admin listener (/metrics: skein_mtls_handshakes_total). */
  readonly adminPort: number;
  /** Required by the mTLS targets. */
  readonly certs?: BenchCerts;
}

const usesMtls = (name: SkeinMeshTarget) => name !== 'skein-pair';

function meshTls(certs: BenchCerts, id: CertFiles): NonNullable<ConfigInput['mtls']> {
  return { trustDomain: BENCH_TRUST_DOMAIN, ...id, trustBundleFile: certs.bundleFile };
}

function needCerts(name: SkeinMeshTarget, opts: SkeinMeshOptions): BenchCerts | undefined {
  if (!usesMtls(name)) return undefined;
  if (opts.certs === undefined) throw new Error(`${name} needs the run's certificates (certs)`);
  return opts.certs;
}

/** The app's sidecar: plaintext listener for the generator, one cluster to the inbound proxy. */
export function skeinMeshOutboundConfig(name: SkeinMeshTarget, opts: SkeinMeshOptions): ConfigInput {
  const certs = needCerts(name, opts);
  return {
    service: 'bench-client',
    ...(certs === undefined ? {} : { mtls: meshTls(certs, certs.outbound) }),
    listeners: [
      {
        name: 'outbound',
        direction: 'outbound',
        address: `127.0.0.1:${opts.port}`,
        routes: [{ name: 'default', cluster: 'bench-origin' }],
      },
    ],
    clusters: [
      {
        name: 'bench-origin',
        mtls: certs === undefined ? { mode: 'never' } : { mode: 'always', serverIds: [benchSpiffeId('bench-origin')] },
        // No idle connection kept: each request's connection to the inbound proxy is closed after it.
        ...(name === 'skein-mtls-handshake' ? { maxIdlePerEndpoint: 0 } : {}),
        discovery: { type: 'static', endpoints: [{ address: `127.0.0.1:${opts.peerPort}` }] },
      },
    ],
  };
}

/** The callee's sidecar: the listener the outbound proxy calls (strict mTLS or plaintext), the origin behind it. */
export function skeinMeshInboundConfig(name: SkeinMeshTarget, opts: SkeinMeshOptions): ConfigInput {
  const certs = needCerts(name, opts);
  return {
    service: 'bench-origin',
    admin: { address: `127.0.0.1:${opts.adminPort}` },
    ...(certs === undefined ? {} : { mtls: meshTls(certs, certs.inbound) }),
    listeners: [
      {
        name: 'inbound',
        direction: 'inbound',
        address: `127.0.0.1:${opts.peerPort}`,
        mtls: certs === undefined ? 'disabled' : 'strict',
        routes: [{ name: 'default', cluster: 'app' }],
      },
    ],
    clusters: [
      {
        name: 'app',
        mtls: { mode: 'never' },
        discovery: { type: 'static', endpoints: [{ address: `127.0.0.1:${opts.originPort}` }] },
      },
    ],
  };
}

export function skeinMeshConfigs(
  name: SkeinMeshTarget,
  opts: SkeinMeshOptions,
): { readonly outbound: string; readonly inbound: string } {
  const head = (side: string) => `# ${name} bench target, ${side} proxy (written by skein bench).\n`;
  return {
    outbound: head('outbound') + stringify(skeinMeshOutboundConfig(name, opts)),
    inbound: head('inbound') + stringify(skeinMeshInboundConfig(name, opts)),
  };
}

/**
 * Both proxies under one bash (the target's process tree, pinned as one to the proxy CPU): the inbound first, and
 * when either exits the other is stopped too, so the harness sees the target exit.
 */
export const SKEIN_MESH_CMD =
  'bin/skein.js proxy --config "$SKEIN_INBOUND_CONFIG" & bin/skein.js proxy --config "$SKEIN_OUTBOUND_CONFIG" & ' +
  'wait -n; kill 0';

export function skeinMeshDescription(name: SkeinMeshTarget, opts: Pick<SkeinMeshOptions, 'peerPort'>): string {
  const pair =
    'two skein proxies on the proxy CPU, both counted in CPU and RSS: the generator → outbound skein ' +
    `(\`bin/skein.js proxy --config ${name}-outbound.yaml\`) → inbound skein on 127.0.0.1:${opts.peerPort} ` +
    `(\`--config ${name}-inbound.yaml\`) → the origin`;
  switch (name) {
    case 'skein-pair':
      return `${pair}; plaintext between the proxies (what skein-mtls adds: compare with this)`;
    case 'skein-mtls':
      return (
        `${pair}; mutual TLS between the proxies (cluster mtls always, listener strict, SPIFFE identities from a CA ` +
        'made for the run, ECDSA P-256), upstream connections kept alive: handshakes only when a connection opens'
      );
    case 'skein-mtls-handshake':
      return (
        `${pair}; skein-mtls with maxIdlePerEndpoint 0 on the outbound cluster: every request opens a new mTLS ` +
        'connection between the proxies, one full handshake (both sides) per request'
      );
  }
}
