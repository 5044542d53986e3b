// Runs one bpftrace program for a set of PIDs: starts it (resolving once its probes are attached), stops it
// with SIGINT so bpftrace prints its maps, and parses them into a ProbeReport. bpftrace is started through
// `setpriv --pdeathsig KILL`, so the kernel kills it if this process dies without stopping it: a probe never
// outlives its runner.
import { type ChildProcess, spawn } from 'node:child_process';
import { composeProgram, loadScript, READY_MARKER, SCRIPT_NAMES, type ScriptName } from './program.ts';
import { preflight } from './preflight.ts';
import { parseBpftraceJson, type ProbeReport } from './report.ts';

export interface ProbeOptions {
  pids: readonly number[];
  /** Default: all of them. */
  scripts?: readonly ScriptName[];
  /** How long bpftrace may take to compile and attach. */
  attachTimeoutMs?: number;
}

export interface ProbeResult extends ProbeReport {
  /** How long the probes were attached, in ms. */
  attachedMs: number;
  warnings: string[];
}

export class ProbeError extends Error {
  override name = 'ProbeError';
  /** What the machine lacks (preflight), one sentence each; empty for other failures. */
  readonly problems: readonly string[];
  constructor(message: string, problems: readonly string[] = []) {
    super(message);
    this.problems = problems;
  }
}

/** bpftrace warns about RLIMIT_MEMLOCK on every start; kernels since 5.11 charge BPF memory to the cgroup. */
const NOISE = /RLIMIT_MEMLOCK|^\s*$/;

function meaningfulStderr(stderr: string): string {
  return stderr
    .split('\n')
    .filter((line) => !NOISE.test(line))
    .join('\n');
}

export class ProbeRun {
  readonly pid: number;
  readonly warnings: string[];
  readonly #child: ChildProcess;
  readonly #pids: readonly number[];
  readonly #closed: Promise<void>;
  #stdout = '';
  #stderr = '';
  #exited = false;
  #attachedAt = 0;
  #stopping: Promise<ProbeResult> | undefined;

  private constructor(child: ChildProcess, pids: readonly number[], warnings: string[]) {
    if (child.pid === undefined) throw new ProbeError('could not start bpftrace');
    this.pid = child.pid;
    this.#child = child;
    this.#pids = pids;
    this.warnings = warnings;
    child.stdout!.setEncoding('utf8').on('data', (s: string) => (this.#stdout += s));
    child.stderr!.setEncoding('utf8').on('data', (s: string) => (this.#stderr += s));
    this.#closed = new Promise((resolve) =>
      child.once('close', () => {
        this.#exited = true;
        resolve();
      }),
    );
  }

  /** Start bpftrace for `opts.pids` and resolve once its probes are attached. */
  static async start(opts: ProbeOptions): Promise<ProbeRun> {
    const check = preflight(opts.scripts ?? SCRIPT_NAMES);
    if (check.problems.length > 0) {
      throw new ProbeError(`cannot run probes here: ${check.problems.join(' ')}`, check.problems);
    }
    const program = composeProgram(check.scripts.map(loadScript), opts.pids);
    const child = spawn(check.setprivPath!, ['--pdeathsig', 'KILL', check.bpftracePath!, '-f', 'json', '-e', program], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const run = new ProbeRun(child, opts.pids, check.warnings);
    await run.#waitForAttach(opts.attachTimeoutMs ?? 30_000);
    return run;
  }

  get running(): boolean {
    return !this.#exited;
  }

  async #waitForAttach(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.#stdout.includes(READY_MARKER)) {
      if (this.#exited) {
        throw new ProbeError(`bpftrace exited before attaching:\n${meaningfulStderr(this.#stderr)}`);
      }
      if (Date.now() > deadline) {
        await this.kill();
        throw new ProbeError(`bpftrace did not attach within ${timeoutMs} ms:\n${meaningfulStderr(this.#stderr)}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    this.#attachedAt = Date.now();
  }

  /**
   * SIGINT bpftrace, wait for it to print its maps and exit, and parse them. Safe to call twice. Usually well
   * under a second, but detaching waits for RCU grace periods, and on a loaded machine it has taken over 15 s
   * (seen with `skein probe run` too): the figures are worth the wait, as in control (STOP_TIMEOUT_MS there).
   */
  stop(timeoutMs = 60_000): Promise<ProbeResult> {
    this.#stopping ??= this.#stop(timeoutMs);
    return this.#stopping;
  }

  async #stop(timeoutMs: number): Promise<ProbeResult> {
    const attachedMs = Date.now() - this.#attachedAt;
    if (!this.#exited) this.#child.kill('SIGINT');
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      this.#closed.then(() => false),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), timeoutMs))),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      await this.kill();
      throw new ProbeError(`bpftrace did not exit within ${timeoutMs} ms of SIGINT; killed it`);
    }
    const errors = meaningfulStderr(this.#stderr);
    if (this.#child.exitCode !== 0 && errors !== '') throw new ProbeError(`bpftrace failed:\n${errors}`);
    return { ...parseBpftraceJson(this.#stdout, this.#pids), attachedMs, warnings: this.warnings };
  }

  /** SIGKILL bpftrace (its probes detach when it dies) and wait until it is gone. */
  async kill(): Promise<void> {
    if (!this.#exited) this.#child.kill('SIGKILL');
    await this.#closed;
  }
}

/** Attach, measure for `durationS` seconds (or until `signal` aborts), stop and report. */
export async function runProbe(opts: ProbeOptions & { durationS: number; signal?: AbortSignal }): Promise<ProbeResult> {
  const run = await ProbeRun.start(opts);
  try {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, opts.durationS * 1000);
      opts.signal?.addEventListener('abort', () => {
        clearTimeout(timer);
        resolve();
      });
    });
    return await run.stop();
  } finally {
    await run.kill();
  }
}
