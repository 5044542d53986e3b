// The control process's core, without the command line: opens the store (files under the data directory, or
// Redis), starts the managers that own long-running work (benchmark jobs, eBPF probe runs) and serves their
// routes, and control's own /metrics, on one HTTP API. `close()` stops everything it started, in reverse order. `skein control` and
// `skein mesh` both call it. With a CA directory it also signs, revokes and pushes trust (ca.ts, trust.ts), and
// with TLS serves HTTPS with its own certificate, taking writes from writer identities (tls.ts).
import type http from 'node:http';
import type https from 'node:https';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { benchJobRoutes } from './api/bench-jobs.ts';
import { canaryRoutes } from './api/canaries.ts';
import { certificateRoutes } from './api/certificates.ts';
import { DEFAULT_LEAF_VALID_HOURS } from '../certs/ca.ts';
import { type ControlCa, openCa } from './ca.ts';
import { TrustWatcher } from './trust.ts';
import { ControlTls, writerAuthorizer } from './tls.ts';
import { spiffeIdMatcher } from '../certs/spiffe.ts';
import { CanaryController } from './canary.ts';
import { PrometheusClient } from './canary-prometheus.ts';
import { CanaryMetrics } from '../src/telemetry/metrics-canary.ts';
import { probeRoutes } from './api/probes.ts';
import { BenchJobs } from './bench-jobs.ts';
import { ApiError, type ApiReply, createApiServer, listen, type Route } from './http.ts';
import { ControlMetrics, UNMATCHED_ROUTE } from './metrics.ts';
import { ProbeRuns } from './probe-runs.ts';
import { trafficRoutes } from './api/traffic.ts';
import { ReportedStats, StatsReport } from './reported-stats.ts';
import { openApiDocument } from './openapi.ts';
import { PushHub } from './push.ts';
import { openStore, type StoreChoice } from './store/open.ts';
import { type ApiToken, bearerAuthorizer, loadOrCreateToken } from './token.ts';
import { TrafficModel } from './traffic.ts';
import { KubernetesDiscovery, type KubernetesSourceOptions, loadKubeConfig } from './kubernetes/discovery.ts';
import { type TokenReviewer, tokenReviewer } from './kubernetes/token-review.ts';
import { discoveryRoutes } from './api/discovery.ts';

export type { ControlCa } from './ca.ts';

export interface ControlOptions {
  readonly host: string;
  /** 0 picks a free port. */
  readonly port: number;
  /** The store's files and the benchmark jobs' reports live here. */
  readonly dataDir: string;
  /** Finished jobs and probe runs older than this are forgotten (and their reports deleted). */
  readonly retentionDays: number;
  readonly log: (level: 'info' | 'warn' | 'error', message: string) => void;
  /** The command that runs `skein bench` for a job (default: this Node and bin/skein.js). */
  readonly benchCommand?: readonly string[];
  /** The API token writes need (created with a new token when absent). Default: <dataDir>/api-token. */
  readonly tokenFile?: string;
  /** Where the records live. Default: the file store under <dataDir>/store. */
  readonly store?: StoreChoice;
  /** Prometheus's base URL, where the canary controller reads the proxies' metrics; absent: no automatic judging. */
  readonly prometheusUrl?: string;
  /** The CA directory (certs/): control signs proxies' CSRs with it. Absent: no certificate routes. */
  readonly caDir?: string;
  /** The token proxies send to get a certificate (created when absent). Default: <dataDir>/bootstrap-token. */
  readonly bootstrapTokenFile?: string;
  /** Validity of the certificates control signs, in hours (default 24). */
  readonly certHours?: number;
  /** Discover services from the Kubernetes API (a kubeconfig, or in-cluster). Absent: no discovery. */
  readonly kubernetes?: KubernetesSourceOptions;
  /** Serve HTTPS with a certificate control issues itself from caDir (needs caDir). */
  readonly tls?: boolean;
  /** The DNS names and IP addresses of control's certificate. Default: localhost, 127.0.0.1, ::1 and the host. */
  readonly tlsNames?: readonly string[];
  /** SPIFFE id patterns (`*` for any run) whose client certificates may write without the API token (needs tls). */
  readonly writerIds?: readonly string[];
}

const WILDCARD_HOSTS = new Set(['0.0.0.0', '::', '']);

/** The names control's certificate carries by default: loopback, and the address it listens on. */
export function defaultTlsNames(host: string): string[] {
  const names = ['localhost', '127.0.0.1', '::1'];
  if (!WILDCARD_HOSTS.has(host) && !names.includes(host)) names.push(host);
  return names;
}

export interface ControlServer {
  readonly host: string;
  readonly port: number;
  readonly url: string;
  readonly benchJobs: BenchJobs;
  readonly probeRuns: ProbeRuns;
  readonly traffic: TrafficModel;
  readonly push: PushHub;
  readonly canaries: CanaryController;
  readonly token: ApiToken;
  /** The CA control signs with, when started with caDir. */
  readonly ca: ControlCa | undefined;
  /** Discovery from the Kubernetes API, when started with `kubernetes`. */
  readonly kubernetes: KubernetesDiscovery | undefined;
  /** The trust bundle and CRL pushed to the proxies, when started with caDir. */
  readonly trust: TrustWatcher | undefined;
  /** Control's own certificate, with --tls. */
  readonly tls: ControlTls | undefined;
  close(): Promise<void>;
}

const DAY_MS = 24 * 60 * 60 * 1000;
/** package.json's version: control runs from the sources (../) or from dist/control (../../). */
const PACKAGE_VERSION = ((): string => {
  for (const rel of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === 'skein' && pkg.version !== undefined) return pkg.version;
    } catch {
      // not there: try the next
    }
  }
  return 'unknown';
})();

export async function startControl(opts: ControlOptions): Promise<ControlServer> {
  if (opts.tls === true && opts.caDir === undefined) throw new Error('TLS needs a CA directory (--ca-dir)');
  if ((opts.writerIds ?? []).length > 0 && opts.tls !== true)
    throw new Error('writer ids need TLS (--tls): they are read from client certificates');
  const writer = spiffeIdMatcher(opts.writerIds ?? []);
  // The CA first: a bad directory stops control before it opens anything else.
  const ca = opts.caDir === undefined ? undefined : await openCa(opts, opts.caDir);
  const trust = ca === undefined ? undefined : await TrustWatcher.open(ca, { log: opts.log });
  const controlTls =
    opts.tls === true && ca !== undefined && trust !== undefined
      ? await ControlTls.start({
          ca,
          trust,
          names: opts.tlsNames ?? defaultTlsNames(opts.host),
          certHours: opts.certHours ?? DEFAULT_LEAF_VALID_HOURS,
          log: opts.log,
        })
      : undefined;
  const store = await openStore(opts.store ?? { kind: 'file' }, opts.dataDir, (m) => opts.log('warn', m));
  const retentionMs = opts.retentionDays * DAY_MS;
  const benchJobs = await BenchJobs.open({
    store,
    resultsDir: join(opts.dataDir, 'bench-jobs'),
    retentionMs,
    log: opts.log,
    command: opts.benchCommand,
  });
  const probeRuns = await ProbeRuns.open({ store, retentionMs, log: opts.log });
  const token = loadOrCreateToken(opts.tokenFile ?? join(opts.dataDir, 'api-token'));
  const traffic = await TrafficModel.open(store);
  let metrics: ControlMetrics | undefined;
  const push = new PushHub(
    (service) => traffic.overlayFor(service),
    {
      onAck: (_node, _service, _version, latencyMs) => metrics?.onPushAck(latencyMs),
      onNack: () => metrics?.onPushNack(),
    },
    () => trust?.messageLine,
  );
  traffic.onChange((_version, at) => push.changed(at));
  let kubernetes: KubernetesDiscovery | undefined;
  trust?.onChange(() => push.trustChanged());
  const health: Route = { method: 'GET', path: '/healthz', handle: (): ApiReply => ({ json: { status: 'ok' } }) };
  metrics = new ControlMetrics({
    benchJobs: () => benchJobs.list(),
    probeRuns: () => probeRuns.list(),
    configVersion: () => traffic.version,
    proxies: () => push.proxies(),
  });
  const reported = new ReportedStats();
  const canaries = await CanaryController.open({
    store,
    traffic,
    // Without Prometheus the proxies' own per-version reports (POST /v1/push/stats) feed the judge.
    stats: opts.prometheusUrl === undefined ? reported : new PrometheusClient(opts.prometheusUrl),
    metrics: new CanaryMetrics(metrics.registry),
    log: opts.log,
  });
  const routes: Route[] = [
    health,
    metrics.route(),
    ...trafficRoutes(traffic, push),
    ...discoveryRoutes(traffic, () => kubernetes),
    {
      method: 'POST',
      path: '/v1/push/stats',
      open: true,
      doc: {
        summary: "A proxy's cumulative per-version counts, for canary judging without Prometheus",
        body: StatsReport,
      },
      handle: (req) => ({ json: reported.report(req.body) }),
    },
    ...canaryRoutes(canaries),
    ...benchJobRoutes(benchJobs),
    ...probeRoutes(probeRuns),
    ...(ca === undefined || trust === undefined
      ? []
      : certificateRoutes({
          ca,
          trust,
          certHours: opts.certHours ?? DEFAULT_LEAF_VALID_HOURS,
          authorize: certificateAuthorizer(
            bearerAuthorizer(ca.bootstrapToken.token, 'bootstrap token'),
            opts.kubernetes === undefined ? null : tokenReviewer(loadKubeConfig(opts.kubernetes)),
            opts.log,
          ),
          log: opts.log,
        })),
  ];
  const openapi = openApiDocument(routes, PACKAGE_VERSION, {
    mtlsWriters: controlTls !== undefined && (opts.writerIds ?? []).length > 0,
  });
  routes.push({
    method: 'GET',
    path: '/openapi.json',
    doc: { summary: 'This description of the API (OpenAPI 3.1)' },
    handle: () => ({ json: openapi }),
  });
  const tokenCheck = bearerAuthorizer(token.token);
  const server = createApiServer({
    authorize:
      controlTls === undefined || trust === undefined
        ? tokenCheck
        : writerAuthorizer({ token: tokenCheck, writer, revoked: () => trust.state.revokedSerials }),
    ...(controlTls !== undefined && { tls: controlTls.serverOptions }),
    routes,
    onResponse: (route, method, status, seconds) =>
      metrics.onApiResponse(route ?? UNMATCHED_ROUTE, method, status, seconds),
    onError: (err, req) =>
      opts.log(
        'error',
        `${req.method} ${req.path} failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
      ),
  });
  let address;
  try {
    if (opts.kubernetes !== undefined) kubernetes = startKubernetes(opts.kubernetes, traffic, opts.log);
    address = await listen(server, opts.host, opts.port);
  } catch (err) {
    await kubernetes?.close();
    await canaries.close();
    push.close();
    controlTls?.close();
    trust?.close();
    await probeRuns.close();
    await benchJobs.close();
    await store.close();
    throw err;
  }
  const host = address.address;
  if (controlTls !== undefined) controlTls.attach(server as https.Server);
  const url = `${controlTls === undefined ? 'http' : 'https'}://${host.includes(':') ? `[${host}]` : host}:${address.port}`;
  let closing: Promise<void> | undefined;
  return {
    host,
    port: address.port,
    url,
    benchJobs,
    probeRuns,
    traffic,
    push,
    canaries,
    token,
    ca,
    kubernetes,
    trust,
    tls: controlTls,
    close: () =>
      (closing ??= (async () => {
        await kubernetes?.close();
        await canaries.close();
        push.close();
        controlTls?.close();
        trust?.close();
        traffic.close();
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        });
        await probeRuns.close();
        await benchJobs.close();
        await store.close();
      })()),
  };
}

/**
 * Who may get a certificate: the bootstrap token's holder, or (in a cluster) a service account whose token the
 * API server accepts for control's audience — its actor names it, and api/certificates.ts holds it to its own id.
 */
function certificateAuthorizer(
  bootstrap: (req: http.IncomingMessage) => string,
  review: TokenReviewer | null,
  log: ControlOptions['log'],
): (req: http.IncomingMessage) => string | Promise<string> {
  if (review === null) return bootstrap;
  return async (req) => {
    try {
      return bootstrap(req);
    } catch (err) {
      const token = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
      if (token === undefined) throw err;
      let user: string | null;
      try {
        user = await review(token);
      } catch (reviewErr) {
        log('warn', `token review failed: ${(reviewErr as Error).message}`);
        throw new ApiError('SKEIN_UNAVAILABLE', 'cannot check the service-account token with the Kubernetes API now');
      }
      if (user === null)
        throw new ApiError(
          'SKEIN_UNAUTHORIZED',
          'neither the bootstrap token nor a service-account token for skein-control',
        );
      return user;
    }
  };
}

/** Discovery whose services go to the traffic model as the source `kubernetes`; a newly shadowed id is logged. */
function startKubernetes(
  opts: KubernetesSourceOptions,
  traffic: TrafficModel,
  log: ControlOptions['log'],
): KubernetesDiscovery {
  let shadowed = new Set<string>();
  return new KubernetesDiscovery(
    opts,
    async (services) => {
      const now = new Set(await traffic.setDiscovered('kubernetes', services));
      for (const id of now)
        if (!shadowed.has(id))
          log('warn', `kubernetes discovery: service '${id}' is also written through the API; the API's one is used`);
      shadowed = now;
    },
    log,
  );
}
