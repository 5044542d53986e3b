// The one schema for Skein's configuration: types are inferred from it, the file loader and (later) the
// control API validate with it, and `skein config schema` prints it as JSON Schema for the docs.
// Nothing here does I/O; compile.ts turns a validated Config into an immutable Snapshot.
import { z } from 'zod';
import { addressConflicts, type ConfigAddress } from './address-conflicts.ts';
import { reasonRouteCannotSet } from '../routing/hop-by-hop.ts';
import { loadBalancerNames } from '../lb/registry.ts';
import { ListenerStages } from './stages.ts';
import { authorizationPlacementIssues } from './authorization-schema.ts';
import { HealthChecks, OutlierDetection } from './health-schema.ts';
import { CIRCUIT_BREAKER_DEFAULTS, CircuitBreakers } from './breaker-schema.ts';
import { RateLimitPolicy } from './rate-limit-schema.ts';
import { RETRY_BUDGET_DEFAULTS, RetryBudget, RetryPolicy } from './retry-schema.ts';
import { CookieMatch, HeaderMatch, QueryParamMatch, Regex } from './match-schema.ts';
import { MirrorPolicy } from './mirror-schema.ts';
import { originalDstKey } from '../discovery/address.ts';
import { ClusterMtls, ListenerMtls, MeshTls } from './mtls-schema.ts';

export { HeaderMatch } from './match-schema.ts';

const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/;

/** "host:port" or "[v6]:port"; the port must be 0..65535 (0 = pick a free one, for tests). */
export const HostPort = z
  .string()
  .regex(HOST_PORT, { message: 'expected host:port, e.g. 127.0.0.1:8080 or [::1]:8080', abort: true })
  .refine((s) => Number(HOST_PORT.exec(s)?.[2]) <= 65535, 'port must be 0..65535');

const Millis = z.number().int().nonnegative();

/** An IP literal and port ("10.96.0.10:80", "[fd00::1]:80"): an address a client dials, as the kernel reports it. */
export const IpPort = HostPort.refine((s) => {
  const host = HOST_PORT.exec(s)![1];
  return host.startsWith('[') ? z.ipv6().safeParse(host.slice(1, -1)).success : z.ipv4().safeParse(host).success;
}, 'expected an IP address and port, e.g. 10.96.0.10:80 or [fd00::10]:80');

export const StaticEndpoint = z.strictObject({
  address: HostPort,
  weight: z.number().int().min(1).max(10_000).default(1),
  /** Free-form labels (version, zone); `version` is copied to x-target-version style telemetry later. */
  labels: z.record(z.string(), z.string()).default({}),
});

export const Discovery = z.discriminatedUnion('type', [
  // An empty list is a cluster with nothing to send to (503, flag UH), as a file source may hold: control sends
  // one for a service (or a version a rule names) whose pods are all gone, rather than a snapshot proxies refuse.
  z.strictObject({ type: z.literal('static'), endpoints: z.array(StaticEndpoint) }),
  z.strictObject({
    type: z.literal('file'),
    /** A JSON or YAML file holding a list of endpoints (same shape as static endpoints); watched for changes. */
    path: z.string().min(1),
  }),
  z.strictObject({
    type: z.literal('dns'),
    name: z.string().min(1),
    /** Port for A/AAAA answers; SRV answers carry their own. */
    port: z.number().int().min(1).max(65535).optional(),
    recordType: z.enum(['A', 'AAAA', 'SRV']).default('A'),
    /** Lower bound for re-resolution; the record TTL is used when larger. */
    minRefreshMs: Millis.default(5_000),
    /** Upper bound for re-resolution, whatever the TTL says. */
    maxRefreshMs: Millis.default(60_000),
    /** DNS servers to ask ("ip:port"); the system's resolvers when absent. */
    servers: z.array(z.string()).optional(),
  }),
  z.strictObject({
    /** Envoy's ORIGINAL_DST: each request goes to the address its client dialed before `skein redirect` sent it to
     *  the proxy (proxy/original-dst.ts); endpoints are made per destination and dropped once idle. Only
     *  requests from a listener with `originalDst: true` have one (others get UH). */
    type: z.literal('original-dst'),
    /** Connect to this address instead of the original one, keeping its port: an inbound listener's local app
     *  at 127.0.0.1 (an app listening on the pod IP needs no host). */
    host: z.union([z.ipv4(), z.ipv6()]).optional(),
  }),
]);

export const HashPolicy = z.union([
  z.strictObject({ header: z.string().min(1).toLowerCase() }),
  z.strictObject({ cookie: z.string().min(1) }),
  z.strictObject({ sourceIp: z.literal(true) }),
]);

/** Built from the LB registry: a policy registered there is a name the config accepts. */
export const LbPolicyName = z.enum(loadBalancerNames() as [string, ...string[]]);

export const LoadBalancing = z
  .strictObject({
    policy: LbPolicyName.default('round-robin'),
    /** consistent-hash only: what to hash. */
    hash: HashPolicy.optional(),
    /** consistent-hash only: ring or Maglev table size. */
    tableSize: z.number().int().min(1).max(1_000_003).optional(),
    /** Below this share of healthy endpoints (passing checks, not ejected) the balancer uses them all (Envoy's
     *  panic mode): sending everything to the few left would only overload them too. */
    panicThresholdPercent: z.number().min(0).max(100).default(50),
  })
  .refine((lb) => lb.policy !== 'consistent-hash' || lb.hash !== undefined, {
    message: 'consistent-hash needs hash: { header | cookie | sourceIp }',
    path: ['hash'],
  });

export const Timeouts = z.strictObject({
  connectMs: Millis.default(1_000),
  /** Whole request, from downstream headers to the end of the upstream response; 0 = none. */
  requestMs: Millis.default(15_000),
  /** Idle upstream keep-alive connections (HTTP/2: sessions) are closed after this. Below the 5 s keep-alive
   *  timeout most apps run with (Node's default): the proxy, not the app, closes an idle connection. */
  idleMs: Millis.default(4_000),
});

export const Cluster = z
  .strictObject({
    name: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, _ . - only'),
    /** The destination service's name, sent as x-target-service; defaults to the cluster name. */
    service: z.string().optional(),
    /** auto: HTTP/1.1 downstream → HTTP/1.1; gRPC → h2c; other HTTP/2 → h2c unless the endpoint refuses it,
     *  then HTTP/1.1 (learned per endpoint, re-probed after 5 minutes). */
    protocol: z.enum(['auto', 'http1', 'http2']).default('auto'),
    discovery: Discovery,
    lb: LoadBalancing.default({ policy: 'round-robin', panicThresholdPercent: 50 }),
    timeouts: Timeouts.default({ connectMs: 1_000, requestMs: 15_000, idleMs: 4_000 }),
    /** Idle keep-alive HTTP/1.1 connections kept per endpoint. */
    maxIdlePerEndpoint: z.number().int().min(0).max(10_000).default(128),
    /** Active health checks of every endpoint (health-schema.ts); none when absent. */
    healthChecks: HealthChecks.optional(),
    /** Passive outlier detection (health-schema.ts); none when absent (the quick form turns it on). */
    outlierDetection: OutlierDetection.optional(),
    /** Envoy's thresholds (its defaults when absent) and the optional per-endpoint breaker (breaker-schema.ts). */
    circuitBreakers: CircuitBreakers.default(CIRCUIT_BREAKER_DEFAULTS),
    /** How many retries the cluster's requests may add (retry-schema.ts); always on, Linkerd's defaults. */
    retryBudget: RetryBudget.default(RETRY_BUDGET_DEFAULTS),
    /** Addresses clients dial for this cluster (a Service's cluster IP and port): a listener with `originalDst:
     *  true` sends captured requests for them here (src/routing/original-dst.ts). */
    serviceAddresses: z.array(IpPort).min(1).optional(),
    /** mTLS on calls to the cluster's endpoints (mtls-schema.ts); auto when absent. */
    mtls: ClusterMtls.default({ mode: 'auto' }),
  })
  .superRefine((c, ctx) => {
    // One endpoint per destination, made at the pick: there is no set to check, eject from or balance over.
    if (c.discovery.type !== 'original-dst') return;
    const perEndpoint: [keyof typeof c, boolean][] = [
      ['healthChecks', c.healthChecks !== undefined],
      ['outlierDetection', c.outlierDetection !== undefined],
      ['circuitBreakers', c.circuitBreakers.endpoint !== undefined],
    ];
    for (const [field, set] of perEndpoint)
      if (set)
        ctx.addIssue({
          code: 'custom',
          message: `an original-dst cluster has one endpoint per destination: no ${field === 'circuitBreakers' ? 'endpoint breaker' : field}`,
          path: field === 'circuitBreakers' ? [field, 'endpoint'] : [field],
        });
  });

export const RouteMatch = z
  .strictObject({
    path: z.string().startsWith('/').optional(),
    pathPrefix: z.string().startsWith('/').optional(),
    pathRegex: Regex.optional(),
    methods: z.array(z.string().toUpperCase()).optional(),
    headers: z.array(HeaderMatch).default([]),
    /** Cookies of the Cookie header (match-schema.ts); the header is parsed only when a route asks. */
    cookies: z.array(CookieMatch).optional(),
    /** Query parameters, percent-decoded (match-schema.ts); the query is parsed only when a route asks. */
    queryParams: z.array(QueryParamMatch).optional(),
    /** The calling service is one of these: inbound, the caller's x-source-service (set by its proxy);
     *  outbound, this proxy's own `service`. */
    sourceServices: z.array(z.string().min(1)).min(1).optional(),
    /** gRPC requests only (content-type application/grpc*). */
    grpc: z.boolean().optional(),
  })
  .refine((m) => [m.path, m.pathPrefix, m.pathRegex].filter((v) => v !== undefined).length <= 1, {
    message: 'use at most one of path, pathPrefix, pathRegex',
  });

export const WeightedCluster = z.strictObject({
  cluster: z.string(),
  weight: z.number().int().min(0).max(1_000_000),
});

const Percentage = z.number().min(0).max(100);

/** Fault injection on a route (the seed's shape: delay.percentage/fixedDelay, abort.percentage/httpStatus). */
export const FaultPolicy = z
  .strictObject({
    /** Hold the request this long (ms) before it goes on, for `percentage` % of the requests. */
    delay: z.strictObject({ percentage: Percentage, fixedDelay: Millis }).optional(),
    /** Answer at once with this status (flag FI) for `percentage` % of the requests. */
    abort: z
      .strictObject({
        percentage: Percentage,
        httpStatus: z.number().int().min(200).max(599).optional(),
        /** For gRPC requests; without it the gRPC status follows from httpStatus (503 → UNAVAILABLE). */
        grpcStatus: z.number().int().min(1).max(16).optional(),
      })
      .optional(),
    /** Only requests matching all of these are faulted (e.g. a chaos-test header). */
    headers: z.array(HeaderMatch).default([]),
  })
  .refine((f) => f.delay !== undefined || f.abort !== undefined, { message: 'a fault needs delay or abort' });

export const Route = z
  .strictObject({
    name: z.string().optional(),
    /** Higher first; routes of equal priority keep their file order. */
    priority: z.number().int().default(0),
    match: RouteMatch.default({ headers: [] }),
    cluster: z.string().optional(),
    weightedClusters: z.array(WeightedCluster).min(1).optional(),
    /** Overrides the cluster's request timeout for this route. */
    timeoutMs: Millis.optional(),
    /** Replace the matched path prefix (pathPrefix routes) before forwarding. */
    prefixRewrite: z.string().optional(),
    requestHeaders: z
      .strictObject({
        set: z
          .record(z.string(), z.string())
          .default({})
          .superRefine((set, ctx) => {
            for (const name of Object.keys(set)) {
              const reason = reasonRouteCannotSet(name);
              if (reason !== undefined) ctx.addIssue({ code: 'custom', path: [name], message: reason });
            }
          }),
        remove: z.array(z.string()).default([]),
      })
      .optional(),
    /** Fault injection for chaos tests (proxy/stages/fault.ts). */
    fault: FaultPolicy.optional(),
    /** A rate limit on this route's requests (proxy/stages/rate-limit.ts; rate-limit-schema.ts). */
    rateLimit: RateLimitPolicy.optional(),
    /** Retries of this route's requests (proxy/stages/retry.ts; retry-schema.ts). Absent: the listener's
     *  `stages.retry`, else Istio's default policy on outbound listeners and none on inbound ones. */
    retries: RetryPolicy.optional(),
    /** Copy a share of this route's requests to a shadow cluster, fire and forget (proxy/stages/mirror.ts). */
    mirror: MirrorPolicy.optional(),
  })
  .refine((r) => (r.cluster === undefined) !== (r.weightedClusters === undefined), {
    message: 'a route needs exactly one of cluster or weightedClusters',
  })
  .refine((r) => !r.weightedClusters || r.weightedClusters.some((w) => w.weight > 0), {
    message: 'weightedClusters needs at least one weight above 0',
    path: ['weightedClusters'],
  });

export const Tls = z.strictObject({
  certFile: z.string(),
  keyFile: z.string(),
});

export const Listener = z
  .strictObject({
    name: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, _ . - only'),
    address: HostPort,
    /** outbound: the local app calls the mesh through it; inbound: the mesh calls the local app. */
    direction: z.enum(['outbound', 'inbound']).default('outbound'),
    /** http: HTTP/1.1 and HTTP/2 (h2c prior knowledge, or h2 by ALPN under tls) detected per connection. */
    protocol: z.enum(['http', 'tcp']).default('http'),
    tls: Tls.optional(),
    /** Mutual TLS with the mesh's identities (mtls-schema.ts); needs the top-level `mtls`. Not with `tls`. */
    mtls: ListenerMtls.default('disabled'),
    routes: z.array(Route).default([]),
    /** protocol tcp: every connection goes to this cluster. With `originalDst`: where requests go that no route
     *  matched and whose original destination is no cluster's `serviceAddresses` (any protocol). */
    cluster: z.string().optional(),
    /** Transparent capture (`skein redirect`): read each connection's original destination and route by it when
     *  no route matches: a cluster's `serviceAddresses`, else `cluster`. protocol http: connections that do not
     *  start with HTTP/1.1 or HTTP/2 are passed through as TCP the same way. */
    originalDst: z.boolean().default(false),
    /** originalDst with protocol http: a client that sends nothing within this is passed through as TCP (a
     *  server-first protocol: MySQL, SMTP); one that is only slow loses HTTP routing, not its destination.
     *  0: no passthrough on silence (a silent client is closed after headersTimeoutMs, as elsewhere). */
    protocolDetectionTimeoutMs: Millis.default(1_000),
    /** Config of the pipeline stages that take one, by stage name (src/config/stages.ts). */
    stages: ListenerStages.optional(),
    /** Largest request head accepted (bytes); larger gets 431. */
    maxHeaderBytes: z
      .number()
      .int()
      .min(1024)
      .max(1 << 20)
      .default(16 * 1024),
    /** A client must finish sending its request head within this; slowloris protection. */
    headersTimeoutMs: Millis.default(10_000),
    /** Idle downstream keep-alive connections are closed after this. */
    idleTimeoutMs: Millis.default(60_000),
  })
  .refine((l) => l.protocol !== 'tcp' || l.cluster !== undefined, {
    message: 'a tcp listener needs cluster',
    path: ['cluster'],
  })
  .refine((l) => !l.originalDst || l.cluster !== undefined, {
    message:
      'an originalDst listener needs cluster: where unclaimed destinations go (e.g. a cluster with discovery: { type: original-dst })',
    path: ['cluster'],
  })
  .refine((l) => l.tls === undefined || l.mtls === 'disabled', {
    message: 'a listener takes either tls (its own certificate) or mtls (the mesh identity), not both',
    path: ['mtls'],
  })
  .refine((l) => l.protocol !== 'http' || l.originalDst || l.routes.length > 0, {
    message: 'an http listener needs at least one route',
    path: ['routes'],
  });

export const Admin = z.strictObject({ address: HostPort });

/** Prometheus metrics on the admin listener's /metrics (manifests/README.md lists the families). */
export const Metrics = z.strictObject({
  enabled: z.boolean().default(true),
});

/** OpenTelemetry traces exported over OTLP/HTTP (protobuf), e.g. to Jaeger's collector on :4318. */
export const Tracing = z.strictObject({
  enabled: z.boolean().default(false),
  /** OTLP/HTTP traces endpoint. */
  endpoint: z.url({ protocol: /^https?$/ }).default('http://127.0.0.1:4318/v1/traces'),
  /** Share of new traces (no sampled parent) that are recorded. */
  samplingRatio: z.number().min(0).max(1).default(0.01),
  /** Follow the caller's sampled flag when a trace context comes in. */
  parentBased: z.boolean().default(true),
  /** Propagation formats read and written: W3C traceparent, B3 single header, B3 multi-header. */
  propagation: z
    .array(z.enum(['w3c', 'b3', 'b3multi']))
    .min(1)
    .default(['w3c', 'b3multi']),
  /** Spans waiting for export beyond this are dropped (never blocks a request). */
  maxQueueSize: z.number().int().positive().default(2048),
  maxExportBatchSize: z.number().int().positive().default(512),
  scheduledDelayMs: Millis.default(1000),
  exportTimeoutMs: Millis.default(5000),
});

/** One JSON line per request. */
export const AccessLog = z.strictObject({
  enabled: z.boolean().default(false),
  /** "stdout", "stderr" or a file path (appended to). */
  path: z.string().min(1).default('stdout'),
  /** Share of requests logged. */
  sampleRatio: z.number().min(0).max(1).default(1),
  /** Sampling never drops a 5xx or a request with a response flag. */
  alwaysLogErrors: z.boolean().default(true),
});

export const Telemetry = z.strictObject({
  metrics: Metrics.prefault({}),
  tracing: Tracing.prefault({}),
  accessLog: AccessLog.prefault({}),
});

export const Config = z
  .strictObject({
    /** The local service this proxy fronts; sent as x-source-service on outbound requests. */
    service: z.string().default('unknown'),
    admin: Admin.optional(),
    telemetry: Telemetry.prefault({}),
    listeners: z.array(Listener).min(1),
    clusters: z.array(Cluster).default([]),
    /** This proxy's mesh identity and what mTLS handshakes accept (mtls-schema.ts); no mTLS when absent. */
    mtls: MeshTls.optional(),
    /** On SIGTERM, how long requests in flight may take before connections are cut. */
    drainTimeoutMs: Millis.default(10_000),
  })
  .superRefine((cfg, ctx) => {
    const clusters = new Set<string>();
    cfg.clusters.forEach((c, i) => {
      if (clusters.has(c.name))
        ctx.addIssue({ code: 'custom', message: `duplicate cluster name '${c.name}'`, path: ['clusters', i, 'name'] });
      clusters.add(c.name);
    });
    // A captured destination must name one cluster: an address claimed twice is an error, not a first-wins.
    const claimed = new Map<string, string>();
    cfg.clusters.forEach((c, i) => {
      c.serviceAddresses?.forEach((a, ai) => {
        const key = originalDstKey(a);
        const owner = claimed.get(key);
        if (owner !== undefined && owner !== c.name)
          ctx.addIssue({
            code: 'custom',
            message: `${a} is already a service address of cluster '${owner}'`,
            path: ['clusters', i, 'serviceAddresses', ai],
          });
        claimed.set(key, c.name);
      });
    });
    const names = new Set<string>();
    cfg.listeners.forEach((l, li) => {
      if (names.has(l.name))
        ctx.addIssue({
          code: 'custom',
          message: `duplicate listener name '${l.name}'`,
          path: ['listeners', li, 'name'],
        });
      names.add(l.name);
      for (const issue of authorizationPlacementIssues(l))
        ctx.addIssue({ code: 'custom', message: issue.message, path: ['listeners', li, ...issue.path] });
      if (l.cluster !== undefined && !clusters.has(l.cluster))
        ctx.addIssue({ code: 'custom', message: `unknown cluster '${l.cluster}'`, path: ['listeners', li, 'cluster'] });
      l.routes.forEach((r, ri) => {
        if (r.cluster !== undefined && !clusters.has(r.cluster))
          ctx.addIssue({
            code: 'custom',
            message: `unknown cluster '${r.cluster}'`,
            path: ['listeners', li, 'routes', ri, 'cluster'],
          });
        if (r.mirror !== undefined && !clusters.has(r.mirror.cluster))
          ctx.addIssue({
            code: 'custom',
            message: `unknown cluster '${r.mirror.cluster}'`,
            path: ['listeners', li, 'routes', ri, 'mirror', 'cluster'],
          });
        r.weightedClusters?.forEach((w, wi) => {
          if (!clusters.has(w.cluster))
            ctx.addIssue({
              code: 'custom',
              message: `unknown cluster '${w.cluster}'`,
              path: ['listeners', li, 'routes', ri, 'weightedClusters', wi, 'cluster'],
            });
        });
      });
    });
    if (cfg.mtls === undefined)
      cfg.clusters.forEach((c, ci) => {
        if (c.mtls.mode === 'always')
          ctx.addIssue({
            code: 'custom',
            message: 'mode always needs the top-level mtls block (the mesh identity)',
            path: ['clusters', ci, 'mtls', 'mode'],
          });
      });
    if (cfg.mtls === undefined)
      cfg.listeners.forEach((l, li) => {
        if (l.mtls !== 'disabled')
          ctx.addIssue({
            code: 'custom',
            message: `mtls ${l.mtls} needs the top-level mtls block (the mesh identity)`,
            path: ['listeners', li, 'mtls'],
          });
      });
    const addresses: ConfigAddress[] = cfg.listeners.map((l, li) => ({
      path: ['listeners', li, 'address'],
      owner: `listeners[${li}] ('${l.name}')`,
      address: l.address,
    }));
    if (cfg.admin !== undefined)
      addresses.push({ path: ['admin', 'address'], owner: 'admin', address: cfg.admin.address });
    for (const c of addressConflicts(addresses)) ctx.addIssue({ code: 'custom', message: c.message, path: c.path });
  });

export type Config = z.infer<typeof Config>;
export type ConfigInput = z.input<typeof Config>;
export type TelemetryConfig = z.infer<typeof Telemetry>;
export type TracingConfig = z.infer<typeof Tracing>;
export type AccessLogConfig = z.infer<typeof AccessLog>;
export type ListenerConfig = z.infer<typeof Listener>;
export type RouteConfig = z.infer<typeof Route>;
export type ClusterConfig = z.infer<typeof Cluster>;
export type DiscoveryConfig = z.infer<typeof Discovery>;
export type LoadBalancingConfig = z.infer<typeof LoadBalancing>;
export type HashPolicyConfig = z.infer<typeof HashPolicy>;
export type MtlsConfig = z.infer<typeof MeshTls>;
export type StaticEndpointConfig = z.infer<typeof StaticEndpoint>;
