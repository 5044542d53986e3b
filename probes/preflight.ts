// Checks, before a probe starts, everything it needs, and says plainly what is missing and how to fix it:
// root, the bpftrace and setpriv binaries, the scripts themselves, a mounted tracefs, each script's tracepoints
// on this kernel and the kernel's BTF where a script reads kernel structures. Never throws: the CLI and control
// turn the problems into one error (exit 1, HTTP 503).
// Optional scripts whose tracepoints are absent are dropped with a warning instead of failing the run.
import { accessSync, constants, existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import {
  hasScript,
  loadScript,
  OPTIONAL_SCRIPTS,
  type ScriptName,
  scriptPath,
  tracepointsOf,
  usesKernelTypes,
  withDependencies,
} from './program.ts';

export interface ScriptNeeds {
  /** `category/name`, the layout under tracefs `events/`. */
  tracepoints: string[];
  /** Reads kernel structures, so bpftrace needs the kernel's BTF (/sys/kernel/btf/vmlinux). */
  kernelTypes: boolean;
}

/** What preflight asks of the machine; tests pass a fake. */
export interface Environment {
  isRoot(): boolean;
  findBinary(name: string): string | undefined;
  /** The tracefs `events/` directory, or undefined when tracefs is not mounted. */
  tracefsEventsDir(): string | undefined;
  /** `tracepoint` is `category/name`. */
  hasTracepoint(eventsDir: string, tracepoint: string): boolean;
  hasKernelBtf(): boolean;
  /** Undefined when the script's file is missing (an install that left probes/scripts/ out). */
  scriptNeeds(script: ScriptName): ScriptNeeds | undefined;
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
    hasKernelBtf: () => existsSync('/sys/kernel/btf/vmlinux'),
    scriptNeeds: (script) => {
      if (!hasScript(script)) return undefined;
      const { source } = loadScript(script);
      return { tracepoints: tracepointsOf(source), kernelTypes: usesKernelTypes(source) };
    },
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
  const needs = new Map<ScriptName, ScriptNeeds>();
  const missingScripts: string[] = [];
  for (const script of withDependencies(requested)) {
    const need = env.scriptNeeds(script);
    if (need === undefined) missingScripts.push(scriptPath(script));
    else needs.set(script, need);
  }
  if (missingScripts.length > 0) {
    problems.push(
      `the probe scripts are missing (${missingScripts.join(', ')}): this install of skein is incomplete; ` +
        'ship probes/scripts/ beside dist/ (the Dockerfile copies it).',
    );
  }
  const scripts: ScriptName[] = [];
  const eventsDir = env.tracefsEventsDir();
  if (eventsDir === undefined) {
    problems.push(
      env.isRoot()
        ? 'tracefs is not mounted: mount it with `mount -t tracefs tracefs /sys/kernel/tracing`.'
        : 'tracefs is not mounted or not readable by this user: as root, mount it with `mount -t tracefs tracefs /sys/kernel/tracing`.',
    );
    return { problems, warnings, scripts: [...needs.keys()], bpftracePath, setprivPath };
  }
  const needBtf: ScriptName[] = [];
  for (const [script, need] of needs) {
    const missing = need.tracepoints.filter((tp) => !env.hasTracepoint(eventsDir, tp));
    if (missing.length === 0) {
      scripts.push(script);
      if (need.kernelTypes) needBtf.push(script);
      continue;
    }
    const what = `this kernel lacks tracepoint ${missing.map((tp) => tp.replace('/', ':')).join(', ')}`;
    if (OPTIONAL_SCRIPTS.has(script)) warnings.push(`${script}: ${what}; its figures are left out.`);
    else problems.push(`${script}: ${what} (needs a newer kernel; see probes/README.md).`);
  }
  if (needBtf.length > 0 && !env.hasKernelBtf()) {
    problems.push(
      `${needBtf.join(', ')}: this kernel has no BTF (/sys/kernel/btf/vmlinux, CONFIG_DEBUG_INFO_BTF), which bpftrace needs to read kernel structures.`,
    );
  }
  return { problems, warnings, scripts, bpftracePath, setprivPath };
}
