// `skein bench run`: checks the machine, plans the run, starts and measures every phase under one process
// supervisor (nothing outlives the harness), then assembles the report, writes report.json/.md/.html and returns
// it. The harness itself — the builtin generator, the OTLP sink — is pinned to the load CPU for the run.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { engineAvailable, runLoad as engineRunLoad } from '../load/index.ts';
import type { RunLoad } from '../load/types.ts';
import { type ProbeStatus, probeStatus } from '../lib/probes.ts';
import { missingTools, toolVersion } from '../lib/prereqs.ts';
import { cleanUpOnExit, ProcessSupervisor } from '../lib/processes.ts';
import { clockTicksPerSecond, cpuBusyBetween, readCpuTimes } from '../lib/procfs.ts';
import { type BenchCerts, makeBenchCerts } from '../lib/mesh-certs.ts';
import { skeinCommand } from '../lib/targets.ts';
import type { BenchReport } from '../report/model.ts';
import { renderMarkdown, writeReport } from '../report/index.ts';
import { assembleReport, type RunMeta } from './assemble.ts';
import type { RunOptions } from './options.ts';
import { projectDir, staleBuildReason } from './paths.ts';
import type { ProbeControl } from './measure.ts';
import { emptyCollected, runPhase } from './phase.ts';
import { type Installed, plannedSeconds, planRun } from './plan.ts';
import { Progress, type ProgressSink } from './progress.ts';
import { startOtlpSink } from './otlp-sink.ts';

export interface RunIo {
  /** Progress and log lines. */
  readonly stderr: ProgressSink;
  /** The Markdown report at the end. */
  readonly stdout: { write(chunk: string): unknown };
  /** Install SIGINT/SIGTERM handlers that stop everything and exit (the CLI; not in-process callers). */
  readonly handleSignals: boolean;
  /** The command line recorded in the report. */
  readonly command: string;
}

export interface RunOutcome {
  readonly report: BenchReport;
  readonly dir: string;
  readonly files: { readonly json: string; readonly md: string; readonly html: string };
}

/** wrk only takes whole seconds; every other engine takes the spec as it is. */
export const runLoad: RunLoad = (spec, signal) =>
  engineRunLoad(spec.engine === 'wrk' ? { ...spec, durationS: Math.max(1, Math.ceil(spec.durationS)) } : spec, signal);

function installed(notes: string[]): Installed {
  const has = (tool: string, pkg: string) => missingTools({ [tool]: pkg }).length === 0;
  const wrkEngine = engineAvailable('wrk');
  const wrk = wrkEngine.available;
  if (!wrk && missingTools({ wrk: 'wrk' }).length === 0) notes.push(`wrk could not be used: ${wrkEngine.reason}`);
  return {
    nginx: has('nginx', 'nginx'),
    haproxy: has('haproxy', 'haproxy'),
    wrk,
    taskset: has('taskset', 'util-linux'),
  };
}

function cpuCount(): number {
  return readFileSync('/proc/stat', 'utf8').match(/^cpu\d+ /gm)?.length ?? os.cpus().length;
}

function packageVersion(dir: string, name?: string): string | undefined {
  try {
    const file = name === undefined ? join(dir, 'package.json') : join(dir, 'node_modules', name, 'package.json');
    return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
  } catch {
    return undefined;
  }
}

function versions(dir: string, tools: Installed): Record<string, string> {
  const v: Record<string, string> = { node: process.version, skein: packageVersion(dir) ?? '?' };
  if (tools.nginx) v.nginx = toolVersion('nginx', ['-v']).replace(/^.*nginx\//, '');
  if (tools.haproxy) v.haproxy = toolVersion('haproxy', ['-v']).split(' ')[2] ?? '?';
  if (tools.wrk) v.wrk = toolVersion('wrk', ['-v']).split(' ')[1] ?? '?';
  for (const pkg of ['undici', 'http-proxy', 'hdr-histogram-js']) {
    const version = packageVersion(dir, pkg);
    if (version !== undefined) v[pkg] = version;
  }
  return v;
}

function machine(): BenchReport['machine'] {
  const cpus = os.cpus();
  return {
    host: os.hostname(),
    cpus: cpus.length,
    cpuModel: cpus[0]?.model ?? '?',
    kernel: `${os.type()} ${os.release()}`,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
  };
}

/** Every thread of this process onto `cpus` (taskset -a); returns the previous list to restore. */
function pinSelf(cpus: string): string {
  const previous = execFileSync('taskset', ['-p', '-c', String(process.pid)], { encoding: 'utf8' })
    .trim()
    .split(': ');
  execFileSync('taskset', ['-a', '-p', '-c', cpus, String(process.pid)], { stdio: 'ignore' });
  return previous[previous.length - 1] ?? cpus;
}

/** Decides once whether the probes run, and lets a failed probe turn them off for the rest of the run. */
function probeControl(
  wanted: boolean,
  usable: boolean,
  progress: Progress,
): { control: ProbeControl; status: () => ProbeStatus } {
  let status: ProbeStatus = !usable
    ? { used: false, reason: 'no local proxy pinned to its own CPU', warnings: [] }
    : probeStatus(!wanted);
  if (status.used) progress.log('eBPF probes: attached to each proxy during its closed-loop runs');
  else progress.log(`eBPF probes not used: ${status.reason ?? ''}`);
  return {
    control: {
      get enabled() {
        return status.used;
      },
      fail(message: string) {
        if (!status.used) return;
        status = { ...status, used: false, reason: `turned off after a failure: ${message}` };
        progress.log(`eBPF probes turned off for the rest of the run: ${message}`);
      },
    },
    status: () => status,
  };
}

export function defaultOutDir(now = new Date()): string {
  return resolve('bench-results', now.toISOString().slice(0, 19).replaceAll(':', '-'));
}

export async function executeRun(opts: RunOptions, io: RunIo): Promise<RunOutcome> {
  const started = new Date();
  const local = opts.localTargets.length > 0;
  if (local && process.platform !== 'linux')
    throw new Error('local targets need Linux (/proc, taskset); use --local-targets none with --remote');
  const toolNotes: string[] = [];
  const tools = installed(toolNotes);
  if (local) {
    const n = cpuCount();
    for (const cpu of [opts.proxyCpu, opts.loadCpu])
      if (cpu >= n) throw new Error(`CPU ${cpu} does not exist (this machine has ${n}); set --proxy-cpu/--load-cpu`);
  }
  const dir = projectDir();
  const planned = planRun(opts, tools, dir);
  // The skein targets run bin/skein.js (dist/) unless --skein-cmd replaces the plain one's command.
  const runsBuild = opts.localTargets.some(
    (t) => (t.startsWith('skein-') && t !== 'skein-baseline') || (t === 'skein' && opts.skeinCmd === undefined),
  );
  const stale = runsBuild ? staleBuildReason(dir) : undefined;
  if (stale !== undefined) toolNotes.push(stale);
  const plan = { ...planned, notes: [...toolNotes, ...planned.notes] };
  const pinned = local && tools.taskset;
  const outDir = opts.out === undefined ? defaultOutDir(started) : resolve(opts.out);

  const runDir = mkdtempSync(join(os.tmpdir(), 'skein-bench-'));
  const supervisor = new ProcessSupervisor(runDir);
  const sink = plan.targets.some((t) => t.local === 'skein-telemetry' && t.unavailableReason === undefined)
    ? await startOtlpSink()
    : undefined;
  const progress = new Progress(io.stderr, 0, Date.now, opts.progress);
  let keepRunDir = opts.keepTmp;
  let restoreAffinity: string | undefined;
  // Stops load calls in flight (the generator and wrk run in process groups of their own) on an interrupt.
  const abort = new AbortController();
  // Once, whoever asks first: the signal handler or the end of the run.
  let cleaning: Promise<void> | undefined;
  const cleanup = () => (cleaning ??= stopEverything());
  const stopEverything = async () => {
    abort.abort(new Error('the benchmark is stopping'));
    await supervisor.stopAll();
    await sink?.close();
    if (restoreAffinity !== undefined)
      execFileSync('taskset', ['-a', '-p', '-c', restoreAffinity, String(process.pid)], { stdio: 'ignore' });
    restoreAffinity = undefined;
    if (keepRunDir) progress.log(`configs and process logs kept in ${runDir}`);
    else rmSync(runDir, { recursive: true, force: true });
  };
  if (io.handleSignals) cleanUpOnExit(supervisor, cleanup);

  let background: RunMeta['backgroundBusyPct'];
  const collected = emptyCollected();
  let probes: ReturnType<typeof probeControl> | undefined;
  let certs: Promise<BenchCerts> | undefined;
  try {
    if (local) {
      const load = readCpuTimes(opts.loadCpu);
      const proxy = readCpuTimes(opts.proxyCpu);
      await sleep(500);
      background = {
        load: cpuBusyBetween(load, readCpuTimes(opts.loadCpu)).busyPct,
        proxy: cpuBusyBetween(proxy, readCpuTimes(opts.proxyCpu)).busyPct,
      };
    }
    if (pinned) restoreAffinity = pinSelf(String(opts.loadCpu));
    probes = probeControl(opts.probes, pinned, progress);
    progress.extend(plannedSeconds(plan, opts, probes.control.enabled));
    const measureCtx = {
      runLoad,
      cpus: pinned ? { load: opts.loadCpu, proxy: opts.proxyCpu } : undefined,
      clockTicksPerSecond: clockTicksPerSecond(),
      probes: probes.control,
      signal: abort.signal,
    };
    for (const phase of plan.phases) {
      try {
        await runPhase(
          {
            opts,
            plan,
            supervisor,
            runDir,
            projectDir: dir,
            nodePath: process.execPath,
            runLoad,
            measure: measureCtx,
            progress,
            collected,
            pinned,
            // Without skein-telemetry nothing exports; an address nobody listens on is as good as any.
            otlpEndpoint: sink?.url ?? 'http://127.0.0.1:9/v1/traces',
            certs: () => (certs ??= makeBenchCerts(join(runDir, 'certs'))),
          },
          phase,
        );
      } catch (err) {
        if (supervisor.closing) throw err;
        const what = phase.scenarios.map((s) => s.spec.id).join(', ');
        collected.warnings.push(`no figures for ${what}: ${err instanceof Error ? err.message : String(err)}`);
        progress.log(`phase (${phase.origin} origin) failed: ${err instanceof Error ? err.message : String(err)}`);
        keepRunDir = true; // the process logs are what explains the failure
      }
    }
  } finally {
    progress.done();
    await cleanup();
  }
  if (sink !== undefined) {
    const s = sink.stats();
    collected.descriptions.set(
      'skein-telemetry',
      `${collected.descriptions.get('skein-telemetry') ?? 'skein-telemetry'} (the sink received ${s.requests} OTLP exports, ${s.bytes} bytes)`,
    );
  }
  const probeUse = probes?.status();
  const meta: RunMeta = {
    createdAt: started.toISOString(),
    command: io.command,
    machine: machine(),
    versions: versions(dir, tools),
    backgroundBusyPct: background,
    settings: {
      rounds: opts.rounds,
      warmupS: opts.warmupS,
      firstWarmupS: opts.firstWarmupS,
      durationS: opts.durationS,
      connections: opts.connections,
      openConnections: opts.openConnections,
      ratePerS: opts.ratePerS,
      stages: opts.stages,
      payloadBytes: opts.payloadBytes,
      streamMessages: opts.streamMessages,
      timeoutMs: opts.timeoutMs,
      engine: opts.engine,
      proxyCpu: pinned ? opts.proxyCpu : undefined,
      loadCpu: pinned ? opts.loadCpu : undefined,
      origins: plan.phases.map((p) => ({ origin: p.origin, scenarios: p.scenarios.map((s) => s.spec.id) })),
      skeinCmd: skeinCommand({ skeinCmd: opts.skeinCmd }),
      probes: probeUse === undefined ? { used: false } : { used: probeUse.used, reason: probeUse.reason },
      elapsedS: Math.round((Date.now() - started.getTime()) / 1000),
    },
  };
  const scenarios = plan.phases.flatMap((p) => p.scenarios.map((s) => s.spec));
  const report = assembleReport(plan, scenarios, collected, meta);
  const files = await writeReport(report, outDir);
  io.stdout.write(`${renderMarkdown(report)}\n`);
  progress.log(`wrote ${files.json}, ${files.md} and ${files.html} (${meta.settings.elapsedS} s)`);
  return { report, dir: outDir, files };
}
