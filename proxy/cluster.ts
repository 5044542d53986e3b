// A cluster at run time: its discovery source, the current endpoints with their connection pools, and the
// load balancer that picks among them. Endpoint changes rebuild the balancer's tables, keep the pools of
// endpoints that stay, and let requests in flight to removed endpoints finish.
import type { MeshIdentity } from './mtls/identity.ts';
import { compilePatterns } from '../src/identity/patterns.ts';
import type { UpstreamMtls } from './mtls/upstream.ts';
import type { EndpointBreakerConfig } from '../src/config/breaker-schema.ts';
import type { ClusterConfig, HashPolicyConfig } from '../src/config/schema.ts';
import { createDiscoverySource } from '../src/discovery/registry.ts';
import type { DiscoveredEndpoint, DiscoverySource } from '../src/discovery/types.ts';
import { createLoadBalancer } from '../src/lb/registry.ts';
import type { LbEndpoint, LoadBalancer, PickContext } from '../src/lb/types.ts';
import { CheckRecord } from '../src/resilience/health.ts';
import { OutlierRecord } from '../src/resilience/outlier.ts';
import { ClusterHealth, type HealthEvent } from './cluster-health.ts';
import { type BreakerState, EndpointBreaker } from '../src/resilience/breaker.ts';
import { ClusterLimits, type Threshold } from '../src/resilience/cluster-limits.ts';
import { RetryBudget } from '../src/resilience/retry.ts';
import { H1Pool } from './upstream/h1-pool.ts';
import { H2Pool, type Http2Refusal } from './upstream/h2-pool.ts';
import type { EndpointPool, Exchange, OutboundRequest, PoolOptions, ResponseSink } from './upstream/types.ts';
import type { OriginalDst } from './original-dst.ts';

export type UpstreamProtocol = 'http1' | 'http2';

/**
 * `protocol: auto`: how long an endpoint that refused HTTP/2 gets HTTP/1.1 before HTTP/2 is tried again (an
 * app redeployed behind the same address may have learned h2c). One refused preface per endpoint per window.
 */
export const HTTP2_REPROBE_MS = 5 * 60_000;

/** What the pools of a cluster's endpoints report, for the skein_upstream_* counters. */
export type UpstreamEvent = 'keepalive-retry' | 'protocol-downgrade';

export class Endpoint implements LbEndpoint, Http2Refusal {
  readonly id: string;
  readonly host: string;
  readonly port: number;
  weight: number;
  labels: Readonly<Record<string, string>>;
  active = 0;
  requestsTotal = 0;
  failuresTotal = 0;
  /** Active health checks' run of results (cluster-health.ts); healthy when the cluster checks nothing. */
  readonly check = new CheckRecord();
  /** Outlier detection's counts and ejection (cluster-health.ts). */
  readonly outlier = new OutlierRecord();
  /** The endpoint's circuit breaker (the cluster's `circuitBreakers.endpoint`); null when none is configured. */
  breaker: EndpointBreaker | null = null;
  private h1: H1Pool | null = null;
  private h2: H2Pool | null = null;
  private readonly poolOptions: PoolOptions;
  /** `protocol: auto`: until then (performance.now() ms) the endpoint gets HTTP/1.1, as it refused HTTP/2; 0: none. */
  private http1OnlyUntilMs = 0;
  /** `protocol: auto` clusters only (null otherwise): learning what the endpoint speaks, and whom to tell. */
  private readonly learning: { readonly onDowngrade?: () => void } | null;

  constructor(
    d: DiscoveredEndpoint,
    poolOptions: Omit<PoolOptions, 'host' | 'port'>,
    learning: { readonly onDowngrade?: () => void } | null = null,
  ) {
    this.host = d.host;
    this.port = d.port;
    this.id = endpointId(d.host, d.port);
    this.weight = d.weight;
    this.labels = d.labels;
    this.poolOptions = { ...poolOptions, host: d.host, port: d.port };
    this.learning = learning;
  }

  /** mTLS to this endpoint (the cluster's `mtls` and its labels decide), or null: plaintext. */
  get mtls(): UpstreamMtls | null {
    return this.poolOptions.mtls ?? null;
  }

  pool(protocol: UpstreamProtocol): EndpointPool {
    if (protocol === 'http1') return (this.h1 ??= new H1Pool(this.poolOptions));
    return (this.h2 ??= new H2Pool(this.poolOptions, this.learning === null ? null : this));
  }

  /** `protocol: auto`: HTTP/2 may be tried, i.e. the endpoint has not refused it within HTTP2_REPROBE_MS. */
  speaksHttp2(nowMs: number): boolean {
    const until = this.http1OnlyUntilMs;
    if (until === 0) return true;
    if (nowMs < until) return false;
    this.http1OnlyUntilMs = 0; // re-probe: the next request tries HTTP/2 again
    return true;
  }

  /** For /clusters: the endpoint refused HTTP/2 and gets HTTP/1.1 until the next probe. */
  get refusesHttp2(): boolean {
    return this.http1OnlyUntilMs !== 0 && performance.now() < this.http1OnlyUntilMs;
  }

  /** Http2Refusal: the endpoint answered the h2c preface with something else (or closed); counted once. */
  refusedHttp2(_reason: string): void {
    const now = performance.now();
    if (!this.speaksHttp2(now)) return; // already known (a gRPC request tried anyway)
    this.http1OnlyUntilMs = now + HTTP2_REPROBE_MS;
    this.learning?.onDowngrade?.();
  }

  /** Http2Refusal: a request the refused session held, sent over HTTP/1.1; nothing of it was sent before. */
  requestOverHttp1(req: OutboundRequest, sink: ResponseSink): Exchange {
    req.attempts++;
    return this.pool('http1').request(req, sink);
  }

  get connectionCount(): number {
    return (this.h1?.connectionCount ?? 0) + (this.h2?.connectionCount ?? 0);
  }

  close(): void {
    this.h1?.close();
    this.h2?.close();
  }
}

function describeBreaker(b: EndpointBreaker, now: number): object {
  const state = b.state(now);
  return { state, openForMs: b.remainingOpenMs(now), timesOpened: b.opened, window: b.window(now) };
}

export function endpointId(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Where a consistent-hash key comes from, read off the request by the proxy. */
export interface HashKeySource {
  header(name: string): string | undefined;
  readonly remoteAddress: string;
  /** Set by the pick when the endpoint's breaker is half-open: the probe token to report its outcome with
   *  (EndpointBreaker.record); NOT_A_PROBE (-1) otherwise. The breaker stage reads it (stages/breaker.ts). */
  breakerProbe?: number;
  /** Endpoints this request's earlier attempts went to: the pick prefers any other (null: first attempt). */
  readonly triedEndpoints?: readonly Endpoint[] | null;
  /** Where the client was going before `skein redirect` sent it to the proxy: an original-dst cluster's endpoint. */
  readonly originalDst?: OriginalDst | null;
}

/** How often an original-dst cluster forgets the destinations that have no request and no connection left. */
export const ORIGINAL_DST_SWEEP_MS = 30_000;

function compileHashKey(policy: HashPolicyConfig | undefined): ((req: HashKeySource) => string | undefined) | null {
  if (policy === undefined) return null;
  if ('header' in policy) {
    const name = policy.header;
    return (req) => req.header(name);
  }
  if ('cookie' in policy) {
    const prefix = `${policy.cookie}=`;
    return (req) => {
      const cookie = req.header('cookie');
      if (cookie === undefined) return undefined;
      for (const part of cookie.split(';')) {
        const p = part.trim();
        if (p.startsWith(prefix)) return p.slice(prefix.length);
      }
      return undefined;
    };
  }
  return (req) => req.remoteAddress;
}

export interface ClusterLog {
  warn(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
}

export class Cluster {
  readonly name: string;
  readonly service: string;
  readonly config: ClusterConfig;
  readonly key: string;
  readonly protocol: ClusterConfig['protocol'];
  private endpoints: Endpoint[] = [];
  private readonly byId = new Map<string, Endpoint>();
  private readonly lb: LoadBalancer;
  /** Which endpoints the balancer gets (active checks, outlier ejections, panic); feeds it on every change. */
  readonly health: ClusterHealth<Endpoint>;
  private readonly discovery: DiscoverySource;
  private readonly hashKey: ((req: HashKeySource) => string | undefined) | null;
  private readonly pickCtx: PickContext = { hashKey: undefined };
  private readonly poolOptions: Omit<PoolOptions, 'host' | 'port'>;
  /** mTLS for the endpoints that get it (null: the proxy has no identity, or the cluster says never). */
  private readonly upstreamMtls: UpstreamMtls | null;
  private readonly mtlsAlways: boolean;
  private readonly learning: { readonly onDowngrade?: () => void } | null;
  lastDiscoveryError: string | null = null;
  /** The discovery source has answered once (endpoints or an error): until then the proxy is not ready. */
  warmed = false;
  private readonly log: ClusterLog;
  /** start() has run: discovery and health checks are live. */
  private running = false;
  private closed = false;
  /** Circuit-breaking thresholds and their counts (connections, pending, requests, retries); the retry stage
   *  asks `limits.tryStartRetry()` before a retry and calls `limits.endRetry()` when it ends. */
  readonly limits: ClusterLimits;
  /** How many retries the cluster's requests may add (Linkerd's budget; the retry stage deposits and
   *  withdraws). On the cluster, so a reload that keeps the cluster keeps its window. */
  readonly retryBudget: RetryBudget;
  /** `circuitBreakers.endpoint`, or null: endpoints have no breaker. */
  private readonly endpointBreaker: EndpointBreakerConfig | null;
  /** Endpoints whose breaker is open or half-open: when 0 (the usual case) the pick checks none. */
  breakersNotClosed = 0;
  /** `discovery: { type: original-dst }`: endpoints are the requests' original destinations (the host replaced
   *  by `host` when set), made at the pick and swept once idle; null for every other cluster. */
  private readonly originalDst: { readonly host: string | undefined; sweeper: NodeJS.Timeout | null } | null;

  constructor(
    config: ClusterConfig,
    key: string,
    opts: {
      baseDir: string;
      log: ClusterLog;
      onUpstreamConnection?: (cluster: string, delta: 1 | -1) => void;
      onUpstreamEvent?: (cluster: string, event: UpstreamEvent) => void;
      onHealthEvent?: (cluster: Cluster, event: HealthEvent) => void;
      /** A request refused by one of the cluster's circuit-breaking thresholds (skein_upstream_overflow_total). */
      onOverflow?: (cluster: string, threshold: Threshold) => void;
      /** The proxy's mesh identity, when it has one: the cluster's `mtls` decides which endpoints get it. */
      mtls?: { identity: MeshIdentity; report: (cluster: string, result: string, detail: string) => void } | null;
    },
  ) {
    this.config = config;
    this.key = key;
    this.name = config.name;
    this.service = config.service ?? config.name;
    this.protocol = config.protocol;
    this.lb = createLoadBalancer(config.lb.policy, { tableSize: config.lb.tableSize });
    const onHealthEvent = opts.onHealthEvent;
    this.health = new ClusterHealth(config, this.lb, opts.log, (event) => onHealthEvent?.(this, event));
    this.hashKey = config.lb.policy === 'consistent-hash' ? compileHashKey(config.lb.hash) : null;
    const cb = config.circuitBreakers;
    this.limits = new ClusterLimits(cb, opts.onOverflow && ((threshold) => opts.onOverflow!(config.name, threshold)));
    this.endpointBreaker = cb.endpoint ?? null;
    this.retryBudget = new RetryBudget(config.retryBudget);
    this.poolOptions = {
      limits: this.limits,
      connectTimeoutMs: config.timeouts.connectMs,
      idleTimeoutMs: config.timeouts.idleMs,
      maxIdle: config.maxIdlePerEndpoint,
      onConnection: opts.onUpstreamConnection && ((delta) => opts.onUpstreamConnection!(config.name, delta)),
      onKeepAliveRetry: opts.onUpstreamEvent && (() => opts.onUpstreamEvent!(config.name, 'keepalive-retry')),
    };
    const m = opts.mtls ?? null;
    const mode = config.mtls.mode;
    const serverIds = config.mtls.serverIds;
    this.upstreamMtls =
      m === null || mode === 'never'
        ? null
        : {
            identity: m.identity,
            expected: serverIds === undefined ? null : compilePatterns(serverIds),
            report: (result, detail) => m.report(config.name, result, detail),
          };
    this.mtlsAlways = mode === 'always';
    this.learning =
      config.protocol !== 'auto'
        ? null
        : { onDowngrade: opts.onUpstreamEvent && (() => opts.onUpstreamEvent!(config.name, 'protocol-downgrade')) };
    // Building the source opens nothing (registry.ts): discovery begins in start(), so compiling does no I/O.
    this.discovery = createDiscoverySource(config.discovery, { baseDir: opts.baseDir });
    this.log = opts.log;
    this.originalDst = config.discovery.type === 'original-dst' ? { host: config.discovery.host, sweeper: null } : null;
  }

  get requestTimeoutMs(): number {
    return this.config.timeouts.requestMs;
  }

  private setEndpoints(list: readonly DiscoveredEndpoint[]): void {
    const next: Endpoint[] = [];
    const seen = new Set<string>();
    for (const d of list) {
      const id = endpointId(d.host, d.port);
      if (seen.has(id)) continue;
      seen.add(id);
      let ep = this.byId.get(id);
      if (ep === undefined) {
        // mTLS: always, or (auto) to the endpoints in the mesh, which control labels `mesh: "true"`.
        const mtls = this.mtlsAlways || d.labels.mesh === 'true' ? this.upstreamMtls : null;
        ep = new Endpoint(d, mtls === null ? this.poolOptions : { ...this.poolOptions, mtls }, this.learning);
        if (this.endpointBreaker !== null)
          ep.breaker = new EndpointBreaker(this.endpointBreaker, () => this.countBreakers());
        this.byId.set(id, ep);
      } else {
        ep.weight = d.weight;
        ep.labels = d.labels;
      }
      next.push(ep);
    }
    for (const [id, ep] of this.byId) {
      if (!seen.has(id)) {
        this.byId.delete(id);
        ep.close(); // idle connections now; busy ones finish their request first
      }
    }
    this.endpoints = next;
    this.health.setEndpoints(next);
    if (this.endpointBreaker !== null) this.countBreakers();
  }

  /** An endpoint breaker changed state (or the endpoints changed): recount. */
  private countBreakers(): void {
    let n = 0;
    for (const ep of this.endpoints) if (ep.breaker !== null && !ep.breaker.closed) n++;
    this.breakersNotClosed = n;
  }

  /**
   * The cluster refuses requests now (service_mesh_circuit_breaker_open, read at each scrape): a threshold is
   * reached (maxRequests, or maxConnections with maxPendingRequests waiting), as Envoy's *_open gauges say it, or
   * an endpoint's breaker is open or half-open.
   */
  get circuitOpen(): boolean {
    const l = this.limits;
    return (
      this.breakersNotClosed !== 0 ||
      l.requests >= l.maxRequests ||
      (l.connections >= l.maxConnections && l.pending >= l.maxPendingRequests)
    );
  }

  /**
   * The LB pick for one request; undefined when the cluster has no endpoint (or, with endpoint breakers, none
   * that lets a request through). An endpoint whose breaker is open, or that an earlier attempt of the request
   * went to, is skipped: the balancer is asked again (up to once per endpoint), then the endpoints are scanned
   * in order; when every endpoint was tried, one that admits the request is taken again. A half-open one gives
   * a probe slot, whose token goes to `req.breakerProbe`.
   */
  pick(req: HashKeySource): Endpoint | undefined {
    if (this.originalDst !== null) return this.pickOriginalDst(req);
    const ctx = this.pickCtx;
    ctx.hashKey = this.hashKey === null ? undefined : this.hashKey(req);
    const ep = this.lb.pick(ctx) as Endpoint | undefined;
    if (ep === undefined || (this.breakersNotClosed === 0 && (req.triedEndpoints ?? null) === null)) return ep;
    return this.pickAdmitted(ep, req);
  }

  /**
   * Envoy's ORIGINAL_DST cluster: the endpoint is where the client was going (its pools kept per destination, so
   * keep-alive works as for any endpoint); no balancer, health checks or endpoint breakers (there is one endpoint
   * per destination); the cluster's thresholds and timeouts apply. A request without one (a listener without
   * `originalDst`, or a connection that was not redirected) has no endpoint: UH.
   */
  private pickOriginalDst(req: HashKeySource): Endpoint | undefined {
    const dst = req.originalDst;
    if (dst === undefined || dst === null) return undefined;
    const override = this.originalDst!.host;
    const host = override ?? dst.host;
    // The key is already "ip:port" / "[v6]:port", endpointId's form: no string built per request.
    const id = override === undefined ? dst.key : endpointId(host, dst.port);
    let ep = this.byId.get(id);
    if (ep === undefined) {
      // mTLS only with `mtls: always`: a destination nobody claimed is not known to be in the mesh (auto's test).
      const mtls = this.mtlsAlways ? this.upstreamMtls : null;
      const options = mtls === null ? this.poolOptions : { ...this.poolOptions, mtls };
      ep = new Endpoint({ host, port: dst.port, weight: 1, labels: {} }, options, this.learning);
      this.byId.set(id, ep);
    }
    return ep;
  }

  /** Forget original destinations with nothing in flight and no connection (their pools hold none). */
  private sweepOriginalDst(): void {
    for (const [id, ep] of this.byId) {
      if (ep.active === 0 && ep.connectionCount === 0) {
        this.byId.delete(id);
        ep.close();
      }
    }
  }

  private pickAdmitted(first: Endpoint, req: HashKeySource): Endpoint | undefined {
    const now = performance.now();
    const tried = req.triedEndpoints ?? null;
    const fresh = (e: Endpoint) => tried === null || !tried.includes(e);
    const admits = (e: Endpoint) => e.breaker === null || e.breaker.admits(now);
    let ep: Endpoint | undefined = first;
    // Only among the endpoints in rotation: an unhealthy or ejected one is no fallback for an open breaker.
    const rotation = this.health.inRotation;
    for (let i = 0; i < rotation.length && ep !== undefined; i++) {
      if (fresh(ep) && admits(ep)) return this.admit(ep, req, now);
      ep = this.lb.pick(this.pickCtx) as Endpoint | undefined;
    }
    for (const e of rotation) if (fresh(e) && admits(e)) return this.admit(e, req, now);
    if (tried === null) return undefined;
    // Every endpoint in rotation was tried: the balancer's first choice again, or any that admits it.
    if (admits(first)) return this.admit(first, req, now);
    for (const e of rotation) if (admits(e)) return this.admit(e, req, now);
    return undefined;
  }

  private admit(ep: Endpoint, req: HashKeySource, now: number): Endpoint {
    if (ep.breaker !== null) req.breakerProbe = ep.breaker.admit(now);
    return ep;
  }

  /** Some endpoint lets a request through now (asked only while some breaker is open or half-open). */
  admitsAny(): boolean {
    const rotation = this.health.inRotation;
    const now = performance.now();
    for (const ep of rotation) if (ep.breaker === null || ep.breaker.admits(now)) return true;
    return false;
  }

  /** Endpoint breaker states, for the skein_circuit_breaker_state gauge (empty without endpoint breakers). */
  *breakerStates(): Iterable<[endpoint: string, state: BreakerState]> {
    if (this.endpointBreaker === null) return;
    const now = performance.now();
    for (const ep of this.endpoints) if (ep.breaker !== null) yield [ep.id, ep.breaker.state(now)];
  }

  get hasEndpointBreakers(): boolean {
    return this.endpointBreaker !== null;
  }

  describe(): object {
    const now = performance.now();
    return {
      name: this.name,
      service: this.service,
      protocol: this.protocol,
      lb: this.config.lb.policy,
      discovery: this.config.discovery.type,
      warmed: this.warmed,
      discoveryError: this.lastDiscoveryError,
      healthyEndpoints: this.health.healthyCount,
      panic: this.health.panic,
      circuitBreakers: this.describeLimits(),
      retryBudget: this.retryBudget.describe(now),
      endpoints: (this.originalDst === null ? this.endpoints : [...this.byId.values()]).map((e) => ({
        address: e.id,
        weight: e.weight,
        labels: e.labels,
        ...this.health.describe(e),
        activeRequests: e.active,
        requestsTotal: e.requestsTotal,
        failuresTotal: e.failuresTotal,
        connections: e.connectionCount,
        refusesHttp2: e.refusesHttp2,
        breaker: e.breaker === null ? null : describeBreaker(e.breaker, now),
      })),
    };
  }

  private describeLimits(): object {
    const l = this.limits;
    return {
      connections: l.connections,
      maxConnections: l.maxConnections,
      pendingRequests: l.pending,
      maxPendingRequests: l.maxPendingRequests,
      requests: l.requests,
      maxRequests: l.maxRequests,
      retries: l.retries,
      maxRetries: l.maxRetries,
      overflows: { ...l.overflows },
    };
  }

  /** start() has run (and close() has not): discovery, health checks and the outlier sweep are live. */
  get started(): boolean {
    return this.running;
  }

  /**
   * Starts what runs in the background once the cluster serves: discovery (static sources answer within this
   * call), its health checks and the outlier sweep. The constructor does none of it, so compiling a config does
   * no I/O; the server starts the clusters a new Snapshot created just before it swaps to it. Idempotent.
   */
  start(): void {
    if (this.running || this.closed) return;
    this.running = true;
    this.discovery.start({
      onEndpoints: (list) => {
        this.warmed = true;
        this.lastDiscoveryError = null;
        this.setEndpoints(list);
      },
      onError: (err) => {
        this.warmed = true;
        this.lastDiscoveryError = err.message;
        this.log.warn('discovery failed; keeping the previous endpoints', { cluster: this.name, error: err.message });
      },
    });
    this.health.start();
    if (this.originalDst !== null) {
      this.originalDst.sweeper = setInterval(() => this.sweepOriginalDst(), ORIGINAL_DST_SWEEP_MS);
      this.originalDst.sweeper.unref();
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.running = false;
    this.health.close();
    this.discovery.close();
    for (const ep of this.endpoints) ep.close();
    if (this.originalDst !== null) {
      if (this.originalDst.sweeper !== null) clearInterval(this.originalDst.sweeper);
      for (const ep of this.byId.values()) ep.close();
      this.byId.clear();
    }
  }
}
