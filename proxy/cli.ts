// `skein proxy`: start the data plane from a config file or the quick form (--listen/--upstream), reload on
// file change or SIGHUP (a bad file is rejected and the last good config keeps serving), drain on SIGTERM,
// and optionally fork --workers N processes that share the listen ports.
import { HTTP_PARSER } from './llhttp.ts';
import cluster from 'node:cluster';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { type ParseArgsOptionsConfig, parseArgs } from 'node:util';
import { ConfigError, loadConfigFile, parseConfig } from '../src/config/load.ts';
import { applyOverlay, type Overlay } from '../src/config/overlay.ts';
import { versionCounts } from '../src/canary/version-counts.ts';
import type { Config, ConfigInput } from '../src/config/schema.ts';
import { createLogger, type LogLevel } from '../src/log.ts';
import { describeClusters } from './admin.ts';
import { parseIntegerFlag } from './cli-number.ts';
import { ConfigWatcher } from './config-watch.ts';
import { ControlClient, loadKeptSnapshot } from './control-client.ts';
import { ProxyServer } from './server.ts';
import { identityFiles } from './mtls/files.ts';
import { policyOf } from './mtls/identity.ts';
import { CertificateIssuer } from './mtls/issuer.ts';
import { answerPrimaryGathers, SKEIN_WORKER_ENV, servePrimaryGathers } from './workers-gather.ts';

export const PROXY_HELP = `Usage: skein proxy [options]

Start the Skein sidecar proxy.

Config (one of):
  -c, --config FILE        YAML or JSON config (see README "Configuration"); reloaded when it, or a TLS
                           file it names, changes and on SIGHUP. A bad file is rejected; the last good
                           config keeps serving. --admin, --service and --drain-timeout-ms, when given,
                           override the file's values (on every reload too).
  --listen HOST:PORT       Quick form: one HTTP listener (HTTP/1.1, h2c, gRPC, WebSocket) routing
  --upstream HOST:PORT     everything to these endpoints (repeat for a round-robin cluster, with
                           passive outlier detection and retries: README "Health checks and outlier
                           detection", "Retries and timeouts").
  --tcp                    Quick form: make the listener raw TCP passthrough instead of HTTP.

Options:
  --admin HOST:PORT        Admin listener (/ready /live /config /clusters /listeners /certs /metrics).
  --service NAME           The local service's name (x-source-service on outbound requests).
  --control URL            Take traffic rules from \`skein control\` at URL (http://HOST:PORT): its snapshots go in
                           front of this config's outbound routes; a snapshot that does not apply is refused
                           and the running config stays. Control down: the last snapshot keeps serving.
  --node-id ID             This proxy's id in control's /proxies (default HOSTNAME/SERVICE/ADMIN-PORT or PID).
  --state-dir DIR          Where the running control snapshot is kept, so a restart while control is down
                           still serves it (default .skein/proxy).
  --stats-interval-ms MS   With --control: how often the per-version request counts that judge canaries are
                           reported to control (default 5000).
  --bootstrap-token-file F With --control and an \`mtls\` config: get this proxy's certificate from control,
                           authenticated by the token in F. The key is made here and never leaves the
                           process; the certificate is renewed at half its life.
  --spiffe-id ID           The identity to ask control for (default
                           spiffe://TRUST-DOMAIN/ns/default/sa/SERVICE).
  --mtls MODE              Quick form: the listener's mTLS, strict | permissive | disabled (default disabled).
  --upstream-mtls MODE     Quick form: calls to the upstreams, auto | always | never (default auto: mTLS to
                           endpoints labelled mesh=true). Either mTLS flag adds the mesh identity (\`mtls\`).
  --trust-domain TD        Quick form: the mesh's trust domain (default cluster.local).
  --direction DIR          Quick form: outbound (default) or inbound.
  --workers N              Worker processes sharing the listen ports (default 1).
  --drain-timeout-ms MS    On SIGTERM, how long requests in flight may take (default 10000).
  --log-level LEVEL        debug | info | warn | error (default info).
  --check                  Validate the config, print the result and exit (0 valid, 1 invalid).
  -h, --help               Show this help.

Signals: SIGHUP reloads the config file; SIGTERM/SIGINT drain and exit 0.`;

/** Config fields set by a flag; a reload of the file keeps them, and only them. */
export type ConfigOverrides = Pick<ConfigInput, 'admin' | 'service' | 'drainTimeoutMs'>;

interface ProxyArgs {
  configFile: string | undefined;
  /** --control: control's URL, or undefined. */
  control: string | undefined;
  nodeId: string | undefined;
  /** --bootstrap-token-file: get the mesh certificate from control with this token. */
  bootstrapTokenFile: string | undefined;
  spiffeId: string | undefined;
  stateDir: string;
  statsIntervalMs: number;
  config: Config;
  /** What the command line set (only flags actually given): applied over every version of the file. */
  overrides: ConfigOverrides;
  workers: number;
  logLevel: LogLevel;
  check: boolean;
}

/** Every option `skein proxy` accepts; PROXY_HELP describes each (a test holds the two together). */
export const PROXY_OPTIONS = {
  config: { type: 'string', short: 'c' },
  listen: { type: 'string' },
  upstream: { type: 'string', multiple: true },
  tcp: { type: 'boolean', default: false },
  admin: { type: 'string' },
  service: { type: 'string' },
  control: { type: 'string' },
  'node-id': { type: 'string' },
  'state-dir': { type: 'string', default: '.skein/proxy' },
  'stats-interval-ms': { type: 'string', default: '5000' },
  'bootstrap-token-file': { type: 'string' },
  'spiffe-id': { type: 'string' },
  mtls: { type: 'string' },
  'upstream-mtls': { type: 'string' },
  'trust-domain': { type: 'string' },
  direction: { type: 'string', default: 'outbound' },
  workers: { type: 'string', default: '1' },
  'drain-timeout-ms': { type: 'string' },
  'log-level': { type: 'string', default: 'info' },
  check: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const satisfies ParseArgsOptionsConfig;

/** Parse argv into a validated config. Throws ConfigError or a usage Error. */
export function parseProxyArgs(argv: string[]): ProxyArgs | 'help' {
  const { values } = parseArgs({ args: argv, options: PROXY_OPTIONS, strict: true, allowPositionals: false });
  if (values.help) return 'help';
  const workers = parseIntegerFlag(values.workers, {
    flag: '--workers',
    what: 'a number of worker processes',
    min: 1,
    max: 256,
  });
  const logLevel = values['log-level'] as LogLevel;
  if (!['debug', 'info', 'warn', 'error'].includes(logLevel))
    throw new Error('--log-level must be debug, info, warn or error');

  const overrides: ConfigOverrides = {
    ...(values.admin !== undefined ? { admin: { address: values.admin } } : {}),
    ...(values.service !== undefined ? { service: values.service } : {}),
    ...(values['drain-timeout-ms'] !== undefined
      ? {
          drainTimeoutMs: parseIntegerFlag(values['drain-timeout-ms'], {
            flag: '--drain-timeout-ms',
            what: 'a number of milliseconds',
            min: 0,
          }),
        }
      : {}),
  };

  let config: Config;
  let configFile: string | undefined;
  if (values.config !== undefined) {
    if (values.listen !== undefined || values.upstream !== undefined)
      throw new Error('use either --config or --listen/--upstream, not both');
    configFile = resolve(values.config);
    config = withOverrides(loadConfigFile(configFile), overrides, 'command line');
  } else {
    if (values.listen === undefined || values.upstream === undefined)
      throw new Error('give --config FILE, or --listen HOST:PORT with at least one --upstream HOST:PORT');
    config = parseConfig({ ...quickConfig(values), ...overrides }, 'command line');
  }
  let control: string | undefined;
  if (values.control !== undefined) {
    let url: URL;
    try {
      url = new URL(values.control);
    } catch {
      throw new Error(`--control must be a URL like http://127.0.0.1:15010, got '${values.control}'`);
    }
    if (url.protocol !== 'http:')
      throw new Error(`--control: only http:// is supported (mTLS comes later), got '${url.protocol}'`);
    control = url.origin;
  }
  if (values['bootstrap-token-file'] !== undefined && control === undefined)
    throw new Error('--bootstrap-token-file needs --control (the token is for getting a certificate from control)');
  if (values['bootstrap-token-file'] !== undefined && config.mtls === undefined)
    throw new Error(
      '--bootstrap-token-file needs an mtls config (the top-level mtls block, or --mtls / --upstream-mtls)',
    );
  if (values['spiffe-id'] !== undefined && values['bootstrap-token-file'] === undefined)
    throw new Error('--spiffe-id needs --bootstrap-token-file (it names the certificate asked of control)');
  return {
    configFile,
    config,
    overrides,
    workers,
    logLevel,
    check: values.check,
    control,
    nodeId: values['node-id'],
    bootstrapTokenFile:
      values['bootstrap-token-file'] === undefined ? undefined : resolve(values['bootstrap-token-file']),
    spiffeId: values['spiffe-id'],
    stateDir: resolve(values['state-dir']),
    statsIntervalMs: parseIntegerFlag(values['stats-interval-ms'], {
      flag: '--stats-interval-ms',
      what: 'a number of milliseconds',
      min: 100,
    }),
  };
}

/** The file's config with the command line's flags over it, validated again (an --admin may clash, say). */
function withOverrides(loaded: Config, overrides: ConfigOverrides, source: string): Config {
  return parseConfig({ ...loaded, ...overrides }, source);
}

function quickConfig(v: {
  listen?: string;
  upstream?: string[];
  tcp?: boolean;
  direction?: string;
  mtls?: string;
  'upstream-mtls'?: string;
  'trust-domain'?: string;
}): ConfigInput {
  const meshed = v.mtls !== undefined || v['upstream-mtls'] !== undefined;
  if (v.mtls !== undefined && !['strict', 'permissive', 'disabled'].includes(v.mtls))
    throw new Error(`--mtls must be strict, permissive or disabled, got '${v.mtls}'`);
  if (v['upstream-mtls'] !== undefined && !['auto', 'always', 'never'].includes(v['upstream-mtls']))
    throw new Error(`--upstream-mtls must be auto, always or never, got '${v['upstream-mtls']}'`);
  if (v['trust-domain'] !== undefined && !meshed) throw new Error('--trust-domain needs --mtls or --upstream-mtls');
  const listenerMtls = (v.mtls ?? 'disabled') as 'strict' | 'permissive' | 'disabled';
  const clusterMtls = { mode: (v['upstream-mtls'] ?? 'auto') as 'auto' | 'always' | 'never' };
  const cluster = {
    name: 'upstream',
    discovery: { type: 'static' as const, endpoints: (v.upstream ?? []).map((address) => ({ address })) },
    // Passive outlier detection with its defaults (5 gateway errors or 5xx in a row eject for 30 s and more).
    outlierDetection: {},
    // Retries in flight as many as requests (Istio sets no limit there; Envoy's 3 would fail the 4th request
    // that meets a dead endpoint at once): the retry budget keeps retries from multiplying an outage instead.
    circuitBreakers: { maxRetries: 1024 },
    mtls: clusterMtls,
  };
  const listener = v.tcp
    ? {
        name: 'main',
        address: v.listen!,
        protocol: 'tcp' as const,
        cluster: 'upstream',
        direction: v.direction as 'outbound' | 'inbound',
        mtls: listenerMtls,
      }
    : {
        name: 'main',
        address: v.listen!,
        direction: v.direction as 'outbound' | 'inbound',
        routes: [{ name: 'default', cluster: 'upstream' }],
        mtls: listenerMtls,
      };
  return {
    listeners: [listener],
    clusters: [cluster],
    ...(meshed ? { mtls: { trustDomain: v['trust-domain'] ?? 'cluster.local' } } : {}),
  };
}

/**
 * Runs the proxy in this process until SIGTERM/SIGINT. Resolves with the started server (for the mesh command,
 * which passes `onStop` to stop what it runs beside the proxy while the proxy drains).
 */
export async function runProxy(args: ProxyArgs, hooks: { onStop?: () => Promise<void> } = {}): Promise<ProxyServer> {
  const log = createLogger(args.logLevel);
  const proxy = new ProxyServer({ log, baseDir: args.configFile ? dirname(args.configFile) : process.cwd() });
  // Said once per process: the HTTP/1.1 parser is not Node's binding (it failed its check, or was asked for).
  if (HTTP_PARSER.kind !== 'binding')
    log.warn('http/1.1 parser: llhttp WebAssembly fallback', { why: HTTP_PARSER.why });
  // Only under our own primary (runPrimary marks its workers): a cluster worker of another primary (pm2's cluster
  // mode) has nobody to gather for it, so its admin reads stay local.
  if (cluster.isWorker && process.env[SKEIN_WORKER_ENV] === '1')
    answerPrimaryGathers({ metrics: () => proxy.stats.metricsAsJSON(), clusters: () => describeClusters(proxy) });
  // Reloads and control snapshots apply one at a time, in order: a second one while one is applying waits for it.
  let reloading: Promise<void> = Promise.resolve();
  // The proxy's own config (file or quick form) and control's overlay over it: what runs is their merge.
  let base = args.config;
  let client: ControlClient | null = null;
  let overlay: Overlay | null = null;
  if (args.control !== undefined) {
    const workerTag = cluster.isWorker ? `#${cluster.worker!.id}` : '';
    const node =
      (args.nodeId ?? `${hostname()}/${base.service}/${base.admin?.address.split(':').pop() ?? process.pid}`) +
      workerTag;
    const stateFile = join(args.stateDir, `control-snapshot-${node.replace(/[^A-Za-z0-9_.-]/g, '_')}.json`);
    const kept = loadKeptSnapshot(stateFile, log);
    if (kept !== null) {
      try {
        await proxy.apply(applyOverlay(base, kept.overlay));
        overlay = kept.overlay;
        log.info('serving the kept control snapshot until control answers', { version: kept.overlay.version });
      } catch (err) {
        const problems = err instanceof ConfigError ? err.problems : [(err as Error).message];
        log.warn('the kept control snapshot does not apply to this config; ignored', { problems });
      }
    }
    client = new ControlClient(
      {
        url: args.control,
        node,
        service: base.service,
        stateFile,
        log,
        report: async () => versionCounts(await proxy.stats.metricsAsJSON()),
        reportIntervalMs: args.statsIntervalMs,
        apply: (next) => {
          const run = reloading.then(async () => {
            await proxy.apply(applyOverlay(base, next));
            overlay = next;
          });
          reloading = run.catch(() => {}); // a refused snapshot must not fail the ones after it
          return run;
        },
      },
      overlay === null ? null : kept,
    );
  }
  let issuer: CertificateIssuer | null = null;
  if (args.bootstrapTokenFile !== undefined && args.config.mtls !== undefined) {
    // The identity comes first: listeners that require mTLS have nothing to present without it.
    const identity = proxy.ensureIdentity();
    identity.update({ policy: policyOf(args.config.mtls) });
    issuer = new CertificateIssuer({
      control: args.control!,
      tokenFile: args.bootstrapTokenFile,
      spiffeId: args.spiffeId ?? `spiffe://${args.config.mtls.trustDomain}/ns/default/sa/${base.service}`,
      identity,
      log,
    });
    await issuer.start();
  }
  if (overlay === null) await proxy.apply(args.config);
  client?.start();

  const configFile = args.configFile === undefined ? undefined : resolve(args.configFile);
  // The config file and the TLS files it names: a certificate replaced in place is a change to apply too.
  const watched = (config: Config) => [
    configFile!,
    ...config.listeners.flatMap((l) => (l.tls === undefined ? [] : [l.tls.certFile, l.tls.keyFile])),
    ...identityFiles(config.mtls),
  ];
  const watcher = configFile === undefined ? null : new ConfigWatcher((files) => void reload('file changed', files));
  watcher?.setFiles(watched(args.config));
  const reload = (why: string, files?: string[]) =>
    (reloading = reloading.then(async () => {
      if (configFile === undefined) return;
      try {
        // Only the flags actually given stay fixed; every other field (admin, service, drainTimeoutMs, …) is the file's.
        const next = withOverrides(loadConfigFile(configFile), args.overrides, configFile);
        const snap = await proxy.apply(applyOverlay(next, overlay, `${configFile} with the control snapshot`));
        base = next;
        watcher?.setFiles(watched(next));
        log.info('config reloaded', { why, ...(files ? { files } : {}), version: snap.version });
      } catch (err) {
        proxy.stats.configReloadFailures++;
        const problems = err instanceof ConfigError ? err.problems : [(err as Error).message];
        log.error('config rejected; the last good config keeps serving', { why, file: configFile, problems });
      }
    }));
  process.on('SIGHUP', () => void reload('SIGHUP'));
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info('draining', { signal });
    client?.close();
    issuer?.close();
    await Promise.all([proxy.drain(), hooks.onStop?.()]);
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  return proxy;
}

function runPrimary(args: ProxyArgs): void {
  const log = createLogger(args.logLevel);
  let stopping = false;
  // A replacement due after a crash must not start once shutdown has begun: nothing would ever stop it.
  const fork = () => {
    if (!stopping) cluster.fork({ [SKEIN_WORKER_ENV]: '1' });
  };
  // Not `cluster.workers` being empty: a worker whose 'exit' arrives before its IPC channel closes is still listed.
  const allExited = () => Object.values(cluster.workers ?? {}).every((w) => w === undefined || w.isDead());
  servePrimaryGathers(log);
  for (let i = 0; i < args.workers; i++) fork();
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) {
      if (allExited()) process.exit(0);
      return;
    }
    log.error('worker exited; starting another', { workerPid: worker.process.pid, code, signal });
    setTimeout(fork, 500);
  });
  const forward = (signal: NodeJS.Signals) => {
    for (const w of Object.values(cluster.workers ?? {})) if (w !== undefined && !w.isDead()) w.process.kill(signal);
  };
  process.on('SIGHUP', () => forward('SIGHUP'));
  for (const s of ['SIGTERM', 'SIGINT'] as const) {
    process.on(s, () => {
      stopping = true;
      forward('SIGTERM');
      if (allExited()) process.exit(0); // every worker had crashed; no 'exit' event is coming
    });
  }
  log.info('primary started', { workers: args.workers });
}

export async function main(argv: string[]): Promise<number> {
  let args: ProxyArgs | 'help';
  try {
    args = parseProxyArgs(argv);
  } catch (err) {
    process.stderr.write(
      `skein proxy: ${(err as Error).message}\n${err instanceof ConfigError ? '' : '\nRun `skein proxy --help` for usage.\n'}`,
    );
    return 1;
  }
  if (args === 'help') {
    process.stdout.write(`${PROXY_HELP}\n`);
    return 0;
  }
  if (args.check) {
    process.stdout.write(
      `config valid: ${args.config.listeners.length} listener(s), ${args.config.clusters.length} cluster(s)\n`,
    );
    return 0;
  }
  if (args.workers > 1 && cluster.isPrimary) {
    runPrimary(args);
    return -1; // keep running
  }
  try {
    await runProxy(args);
  } catch (err) {
    process.stderr.write(`skein proxy: cannot start: ${(err as Error).message}\n`);
    return 1;
  }
  return -1;
}
