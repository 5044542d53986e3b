// Starts benchmark processes (origin, proxies, wrk) each in its own session and process group, optionally pinned
// to a CPU with taskset, and guarantees they are gone when the harness ends: normally, on SIGINT/SIGTERM or on a crash.
// Processes are only ever signalled by the process-group id recorded at spawn, never looked up by name.
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface StartOptions {
  /** Pin the process (and every thread and child it creates) to this CPU with `taskset -c`. */
  readonly cpu?: number;
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
}

export interface ExitInfo {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** A long-running process started by the supervisor; its pid is also its process-group id. */
export interface ManagedProcess {
  readonly name: string;
  readonly pid: number;
  /** stdout and stderr of the process go here. */
  readonly logPath: string;
  /** Resolves when the group leader exits. */
  readonly exit: Promise<ExitInfo>;
  hasExited(): boolean;
}

export interface RunResult extends ExitInfo {
  readonly stdout: string;
  readonly stderr: string;
  readonly timedOut: boolean;
}

export interface RunOptions extends StartOptions {
  /** Hard limit: the whole group is killed after this long, so no load run can hang the harness. */
  readonly timeoutMs: number;
}

function pinned(argv: readonly string[], cpu: number | undefined): string[] {
  return cpu === undefined ? [...argv] : ['taskset', '-c', String(cpu), ...argv];
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // ESRCH: the group is already empty
  }
}

function exitPromise(child: ChildProcess): Promise<ExitInfo> {
  return new Promise((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
    // spawn failures (e.g. ENOENT) emit 'error' and possibly no 'exit'
    child.once('error', () => resolve({ code: null, signal: null }));
  });
}

export class ProcessSupervisor {
  readonly #logDir: string;
  /** Process groups started and not yet known to be empty, by pgid. */
  readonly #groups = new Map<number, string>();
  #closing = false;

  constructor(logDir: string) {
    this.#logDir = logDir;
  }

  /**
   * True once stopAll() has begun: nothing new may start, and the harness should stop its loop
   * instead of recording the failures that the killed processes cause.
   */
  get closing(): boolean {
    return this.#closing;
  }

  #refuseWhenClosing(name: string): void {
    if (this.#closing) throw new Error(`not starting ${name}: shutting down`);
  }

  /** Starts a long-running process in its own process group; output goes to `<logDir>/<name>.log`. */
  start(name: string, argv: readonly string[], opts: StartOptions = {}): ManagedProcess {
    this.#refuseWhenClosing(name);
    const logPath = join(this.#logDir, `${name}.log`);
    const fd = openSync(logPath, 'a');
    const [cmd, ...args] = pinned(argv, opts.cpu);
    let child: ChildProcess;
    try {
      // detached: setsid(), so pid == pgid and a Ctrl-C in the terminal reaches only us; we decide the order of shutdown.
      child = spawn(cmd, args, { detached: true, stdio: ['ignore', fd, fd], env: opts.env, cwd: opts.cwd });
    } finally {
      closeSync(fd);
    }
    const pid = child.pid;
    if (pid === undefined) throw new Error(`could not start ${name}: ${cmd} ${args.join(' ')}`);
    this.#groups.set(pid, name);
    let exited = false;
    const exit = exitPromise(child).then((info) => {
      exited = true;
      // Forget an empty group so its id, if the kernel reuses it, is never signalled later.
      if (!groupAlive(pid)) this.#groups.delete(pid);
      return info;
    });
    return { name, pid, logPath, exit, hasExited: () => exited };
  }

  /** Runs a process to completion in its own group, capturing its output, killed (whole group) after `timeoutMs`. */
  async run(name: string, argv: readonly string[], opts: RunOptions): Promise<RunResult> {
    this.#refuseWhenClosing(name);
    const [cmd, ...args] = pinned(argv, opts.cpu);
    const child = spawn(cmd, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: opts.env, cwd: opts.cwd });
    const pid = child.pid;
    if (pid === undefined) throw new Error(`could not start ${name}: ${cmd} ${args.join(' ')}`);
    this.#groups.set(pid, name);
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr?.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      signalGroup(pid, 'SIGKILL');
    }, opts.timeoutMs);
    // 'close' (not 'exit') so the pipes are drained before we read the output.
    const info = await new Promise<ExitInfo>((resolve) => {
      child.once('close', (code, signal) => resolve({ code, signal }));
      child.once('error', (err) => {
        stderr += String(err);
        resolve({ code: null, signal: null });
      });
    });
    clearTimeout(timer);
    // The leader is gone; anything it left behind in its group goes too.
    signalGroup(pid, 'SIGKILL');
    this.#groups.delete(pid);
    return { ...info, stdout, stderr, timedOut };
  }

  /** SIGTERM to the group, SIGKILL after `graceMs` if anything in it is still alive. */
  async stop(proc: { readonly pid: number }, graceMs = 3000): Promise<void> {
    await this.#stopGroups([proc.pid], graceMs);
  }

  async stopAll(graceMs = 3000): Promise<void> {
    this.#closing = true;
    await this.#stopGroups([...this.#groups.keys()], graceMs);
  }

  /** Last resort for process 'exit', where nothing asynchronous can run: SIGKILL every group still recorded. */
  killAllNow(): void {
    for (const pgid of this.#groups.keys()) signalGroup(pgid, 'SIGKILL');
    this.#groups.clear();
  }

  async #stopGroups(pgids: readonly number[], graceMs: number): Promise<void> {
    for (const pgid of pgids) signalGroup(pgid, 'SIGTERM');
    const deadline = Date.now() + graceMs;
    while (pgids.some(groupAlive) && Date.now() < deadline) await sleep(50);
    for (const pgid of pgids) {
      if (groupAlive(pgid)) signalGroup(pgid, 'SIGKILL');
      this.#groups.delete(pgid);
    }
  }
}

/**
 * Makes sure `cleanup` runs (stopping every started group) however the harness ends: SIGINT, SIGTERM,
 * an uncaught exception or rejection. A second Ctrl-C during cleanup kills the groups at once and exits.
 */
export function cleanUpOnExit(supervisor: ProcessSupervisor, cleanup: () => Promise<void>): void {
  let cleaning = false;
  const finish = (exitCode: number, message: string) => {
    if (cleaning) {
      supervisor.killAllNow();
      process.exit(exitCode);
    }
    cleaning = true;
    process.stderr.write(`\n${message}; stopping everything this benchmark started…\n`);
    cleanup().finally(() => process.exit(exitCode));
  };
  process.on('SIGINT', () => finish(130, 'interrupted (SIGINT)'));
  process.on('SIGTERM', () => finish(143, 'terminated (SIGTERM)'));
  process.on('uncaughtException', (err) => finish(1, `crashed: ${err.stack ?? String(err)}`));
  process.on('exit', () => supervisor.killAllNow());
}
