// eBPF probes (probes/) around a measured run: the kernel's own count of the proxy's on-CPU time, socket calls,
// new TCP connections and retransmits, set beside the /proc figures. Optional: when the machine cannot run them
// (not root, no bpftrace, a kernel without the tracepoints) the benchmark says why once and carries on without.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { preflight } from '../../probes/preflight.ts';
import { SCRIPT_NAMES } from '../../probes/program.ts';
import type { ProcessFigures } from '../../probes/report.ts';
import { ProbeRun } from '../../probes/runner.ts';

/** Whether this run used the probes, and if not, why. Goes into the report and the JSON. */
export interface ProbeStatus {
  readonly used: boolean;
  /** Why the probes were not used (or stopped being used). */
  readonly reason?: string;
  /** Preflight warnings, e.g. an optional script this kernel cannot run. */
  readonly warnings: readonly string[];
}

/** What the probe saw of the proxy's processes during one measured run. */
export interface ProbeSample {
  /** PIDs the probe filtered on: the proxy's process tree when it started. */
  readonly pids: readonly number[];
  /** How long the probes were attached, ms (slightly longer than wrk's run: attached before it, stopped after). */
  readonly attachedMs: number;
  /** Sums over `pids`. */
  readonly onCpuNs: number;
  readonly sendCalls: number;
  readonly recvCalls: number;
  readonly connects: number;
  readonly accepts: number;
  readonly connectFailures: number;
  readonly retransmits: number;
  /** Events bpftrace dropped; non-zero means the figures undercount. */
  readonly lostEvents: number;
  /** The CPUs bpftrace's user-space side was allowed on (`Cpus_allowed_list`): the load CPU. */
  readonly bpftraceCpus: string;
  readonly warnings: readonly string[];
  /** bpftrace's figures per process, as the probe runner reported them. */
  readonly raw: readonly ProcessFigures[];
}

/** Decides once, before anything starts, whether probes can run; `reason` is one line for the log and report. */
export function probeStatus(disabled: boolean): ProbeStatus {
  if (disabled) return { used: false, reason: 'disabled with --no-probes', warnings: [] };
  const check = preflight(SCRIPT_NAMES);
  if (check.problems.length > 0) return { used: false, reason: check.problems.join(' '), warnings: check.warnings };
  return { used: true, warnings: check.warnings };
}

function affinityOf(pid: number): string {
  return (
    execFileSync('taskset', ['-p', '-c', String(pid)], { encoding: 'utf8' })
      .trim()
      .split(': ')
      .pop() ?? ''
  );
}

function setAffinity(pid: number, cpus: string): void {
  execFileSync('taskset', ['-p', '-c', cpus, String(pid)], { stdio: 'ignore' });
}

/** `Cpus_allowed_list` of a process, or '?' once it has gone. */
export function allowedCpus(pid: number): string {
  try {
    return /^Cpus_allowed_list:\s*(\S+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? '?';
  } catch {
    return '?';
  }
}

/**
 * Starts a probe on `pids` and resolves once its probes are live. The runner spawns bpftrace itself and takes no
 * CPU option, so this harness's main thread (which forks it) is moved to `loadCpu` for the spawn: bpftrace and its
 * LLVM inherit that affinity, so compiling the program and draining its buffers stay off the proxy's core.
 * The BPF programs themselves run where the traced events happen, i.e. partly on the proxy's core.
 */
export async function startProbe(pids: readonly number[], loadCpu: number): Promise<ProbeRun> {
  const previous = affinityOf(process.pid);
  setAffinity(process.pid, String(loadCpu));
  try {
    return await ProbeRun.start({ pids });
  } finally {
    setAffinity(process.pid, previous);
  }
}

/** Stops the probe and sums its figures over the proxy's processes. */
export async function stopProbe(run: ProbeRun, pids: readonly number[]): Promise<ProbeSample> {
  try {
    const bpftraceCpus = allowedCpus(run.pid);
    const result = await run.stop();
    const sum = (f: (p: ProcessFigures) => number) => result.processes.reduce((total, p) => total + f(p), 0);
    return {
      pids,
      attachedMs: result.attachedMs,
      onCpuNs: sum((p) => p.cpu.onCpuNs),
      sendCalls: sum((p) => p.io.sendCalls),
      recvCalls: sum((p) => p.io.recvCalls),
      connects: sum((p) => p.tcp.connects),
      accepts: sum((p) => p.tcp.accepts),
      connectFailures: sum((p) => p.tcp.connectFailures),
      retransmits: sum((p) => p.tcp.retransmits),
      lostEvents: result.lostEvents,
      bpftraceCpus,
      warnings: result.warnings,
      raw: result.processes,
    };
  } finally {
    await run.kill();
  }
}
