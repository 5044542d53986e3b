// Checks, before a probe starts, everything it needs, and says plainly what is missing and how to fix it:
// root, the bpftrace and setpriv binaries, a mounted tracefs, and each script's tracepoints on this kernel.
// Optional scripts whose tracepoints are absent are dropped with a warning instead of failing the run.
import { accessSync, constants, existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { loadScript, OPTIONAL_SCRIPTS, type ScriptName, tracepointsOf, withDependencies } from './program.ts';

/** What preflight asks of the machine; tests pass a fake. */
export interface Environment {
  isRoot(): boolean;
  findBinary(name: string): string | undefined;
  /** The tracefs `events/` directory, or undefined when tracefs is not mounted. */
  tracefsEventsDir(): string | undefined;
  /** `tracepoint` is `category/name`. */
  hasTracepoint(eventsDir: string, tracepoint: string): boolean;
  tracepointsOf(script: ScriptName): string[];
}

export interface PreflightResult {
  /** Empty when the probe can run. */
  problems: string[];
  warnings: string[];
  /** The scripts to load: the requested ones and their dependencies, minus optional ones this kernel lacks. */
  scripts: ScriptName[];
  bpftracePath: string | undefined;
  setprivPath: string | undefined;
}

export function systemEnvironment(): Environment {
  return {
    isRoot: () => process.getuid?.() === 0,
    findBinary: (name) => {
      for (const dir of (process.env.PATH ?? '').split(delimiter)) {
        if (dir === '') continue;
        const path = join(dir, name);
        try {
          accessSync(path, constants.X_OK);
          return path;
        } catch {
          // not in this directory
        }
      }
      return undefined;
    },
    tracefsEventsDir: () =>
      ['/sys/kernel/tracing/events', '/sys/kernel/debug/tracing/events'].find((dir) => existsSync(dir)),
    hasTracepoint: (eventsDir, tracepoint) => existsSync(join(eventsDir, tracepoint)),
    tracepointsOf: (script) => tracepointsOf(loadScript(script).source),
  };
}

export function preflight(requested: readonly ScriptName[], env: Environment = systemEnvironment()): PreflightResult {
  const problems: string[] = [];
  const warnings: string[] = [];
  if (!env.isRoot()) problems.push('eBPF probes need root: run as root (e.g. with sudo).');
  const bpftracePath = env.findBinary('bpftrace');
  if (bpftracePath === undefined) {
    problems.push('bpftrace is not installed (or not on PATH): install it with `apt-get install -y bpftrace`.');
  }
  const setprivPath = env.findBinary('setpriv');
  if (setprivPath === undefined) {
    problems.push(
      'setpriv is missing (it stops bpftrace if the runner dies): install it with `apt-get install -y util-linux`.',
    );
  }
  const scripts: ScriptName[] = [];
  const eventsDir = env.tracefsEventsDir();
  if (eventsDir === undefined) {
    problems.push('tracefs is not mounted: mount it with `mount -t tracefs tracefs /sys/kernel/tracing`.');
    return { problems, warnings, scripts: withDependencies(requested), bpftracePath, setprivPath };
  }
  for (const script of withDependencies(requested)) {
    const missing = env.tracepointsOf(script).filter((tp) => !env.hasTracepoint(eventsDir, tp));
    if (missing.length === 0) {
      scripts.push(script);
      continue;
    }
    const what = `this kernel lacks tracepoint ${missing.map((tp) => tp.replace('/', ':')).join(', ')}`;
    if (OPTIONAL_SCRIPTS.has(script)) warnings.push(`${script}: ${what}; its figures are left out.`);
    else problems.push(`${script}: ${what} (needs a newer kernel; see probes/README.md).`);
  }
  return { problems, warnings, scripts, bpftracePath, setprivPath };
}
