// The proxies the benchmarks put between the load generator and the origin, and how to start each one listening
// on `port` and forwarding to the origin: configs for nginx and HAProxy, argv for the Node targets, skein's CLI
// (plain, with the full telemetry chain, or with every resilience stage configured: skein-full.ts; two proxies with
// or without mTLS between them: skein-mesh.ts; nginx terminating TLS: nginx-tls.ts) or a custom command. `skein bench` starts them before the nginx origin (HTTP/1.1) or the Node multi-protocol origin (h2c,
// gRPC, WebSocket too).
import { existsSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, dirname, join } from 'node:path';
import type { LoadProtocol } from '../load/types.ts';
import type { HandshakeCounter } from './handshakes.ts';
import { BENCH_TLS_SERVERNAME, type BenchCerts } from './mesh-certs.ts';
import { NGINX_STATUS_PATH, nginxTlsConfig } from './nginx-tls.ts';
import { redisServerArgv, redisServerMissing } from './redis.ts';
import { SKEIN_FULL_HEALTH_INTERVAL_MS, SKEIN_FULL_RATE_PER_S, skeinFullConfig } from './skein-full.ts';
import { SKEIN_MESH_CMD, type SkeinMeshTarget, skeinMeshConfigs, skeinMeshDescription } from './skein-mesh.ts';
import { skeinMetricsOffConfig, skeinTelemetryConfig, type TelemetrySinks } from './skein-telemetry.ts';

/** Every local target `skein bench` knows, in its default visiting order. */
export const LOCAL_TARGET_NAMES = [
  'direct',
  'skein',
  'skein-telemetry',
  'skein-pair',
  'skein-mtls',
  'skein-mtls-handshake',
  'skein-full',
  'skein-full-global',
  'nginx',
  'nginx-tls',
  'haproxy',
  'http-proxy',
  'naive-undici',
  'skein-no-metrics',
  'skein-baseline',
] as const;
export type LocalTargetName = (typeof LOCAL_TARGET_NAMES)[number];

/** The targets that need the run's certificates (mesh-certs.ts) made before they start. */
export function needsCerts(name: LocalTargetName): boolean {
  return name === 'skein-mtls' || name === 'skein-mtls-handshake' || name === 'nginx-tls';
}

export function isLocalTargetName(s: string): s is LocalTargetName {
  return (LOCAL_TARGET_NAMES as readonly string[]).includes(s);
}

/** nginx: an nginx origin, HTTP/1.1 only. node: `skein bench origin` (h1, h2c, gRPC echo, WebSocket echo). */
export type OriginKind = 'nginx' | 'node';

const ALL_PROTOCOLS: readonly LoadProtocol[] = ['http1', 'http2', 'grpc-unary', 'grpc-server-stream', 'websocket'];

/** The protocols a target can forward; a scenario of any other protocol has no figures for it. */
export function targetProtocols(name: LocalTargetName): readonly LoadProtocol[] {
  switch (name) {
    case 'http-proxy':
      return ['http1', 'websocket'];
    case 'naive-undici':
    case 'nginx-tls': // TLS on HTTP/1.1 only: the h2 scenarios' nginx needs a listener of its own
    case 'skein-mtls-handshake': // maxIdlePerEndpoint is HTTP/1.1's: an h2 session between the proxies stays open
      return ['http1'];
    default:
      return ALL_PROTOCOLS;
  }
}

export interface TargetContext {
  readonly port: number;
  readonly originPort: number;
  /** Where configs and logs are written. */
  readonly runDir: string;
  /** The repository root (bin/skein.js, bench/targets/). */
  readonly projectDir: string;
  /** The Node binary running the harness; the Node targets run on the same one. */
  readonly nodePath: string;
  /** Shell command overriding how skein starts; `$PORT` and `$ORIGIN_PORT` are in its environment. */
  readonly skeinCmd?: string;
  /** skein-baseline: shell command starting another build of skein (`--baseline-cmd`); same environment. */
  readonly baselineCmd?: string;
  /** How long skein may take to answer 200. */
  readonly skeinReadyTimeoutMs: number;
  /** Which origin the target forwards to (default nginx). */
  readonly origin?: OriginKind;
  /** A second listen port for the targets that need a separate h2c listener (nginx, HAProxy) before the Node origin. */
  readonly h2Port?: number;
  /** skein-telemetry: where its admin listener, OTLP endpoint and access log are. */
  readonly telemetry?: TelemetrySinks;
  /** skein-full and skein-full-global: their admin listener (/clusters, /metrics). */
  readonly adminPort?: number;
  /** skein-full-global: where the redis-server started for it listens. */
  readonly redisPort?: number;
  /** skein-pair, skein-mtls*: the inbound proxy's listener (the outbound one is `port`; its admin is adminPort). */
  readonly peerPort?: number;
  /** skein-mtls*, nginx-tls: the run's CA and certificates. */
  readonly certs?: BenchCerts;
}

/** A process a target needs running before it starts (skein-full-global's redis-server), stopped after it. */
export interface CompanionProcess {
  readonly name: string;
  readonly argv: readonly string[];
  /** Ready when a Redis PING on this 127.0.0.1 port answers PONG. */
  readonly redisPort: number;
  readonly readyTimeoutMs: number;
}

export type TargetPlan =
  /** No proxy: the generator talks to the origin itself. */
  | { readonly kind: 'origin' }
  | {
      readonly kind: 'process';
      readonly argv: readonly string[];
      readonly env?: NodeJS.ProcessEnv;
      readonly cwd?: string;
      readonly readyTimeoutMs: number;
      /** One line for the report: what exactly runs. */
      readonly description: string;
      /** Where h2c and gRPC are served when not on `port` (nginx and HAProxy need a listener of their own). */
      readonly h2Port?: number;
      /** Started (and ready) before the target, stopped after it; not pinned to the proxy's CPU. */
      readonly companions?: readonly CompanionProcess[];
      /** The target listens with TLS on `port`: the generator trusts `caFile` and checks `servername`. */
      readonly tls?: { readonly caFile: string; readonly servername: string };
      /** Where the target counts its TLS handshakes, read before and after every measured run. */
      readonly handshakes?: HandshakeCounter;
    }
  | { readonly kind: 'skip'; readonly reason: string };

const NGINX_HEAD = (ctx: Pick<TargetContext, 'runDir'>) => `worker_processes 1;
daemon off;
pid ${join(ctx.runDir, 'nginx-proxy.pid')};
error_log ${join(ctx.runDir, 'nginx-proxy.err')} warn;
events { worker_connections 4096; }`;

const NGINX_UPSTREAM = (originPort: number) => `  upstream origin {
    server 127.0.0.1:${originPort};
    keepalive 128;                # idle upstream connections kept by the worker
    keepalive_requests 1000000;
    keepalive_timeout 300s;
  }`;

export function nginxProxyConfig(ctx: Pick<TargetContext, 'port' | 'originPort' | 'runDir'>): string {
  return `# nginx as reverse proxy: one worker, HTTP/1.1 keep-alive pool to the origin.
${NGINX_HEAD(ctx)}
http {
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 300s;
${NGINX_UPSTREAM(ctx.originPort)}
  server {
    listen 127.0.0.1:${ctx.port} backlog=4096;
    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;     # keep-alive upstream needs 1.1 and an empty Connection header
      proxy_set_header Connection "";
    }
  }
}
`;
}

/**
 * nginx before the Node origin: HTTP/1.1 and WebSocket on `port`; h2c on `h2Port` (plaintext HTTP/2 in nginx is a
 * listener of its own), gRPC there passed on over h2c with grpc_pass, other h2 requests over HTTP/1.1 keep-alive.
 */
export function nginxMultiProtocolConfig(
  ctx: Pick<TargetContext, 'port' | 'originPort' | 'runDir'> & { readonly h2Port: number },
): string {
  const h1Location = `      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;   # empty unless upgrading: keeps the upstream alive`;
  return `# nginx as reverse proxy before the multi-protocol origin: one worker, keep-alive pools, gRPC over h2c.
${NGINX_HEAD(ctx)}
http {
  access_log off;
  keepalive_requests 1000000;    # also HTTP/2 requests per connection (else a GOAWAY every 1000)
  keepalive_timeout 300s;
  proxy_read_timeout 300s;
  map $http_upgrade $connection_upgrade { default upgrade; '' ''; }
${NGINX_UPSTREAM(ctx.originPort)}
  server {
    listen 127.0.0.1:${ctx.port} backlog=4096;
    location / {
${h1Location}
    }
  }
  server {
    listen 127.0.0.1:${ctx.h2Port} http2 backlog=4096;
    location /skein.bench.Echo/ { grpc_pass grpc://origin; }
    location / {
${h1Location}
    }
  }
}
`;
}

const HAPROXY_HEAD = `global
  nbthread 1
  maxconn 4000
defaults
  mode http
  option http-keep-alive
  http-reuse always
  timeout connect 5s
  timeout client 300s
  timeout server 300s
  timeout tunnel 300s
  timeout http-keep-alive 300s`;

export function haproxyConfig(ctx: Pick<TargetContext, 'port' | 'originPort'> & { readonly h2Port?: number }): string {
  const h2 =
    ctx.h2Port === undefined
      ? ''
      : `
frontend fe_h2
  bind 127.0.0.1:${ctx.h2Port} proto h2
  default_backend be_h2
backend be_h2
  server origin 127.0.0.1:${ctx.originPort} proto h2
`;
  return `# HAProxy in HTTP mode: one thread, idle server connections shared between clients.
${HAPROXY_HEAD}
frontend fe
  bind 127.0.0.1:${ctx.port}
  default_backend be
backend be
  server origin 127.0.0.1:${ctx.originPort}
${h2}`;
}

// Through the executable's shebang, so the proxy runs with the Node flags it ships with.
const SKEIN_DEFAULT_CMD = 'exec bin/skein.js proxy --listen 127.0.0.1:$PORT --upstream 127.0.0.1:$ORIGIN_PORT';
const SKEIN_CONFIG_CMD = 'exec bin/skein.js proxy --config "$SKEIN_CONFIG"';

/** The skein command line as it will be (or would have been) run, for the report. */
export function skeinCommand(ctx: Pick<TargetContext, 'skeinCmd'>): string {
  return ctx.skeinCmd ?? SKEIN_DEFAULT_CMD;
}

/** Why a target cannot run on this machine at all, whatever the origin; undefined when it can. */
export function unavailableReason(name: LocalTargetName, projectDir: string): string | undefined {
  switch (name) {
    case 'skein-full-global':
      return redisServerMissing()?.concat(': skein-full-global keeps its global rate limit in a redis-server');
    case 'http-proxy':
      try {
        createRequire(join(projectDir, 'package.json')).resolve('http-proxy');
        return undefined;
      } catch {
        return 'the http-proxy package is not installed (a devDependency: production installs leave it out)';
      }
    default:
      return undefined;
  }
}

function skeinProcess(
  ctx: TargetContext,
  command: string,
  extraEnv: NodeJS.ProcessEnv,
  description: string,
): TargetPlan {
  if (ctx.skeinCmd === undefined && !existsSync(join(ctx.projectDir, 'bin/skein.js'))) {
    return { kind: 'skip', reason: 'bin/skein.js does not exist yet (use --skein-cmd to start skein another way)' };
  }
  // Through bash so a custom command can use $PORT/$ORIGIN_PORT; `node` resolves to the harness's own Node.
  return {
    kind: 'process',
    argv: ['bash', '-c', command],
    cwd: ctx.projectDir,
    env: {
      ...process.env,
      ...extraEnv,
      PORT: String(ctx.port),
      ORIGIN_PORT: String(ctx.originPort),
      PATH: `${dirname(ctx.nodePath)}${delimiter}${process.env.PATH ?? ''}`,
    },
    readyTimeoutMs: ctx.skeinReadyTimeoutMs,
    description,
  };
}

function nodeTarget(ctx: TargetContext, script: string, description: string): TargetPlan {
  return {
    kind: 'process',
    argv: [ctx.nodePath, join(ctx.projectDir, 'bench/targets', script), String(ctx.port), String(ctx.originPort)],
    cwd: ctx.projectDir,
    readyTimeoutMs: 10_000,
    description: `bench/targets/${script} on Node ${process.version}: ${description}`,
  };
}

export function planTarget(name: LocalTargetName, ctx: TargetContext): TargetPlan {
  const readyTimeoutMs = 10_000;
  const reason = unavailableReason(name, ctx.projectDir);
  if (reason !== undefined) return { kind: 'skip', reason };
  const nodeOrigin = ctx.origin === 'node';
  if (nodeOrigin && (name === 'nginx' || name === 'haproxy') && ctx.h2Port === undefined) {
    throw new Error(`${name} before the Node origin needs a second port (h2Port) for its h2c listener`);
  }
  switch (name) {
    case 'direct':
      return { kind: 'origin' };
    case 'nginx': {
      const conf = join(ctx.runDir, 'nginx-proxy.conf');
      const h2Port = nodeOrigin ? ctx.h2Port : undefined;
      writeFileSync(
        conf,
        h2Port === undefined ? nginxProxyConfig(ctx) : nginxMultiProtocolConfig({ ...ctx, h2Port: h2Port }),
      );
      return {
        kind: 'process',
        argv: ['nginx', '-p', ctx.runDir, '-e', join(ctx.runDir, 'nginx-proxy.err'), '-c', conf],
        readyTimeoutMs,
        h2Port,
        description:
          'nginx, worker_processes 1, proxy_pass to an upstream block with keepalive 128, proxy_http_version 1.1' +
          (h2Port === undefined ? '' : '; h2c listener of its own, gRPC by grpc_pass'),
      };
    }
    case 'haproxy': {
      const conf = join(ctx.runDir, 'haproxy.cfg');
      const h2Port = nodeOrigin ? ctx.h2Port : undefined;
      writeFileSync(conf, haproxyConfig({ ...ctx, h2Port }));
      return {
        kind: 'process',
        argv: ['haproxy', '-db', '-f', conf],
        readyTimeoutMs,
        h2Port,
        description:
          'HAProxy, mode http, nbthread 1, http-reuse always' +
          (h2Port === undefined ? '' : '; h2c frontend of its own with an h2 server line'),
      };
    }
    case 'naive-undici':
      return nodeTarget(ctx, 'naive-undici.ts', 'node:http server + undici Pool.request, headers copied per request');
    case 'http-proxy':
      return nodeTarget(ctx, 'http-proxy.ts', 'node:http server + the http-proxy package, keep-alive http.Agent');
    case 'skein':
      return skeinProcess(
        ctx,
        skeinCommand(ctx),
        {},
        `\`${skeinCommand(ctx)}\` (run with bash -c in the repository root)`,
      );
    case 'skein-telemetry': {
      if (ctx.telemetry === undefined) throw new Error('skein-telemetry needs its telemetry sinks (ctx.telemetry)');
      const file = join(ctx.runDir, 'skein-telemetry.yaml');
      writeFileSync(file, skeinTelemetryConfig({ port: ctx.port, originPort: ctx.originPort, ...ctx.telemetry }));
      return skeinProcess(
        ctx,
        SKEIN_CONFIG_CMD,
        { SKEIN_CONFIG: file },
        `\`bin/skein.js proxy --config skein-telemetry.yaml\`: metrics on, traces sampled 1% to a local OTLP sink, ` +
          'access log sampled 1% to a file, a header-match route before the catch-all',
      );
    }
    case 'skein-no-metrics': {
      const file = join(ctx.runDir, 'skein-no-metrics.yaml');
      writeFileSync(file, skeinMetricsOffConfig({ port: ctx.port, originPort: ctx.originPort }));
      return skeinProcess(
        ctx,
        SKEIN_CONFIG_CMD,
        { SKEIN_CONFIG: file },
        '`bin/skein.js proxy --config skein-no-metrics.yaml`: the plain target with telemetry.metrics.enabled false ' +
          '(what metrics cost: compare with skein)',
      );
    }
    case 'skein-baseline':
      if (ctx.baselineCmd === undefined)
        return { kind: 'skip', reason: 'skein-baseline runs the command given with --baseline-cmd, and none was' };
      return skeinProcess(
        { ...ctx, skeinCmd: ctx.baselineCmd },
        ctx.baselineCmd,
        {},
        `\`${ctx.baselineCmd}\` (--baseline-cmd: another build of skein, for before/after in one run)`,
      );
    case 'skein-full':
    case 'skein-full-global':
      return skeinFullTarget(name, ctx);
    case 'skein-pair':
    case 'skein-mtls':
    case 'skein-mtls-handshake':
      return skeinMeshTarget(name, ctx);
    case 'nginx-tls': {
      if (ctx.certs === undefined) throw new Error('nginx-tls needs the run’s certificates (ctx.certs)');
      if (ctx.adminPort === undefined) throw new Error('nginx-tls needs a port for its stub_status (ctx.adminPort)');
      const conf = join(ctx.runDir, 'nginx-tls.conf');
      const opts = { ...ctx, statusPort: ctx.adminPort, cert: ctx.certs.nginx };
      writeFileSync(conf, nginxTlsConfig(opts));
      return {
        kind: 'process',
        argv: ['nginx', '-p', ctx.runDir, '-e', join(ctx.runDir, 'nginx-tls.err'), '-c', conf],
        readyTimeoutMs,
        tls: { caFile: ctx.certs.bundleFile, servername: BENCH_TLS_SERVERNAME },
        handshakes: { kind: 'nginx-stub-status', port: ctx.adminPort, path: NGINX_STATUS_PATH },
        description:
          'nginx terminating TLS (TLS 1.2/1.3, ECDSA P-256 certificate from the run’s CA, no client certificate), ' +
          'worker_processes 1, proxy_pass to an upstream block with keepalive 128; handshakes from stub_status',
      };
    }
  }
}

function skeinMeshTarget(name: SkeinMeshTarget, ctx: TargetContext): TargetPlan {
  const { peerPort, adminPort } = ctx;
  if (peerPort === undefined || adminPort === undefined)
    throw new Error(`${name} needs ports for its inbound proxy (ctx.peerPort) and that proxy's admin (ctx.adminPort)`);
  const opts = { port: ctx.port, peerPort, adminPort, originPort: ctx.originPort, certs: ctx.certs };
  const configs = skeinMeshConfigs(name, opts);
  const outbound = join(ctx.runDir, `${name}-outbound.yaml`);
  const inbound = join(ctx.runDir, `${name}-inbound.yaml`);
  writeFileSync(outbound, configs.outbound);
  writeFileSync(inbound, configs.inbound);
  const plan = skeinProcess(
    ctx,
    SKEIN_MESH_CMD,
    { SKEIN_OUTBOUND_CONFIG: outbound, SKEIN_INBOUND_CONFIG: inbound },
    skeinMeshDescription(name, opts),
  );
  if (plan.kind !== 'process') return plan;
  return { ...plan, handshakes: { kind: 'skein-mtls', port: adminPort, path: '/metrics' } };
}

/** What skein-full configures, for the report: every resilience stage, each set so that the bench never trips it. */
function skeinFullStages(rateLimit: string): string {
  return (
    `active HTTP health checks (GET / every ${SKEIN_FULL_HEALTH_INTERVAL_MS / 1000} s), outlier detection ` +
    '(5 consecutive 5xx or gateway errors), circuit breakers (Envoy’s thresholds 1024/1024/1024/3) and the ' +
    'per-endpoint breaker (5 failures in a row or 50% of 20+ requests), retries on the route (Istio’s defaults: ' +
    `2 on connect-failure, refused-stream, reset, 503, unavailable), ${rateLimit}; no mTLS; none of them fires ` +
    "under the bench's load"
  );
}

function skeinFullTarget(name: 'skein-full' | 'skein-full-global', ctx: TargetContext): TargetPlan {
  if (ctx.adminPort === undefined) throw new Error(`${name} needs a port for its admin listener (ctx.adminPort)`);
  const rate = `${SKEIN_FULL_RATE_PER_S.toLocaleString('en-US')} req/s`;
  const file = join(ctx.runDir, `${name}.yaml`);
  const config = { port: ctx.port, originPort: ctx.originPort, adminPort: ctx.adminPort };
  const command = `\`bin/skein.js proxy --config ${name}.yaml\``;
  if (name === 'skein-full') {
    writeFileSync(file, skeinFullConfig(config));
    return skeinProcess(
      ctx,
      SKEIN_CONFIG_CMD,
      { SKEIN_CONFIG: file },
      `${command}: ${skeinFullStages(`a local rate limit of ${rate}`)}`,
    );
  }
  const redisPort = ctx.redisPort;
  if (redisPort === undefined) throw new Error('skein-full-global needs a port for its redis-server (ctx.redisPort)');
  writeFileSync(file, skeinFullConfig({ ...config, redisUrl: `redis://127.0.0.1:${redisPort}` }));
  const limit =
    `a global rate limit of ${rate} kept in a redis-server started for the run on 127.0.0.1:${redisPort} ` +
    '(failureMode closed: a Redis failure answers 429; redis-server runs beside the origin, its CPU is not in ' +
    'the proxy’s figures)';
  const plan = skeinProcess(ctx, SKEIN_CONFIG_CMD, { SKEIN_CONFIG: file }, `${command}: ${skeinFullStages(limit)}`);
  if (plan.kind !== 'process') return plan;
  const redis: CompanionProcess = {
    name: 'redis-server',
    argv: redisServerArgv(redisPort, ctx.runDir),
    redisPort,
    readyTimeoutMs: 10_000,
  };
  return { ...plan, companions: [redis] };
}
