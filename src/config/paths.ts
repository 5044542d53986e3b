// Every file path a config names (TLS files, an endpoints file, the access log) means the same thing wherever
// the proxy was started: relative paths resolve against the config file's directory, here and only here.
// A config built on the command line (the quick form) resolves against the working directory.
import { isAbsolute, resolve } from 'node:path';
import type { Config } from './schema.ts';

/** Access-log destinations that are streams, not files. */
const STREAMS = new Set(['stdout', 'stderr']);

/** A copy of `config` whose every file path is absolute (`baseDir` joined to the relative ones). */
export function resolveConfigPaths(config: Config, baseDir: string): Config {
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(baseDir, p));
  const optAbs = (p: string | undefined) => (p === undefined ? undefined : abs(p));
  const accessLog = config.telemetry.accessLog;
  return {
    ...config,
    telemetry: {
      ...config.telemetry,
      accessLog: STREAMS.has(accessLog.path) ? accessLog : { ...accessLog, path: abs(accessLog.path) },
    },
    listeners: config.listeners.map((l) =>
      l.tls === undefined ? l : { ...l, tls: { certFile: abs(l.tls.certFile), keyFile: abs(l.tls.keyFile) } },
    ),
    mtls:
      config.mtls === undefined
        ? undefined
        : {
            ...config.mtls,
            certFile: optAbs(config.mtls.certFile),
            keyFile: optAbs(config.mtls.keyFile),
            trustBundleFile: optAbs(config.mtls.trustBundleFile),
            crlFile: optAbs(config.mtls.crlFile),
          },
    clusters: config.clusters.map((c) =>
      c.discovery.type === 'file' ? { ...c, discovery: { ...c.discovery, path: abs(c.discovery.path) } } : c,
    ),
  };
}
