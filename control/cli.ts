// `skein control`: the control process. It holds services and traffic rules and pushes each proxy the config
// its traffic needs; it serves the bench job API and the eBPF probe API; all from its store (files under
// --data-dir, or Redis with --store).
// Canary rollouts are judged on the proxies' metrics read from --prometheus; with --ca-dir control signs the
// proxies' certificates (their CSRs, sent with the bootstrap token) with the mesh's CA, pushes the trust bundle and
// CRLs to the proxies, and (--tls) serves HTTPS, taking writes from --writer-ids client certificates.
// Stops cleanly on SIGTERM/SIGINT: the running bench job is stopped (queued ones wait for the next
// start), running probes are stopped with their figures kept.
import { resolve } from 'node:path';
import { parseArgs, type ParseArgsOptionsConfig } from 'node:util';
import { isIP } from 'node:net';
import { checkDnsName, DEFAULT_LEAF_VALID_HOURS } from '../certs/ca.ts';
import { spiffeIdMatcher } from '../certs/spiffe.ts';
import { parseHostPort } from '../src/discovery/address.ts';
import { createLogger, type LogLevel } from '../src/log.ts';
import { type ControlServer, startControl } from './server.ts';
import type { KubernetesSourceOptions } from './kubernetes/discovery.ts';
import { DEFAULT_STORE_PREFIX, describeStore, parseStoreChoice, type StoreChoice } from './store/open.ts';

export const CONTROL_DEFAULTS = {
  listen: '127.0.0.1:15010',
  dataDir: '.skein/control',
  retentionDays: 30,
} as const;

export const CONTROL_HELP = `Usage: skein control [options]

Start the control process: its HTTP API for services and traffic rules (/v1/rules, /v1/services), the
proxies' config push (/v1/push, /proxies), canary rollouts (/v1/canaries), benchmark jobs (/benchmarks/...)
and eBPF probe runs (/ebpf/probe/...), kept in its store (files under --data-dir, or Redis shared by several
control replicas) so they survive restarts, and its own Prometheus metrics (/metrics). With --ca-dir it also
signs the proxies' certificates (/v1/certificates), revokes them (/v1/certificates/revocations), serves the
trust bundle and CRL and pushes both to the proxies whenever they change (also after \`skein ca revoke\` or
\`skein ca rotate-root\` on DIR: control looks every 2 s).

Options:
  --listen HOST:PORT       API address (default ${CONTROL_DEFAULTS.listen}). Writes need the API token; reads and
                           the proxies' push stream are open: keep it on loopback or a private network.
  --data-dir DIR           File store, API token and benchmark reports (default ${CONTROL_DEFAULTS.dataDir}).
  --store URL              Where services, rules, jobs and probe runs are kept: file (the default: files under
                           DATA-DIR/store) or redis://HOST:PORT[/DB] (replicas on one Redis share state).
  --store-prefix PREFIX    Redis key prefix; replicas that share state use the same one (default ${DEFAULT_STORE_PREFIX}).
  --token-file FILE        The API token writes need (Authorization: Bearer TOKEN). Created with a new random
                           token (mode 0600, printed once) when absent (default DATA-DIR/api-token).
  --prometheus URL         Prometheus (http://HOST:PORT) scraping the proxies: the canary controller reads each
                           version's requests, errors and latency there to promote or roll back on its own.
                           Without it, the proxies (skein proxy --control) report those counts to control.
  --ca-dir DIR             The mesh's CA (made with \`skein ca init\`; created here when DIR holds none): sign
                           proxies' CSRs at POST /v1/certificates, revoke at /v1/certificates/revocations,
                           serve GET /v1/trust-bundle and GET /v1/crl, and push both to the proxies (the CRL
                           re-signed hourly and on every change).
  --bootstrap-token-file FILE
                           The token proxies send to get a certificate (Authorization: Bearer TOKEN), not the
                           API token. Created like it when absent (default DATA-DIR/bootstrap-token).
  --cert-hours H           Validity of the certificates control signs, in hours (default ${DEFAULT_LEAF_VALID_HOURS}).
  --kubernetes             Discover services from the Kubernetes API in-cluster (the pod's service account):
                           each Service NAME in NAMESPACE becomes the service NAME.NAMESPACE, its endpoints
                           the ready pods of its EndpointSlices, versioned by each pod's \`version\` label.
                           Needs get/list/watch on services, endpointslices and pods. A service written
                           through the API with the same id wins over the discovered one.
  --kubeconfig FILE        The same from outside the cluster, with FILE's current context.
  --kube-namespace NS      Discover in namespace NS only (default: all namespaces).
  --tls                    Serve HTTPS (needs --ca-dir) with a certificate control issues itself for
                           spiffe://TD/ns/skein-system/sa/skein-control, re-issued at half its life. Client
                           certificates are asked for, not required: the API token keeps working.
  --tls-dns-names LIST     The names (DNS names or IP addresses) in control's certificate, as clients reach it
                           (comma-separated; default localhost, 127.0.0.1, ::1 and the --listen host).
  --writer-ids LIST        SPIFFE id patterns (comma-separated, '*' matches any run, e.g.
                           spiffe://cluster.local/ns/ops/sa/*) whose client certificates may write without the
                           API token; needs --tls. The certificate must chain to the trust bundle and not be
                           revoked; 403 for another id. The audit log names the id.
  --retention-days N       Forget finished jobs and probe runs older than N days (default ${CONTROL_DEFAULTS.retentionDays}).
  --log-level LEVEL        debug | info | warn | error (default info).
  -h, --help               Show this help.

Signals: SIGTERM/SIGINT stop the running benchmark job (queued jobs run after the next start) and exit 0.`;

export const CONTROL_OPTIONS = {
  listen: { type: 'string', default: CONTROL_DEFAULTS.listen },
  'data-dir': { type: 'string', default: CONTROL_DEFAULTS.dataDir },
  'token-file': { type: 'string' },
  store: { type: 'string', default: 'file' },
  'store-prefix': { type: 'string' },
  prometheus: { type: 'string' },
  'ca-dir': { type: 'string' },
  'bootstrap-token-file': { type: 'string' },
  'cert-hours': { type: 'string', default: String(DEFAULT_LEAF_VALID_HOURS) },
  tls: { type: 'boolean', default: false },
  'tls-dns-names': { type: 'string' },
  'writer-ids': { type: 'string' },
  'retention-days': { type: 'string', default: String(CONTROL_DEFAULTS.retentionDays) },
  kubernetes: { type: 'boolean', default: false },
  kubeconfig: { type: 'string' },
  'kube-namespace': { type: 'string' },
  'log-level': { type: 'string', default: 'info' },
  help: { type: 'boolean', short: 'h', default: false },
} as const satisfies ParseArgsOptionsConfig;

export interface ControlArgs {
  readonly host: string;
  readonly port: number;
  readonly dataDir: string;
  /** Undefined: <dataDir>/api-token. */
  readonly tokenFile: string | undefined;
  readonly retentionDays: number;
  readonly logLevel: LogLevel;
  readonly store: StoreChoice;
  readonly prometheusUrl: string | undefined;
  readonly caDir: string | undefined;
  /** Undefined: <dataDir>/bootstrap-token. */
  readonly bootstrapTokenFile: string | undefined;
  readonly certHours: number;
  /** Kubernetes discovery (--kubernetes, --kubeconfig), or undefined. */
  readonly kubernetes: KubernetesSourceOptions | undefined;
  readonly tls: boolean;
  /** Undefined: the defaults (defaultTlsNames). */
  readonly tlsNames: readonly string[] | undefined;
  readonly writerIds: readonly string[];
}

const list = (raw: string | undefined): string[] | undefined =>
  raw
    ?.split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');

/** Parses `skein control` arguments; 'help' for -h. Throws an Error naming the bad option. */
export function parseControlArgs(argv: readonly string[]): ControlArgs | 'help' {
  const { values } = parseArgs({ args: [...argv], options: CONTROL_OPTIONS, strict: true, allowPositionals: false });
  if (values.help) return 'help';
  let address;
  try {
    address = parseHostPort(values.listen);
  } catch (err) {
    throw new Error(`--listen: ${(err as Error).message}`);
  }
  const retentionDays = Number(values['retention-days']);
  if (!(retentionDays > 0) || !Number.isFinite(retentionDays))
    throw new Error(`--retention-days must be a number > 0, got '${values['retention-days']}'`);
  const logLevel = values['log-level'] as LogLevel;
  if (!['debug', 'info', 'warn', 'error'].includes(logLevel))
    throw new Error('--log-level must be debug, info, warn or error');
  const store = parseStoreChoice(values.store, values['store-prefix']);
  const prometheusUrl = values.prometheus;
  if (prometheusUrl !== undefined && !/^https?:\/\/[^/\s]+/.test(prometheusUrl))
    throw new Error(`--prometheus must be an http:// or https:// URL, got '${prometheusUrl}'`);
  const certHours = Number(values['cert-hours']);
  if (!(certHours > 0) || !Number.isFinite(certHours))
    throw new Error(`--cert-hours must be a number > 0, got '${values['cert-hours']}'`);
  if (values['ca-dir'] === undefined && values['bootstrap-token-file'] !== undefined)
    throw new Error('--bootstrap-token-file needs --ca-dir (the token is for getting certificates)');
  const namespace = values['kube-namespace'];
  if (namespace !== undefined && !/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(namespace))
    throw new Error(`--kube-namespace must be a namespace name (a DNS label), got '${namespace}'`);
  const discover = values.kubernetes || values.kubeconfig !== undefined;
  if (!discover && namespace !== undefined) throw new Error('--kube-namespace needs --kubernetes or --kubeconfig');
  if (values.kubernetes && values.kubeconfig !== undefined)
    throw new Error('--kubernetes (in-cluster) and --kubeconfig FILE exclude each other');
  if (values.tls && values['ca-dir'] === undefined)
    throw new Error('--tls needs --ca-dir (control issues its own certificate from that CA)');
  const tlsNames = list(values['tls-dns-names']);
  if (tlsNames !== undefined && !values.tls) throw new Error('--tls-dns-names needs --tls');
  for (const name of tlsNames ?? [])
    if (isIP(name) === 0)
      try {
        checkDnsName(name);
      } catch (err) {
        throw new Error(`--tls-dns-names: ${(err as Error).message}`);
      }
  const writerIds = list(values['writer-ids']) ?? [];
  if (writerIds.length > 0 && !values.tls)
    throw new Error('--writer-ids needs --tls (writers are recognised by their client certificates)');
  try {
    spiffeIdMatcher(writerIds);
  } catch (err) {
    throw new Error(`--writer-ids: ${(err as Error).message}`);
  }
  return {
    host: address.host,
    port: address.port,
    dataDir: resolve(values['data-dir']),
    tokenFile: values['token-file'] === undefined ? undefined : resolve(values['token-file']),
    retentionDays,
    logLevel,
    store,
    prometheusUrl,
    caDir: values['ca-dir'] === undefined ? undefined : resolve(values['ca-dir']),
    bootstrapTokenFile:
      values['bootstrap-token-file'] === undefined ? undefined : resolve(values['bootstrap-token-file']),
    certHours,
    kubernetes: discover
      ? {
          ...(values.kubeconfig !== undefined && { kubeconfig: resolve(values.kubeconfig) }),
          ...(namespace !== undefined && { namespace }),
        }
      : undefined,
    tls: values.tls,
    tlsNames,
    writerIds,
  };
}

/** Starts control with a JSON logger on stderr; the caller owns the returned server. */
export function startControlProcess(args: ControlArgs): Promise<ControlServer> {
  const logger = createLogger(args.logLevel);
  return startControl({
    host: args.host,
    port: args.port,
    dataDir: args.dataDir,
    tokenFile: args.tokenFile,
    retentionDays: args.retentionDays,
    store: args.store,
    prometheusUrl: args.prometheusUrl,
    caDir: args.caDir,
    bootstrapTokenFile: args.bootstrapTokenFile,
    certHours: args.certHours,
    kubernetes: args.kubernetes,
    tls: args.tls,
    tlsNames: args.tlsNames,
    writerIds: args.writerIds,
    log: (level, message) => logger[level](message),
  });
}

export async function main(argv: string[]): Promise<number> {
  let args: ControlArgs | 'help';
  try {
    args = parseControlArgs(argv);
  } catch (err) {
    process.stderr.write(`skein control: ${(err as Error).message}\n\nRun \`skein control --help\` for usage.\n`);
    return 1;
  }
  if (args === 'help') {
    process.stdout.write(`${CONTROL_HELP}\n`);
    return 0;
  }
  let control: ControlServer;
  try {
    control = await startControlProcess(args);
  } catch (err) {
    process.stderr.write(`skein control: cannot start: ${(err as Error).message}\n`);
    return 1;
  }
  process.stdout.write(
    `skein control listening on ${control.url} (data in ${args.dataDir}, records in ${describeStore(args.store, args.dataDir)})\n`,
  );
  if (control.token.created)
    process.stdout.write(`skein control: new API token in ${control.token.file}: ${control.token.token}\n`);
  const ca = control.ca;
  if (ca !== undefined) {
    if (ca.created)
      process.stdout.write(`skein control: ${ca.dir} held no CA: created one for trust domain ${ca.trustDomain}\n`);
    process.stdout.write(`skein control: signing certificates for ${ca.trustDomain} with the CA in ${ca.dir}\n`);
    if (control.tls !== undefined)
      process.stdout.write(
        `skein control: serving HTTPS as ${control.tls.id}${args.writerIds.length > 0 ? `; writers by client certificate: ${args.writerIds.join(', ')}` : ''}\n`,
      );
    if (ca.bootstrapToken.created)
      process.stdout.write(
        `skein control: new bootstrap token in ${ca.bootstrapToken.file}: ${ca.bootstrapToken.token}\n`,
      );
  }
  const stop = () => {
    void control.close().then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`skein control: error while stopping: ${String(err)}\n`);
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  return -1; // keep running
}
