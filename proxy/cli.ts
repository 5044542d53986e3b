// `skein proxy`: start the data plane from a config file or the quick form (--listen/--upstream), reload on
// file change or SIGHUP (a bad file is rejected and the last good config keeps serving), drain on SIGTERM,
// and optionally fork --workers N processes that share the listen ports.
import cluster from 'node:cluster';
import { statSync, watch } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { type ParseArgsOptionsConfig, parseArgs } from 'node:util';
import { ConfigError, loadConfigFile, parseConfig } from '../src/config/load.ts';
import type { Config, ConfigInput } from '../src/config/schema.ts';
import { createLogger, type LogLevel } from '../src/log.ts';
import { describeClusters } from './admin.ts';
import { ProxyServer } from './server.ts';
import { answerPrimaryGathers, SKEIN_WORKER_ENV, servePrimaryGathers } from './workers-gather.ts';

export const PROXY_HELP = `Usage: skein proxy [options]

Start the Skein sidecar proxy.

Config (one of):
  -c, --config FILE        YAML or JSON config (see README "Configuration"); reloaded when the file
                           changes and on SIGHUP. A bad file is rejected; the last good config keeps serving.
  --listen HOST:PORT       Quick form: one HTTP listener (HTTP/1.1, h2c, gRPC, WebSocket) routing
  --upstream HOST:PORT     everything to these endpoints (repeat for a round-robin cluster).
  --tcp                    Quick form: make the listener raw TCP passthrough instead of HTTP.

Options:
  --admin HOST:PORT        Admin listener (/ready /live /config /clusters /listeners /metrics).
  --service NAME           The local service's name (x-source-service on outbound requests).
  --direction DIR          Quick form: outbound (default) or inbound.
  --workers N              Worker processes sharing the listen ports (default 1).
  --drain-timeout-ms MS    On SIGTERM, how long requests in flight may take (default 10000).
  --log-level LEVEL        debug | info | warn | error (default info).
  --check                  Validate the config, print the result and exit (0 valid, 1 invalid).
  -h, --help               Show this help.

Signals: SIGHUP reloads the config file; SIGTERM/SIGINT drain and exit 0.`;

interface ProxyArgs {
  configFile: string | undefined;
  config: Config;
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
  const workers = Number(values.workers);
  if (!Number.isInteger(workers) || workers < 1 || workers > 256)
    throw new Error('--workers must be an integer 1..256');
  const logLevel = values['log-level'] as LogLevel;
  if (!['debug', 'info', 'warn', 'error'].includes(logLevel))
    throw new Error('--log-level must be debug, info, warn or error');

  let config: Config;
  let configFile: string | undefined;
  if (values.config !== undefined) {
    if (values.listen !== undefined || values.upstream !== undefined)
      throw new Error('use either --config or --listen/--upstream, not both');
    configFile = resolve(values.config);
    const loaded = loadConfigFile(configFile);
    config = parseConfig(
      {
        ...loaded,
        ...(values.admin !== undefined ? { admin: { address: values.admin } } : {}),
        ...(values.service !== undefined ? { service: values.service } : {}),
        ...(values['drain-timeout-ms'] !== undefined ? { drainTimeoutMs: Number(values['drain-timeout-ms']) } : {}),
      },
      'command line',
    );
  } else {
    if (values.listen === undefined || values.upstream === undefined)
      throw new Error('give --config FILE, or --listen HOST:PORT with at least one --upstream HOST:PORT');
    config = parseConfig(quickConfig(values), 'command line');
  }
  return { configFile, config, workers, logLevel, check: values.check };
}

function quickConfig(v: {
  listen?: string;
  upstream?: string[];
  tcp?: boolean;
  admin?: string;
  service?: string;
  direction?: string;
  'drain-timeout-ms'?: string;
}): ConfigInput {
  const cluster = {
    name: 'upstream',
    discovery: { type: 'static' as const, endpoints: (v.upstream ?? []).map((address) => ({ address })) },
  };
  const listener = v.tcp
    ? {
        name: 'main',
        address: v.listen!,
        protocol: 'tcp' as const,
        cluster: 'upstream',
        direction: v.direction as 'outbound' | 'inbound',
      }
    : {
        name: 'main',
        address: v.listen!,
        direction: v.direction as 'outbound' | 'inbound',
        routes: [{ name: 'default', cluster: 'upstream' }],
      };
  return {
    service: v.service ?? 'unknown',
    ...(v.admin !== undefined ? { admin: { address: v.admin } } : {}),
    ...(v['drain-timeout-ms'] !== undefined ? { drainTimeoutMs: Number(v['drain-timeout-ms']) } : {}),
    listeners: [listener],
    clusters: [cluster],
  };
}

/**
 * Runs the proxy in this process until SIGTERM/SIGINT. Resolves with the started server (for the mesh command,
 * which passes `onStop` to stop what it runs beside the proxy while the proxy drains).
 */
export async function runProxy(args: ProxyArgs, hooks: { onStop?: () => Promise<void> } = {}): Promise<ProxyServer> {
  const log = createLogger(args.logLevel);
  const proxy = new ProxyServer({ log, baseDir: args.configFile ? dirname(args.configFile) : process.cwd() });
  // Only under our own primary (runPrimary marks its workers): a cluster worker of another primary (pm2's cluster
  // mode) has nobody to gather for it, so its admin reads stay local.
  if (cluster.isWorker && process.env[SKEIN_WORKER_ENV] === '1')
    answerPrimaryGathers({ metrics: () => proxy.stats.metricsAsJSON(), clusters: () => describeClusters(proxy) });
  await proxy.apply(args.config);

  const overrides = {
    admin: args.config.admin,
    service: args.config.service,
    drainTimeoutMs: args.config.drainTimeoutMs,
  };
  const reload = async (why: string) => {
    if (args.configFile === undefined) return;
    try {
      const next = parseConfig({ ...loadConfigFile(args.configFile), ...overrides }, args.configFile);
      const snap = await proxy.apply(next);
      log.info('config reloaded', { why, version: snap.version });
    } catch (err) {
      proxy.stats.configReloadFailures++;
      const problems = err instanceof ConfigError ? err.problems : [(err as Error).message];
      log.error('config rejected; the last good config keeps serving', { why, file: args.configFile, problems });
    }
  };
  process.on('SIGHUP', () => void reload('SIGHUP'));
  if (args.configFile !== undefined) {
    let timer: NodeJS.Timeout | null = null;
    // Watch the directory: editors and config-map updates replace the file rather than writing it.
    const file = args.configFile;
    let identity = fileIdentity(file);
    const watcher = watch(dirname(file), (_event, name) => {
      // An event for another name counts only if the file now resolves to something else: a Kubernetes ConfigMap
      // update swaps the `..data` symlink and never touches the file's own name.
      const now = fileIdentity(file);
      if (name !== null && resolve(dirname(file), name) !== file && now === identity) return;
      identity = now;
      if (timer !== null) clearTimeout(timer);
      timer = setTimeout(() => void reload('file changed'), 100);
    });
    watcher.unref();
  }
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info('draining', { signal });
    await Promise.all([proxy.drain(), hooks.onStop?.()]);
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  return proxy;
}

/** What `path` resolves to (symlinks followed) and its size and mtime; changes when the file's content may have. */
function fileIdentity(path: string): string {
  try {
    const s = statSync(path);
    return `${s.dev}:${s.ino}:${s.size}:${s.mtimeMs}`;
  } catch (err) {
    return `error:${(err as NodeJS.ErrnoException).code}`;
  }
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
