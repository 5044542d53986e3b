// Runs the `skein` CLI as a child process for end-to-end tests: captures stdout and stderr (the proxy's JSON log
// lines parsed as they arrive), waits for readiness by polling the admin /ready, and kills by PID, including the
// worker processes named in the log, so no test leaves a process behind even when it fails.
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import type http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach } from 'vitest';
import { startEchoUpstream, type Upstream } from './proxy.ts';
import { httpGet } from './http-client.ts';
import { waitFor, waitForAsync } from './wait-for.ts';

const SKEIN_BIN = fileURLToPath(new URL('../../bin/skein.js', import.meta.url));

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** One line of the proxy's operational log (proxy/log.ts). */
export interface LogLine {
  level: string;
  pid: number;
  msg: string;
  [field: string]: unknown;
}

export interface SkeinProcess {
  readonly pid: number;
  readonly stdout: string;
  readonly stderr: string;
  /** stderr lines that parsed as log objects, in order. */
  readonly logs: readonly LogLine[];
  /** null while running. */
  readonly exitStatus: ExitStatus | null;
  /** Every process id seen: this one and any worker that logged. */
  pids(): number[];
  signal(signal: NodeJS.Signals): void;
  waitForExit(timeoutMs?: number): Promise<ExitStatus>;
  /** The first log line (already seen or still to come) that `match` accepts. */
  waitForLog(match: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** SIGKILL this process and every worker it started, by PID, and wait for this one to be gone. */
  kill(): Promise<void>;
}

const running = new Set<SkeinProcess>();

/** Start `node bin/skein.js ...args` with the test's own Node (24). */
export function spawnSkein(args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): SkeinProcess {
  const child: ChildProcess = spawn(process.execPath, [SKEIN_BIN, ...args], {
    cwd: opts.cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
    // As a user would run it: none of the test runner's own Node options.
    env: { ...process.env, NODE_OPTIONS: '', ...opts.env },
  });
  if (child.pid === undefined) throw new Error(`could not spawn ${process.execPath} ${SKEIN_BIN}`);
  const pid = child.pid;
  let stdout = '';
  let stderr = '';
  let partial = '';
  const logs: LogLine[] = [];
  const pids = new Set<number>([pid]);
  let exitStatus: ExitStatus | null = null;
  const exited = new Promise<ExitStatus>((resolve) => {
    // 'close', not 'exit': by then stdout and stderr have been read to the end.
    child.once('close', (code, signal) => {
      exitStatus = { code, signal };
      resolve(exitStatus);
    });
  });
  child.stdout!.setEncoding('utf8').on('data', (s: string) => {
    stdout += s;
    if (process.env.SKEIN_TEST_LOG) process.stderr.write(s);
  });
  child.stderr!.setEncoding('utf8').on('data', (s: string) => {
    stderr += s;
    if (process.env.SKEIN_TEST_LOG) process.stderr.write(s);
    const lines = (partial + s).split('\n');
    partial = lines.pop() ?? '';
    for (const text of lines) {
      const line = parseLogLine(text);
      if (line === undefined) continue;
      logs.push(line);
      pids.add(line.pid);
    }
  });

  const proc: SkeinProcess = {
    pid,
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
    logs,
    get exitStatus() {
      return exitStatus;
    },
    pids: () => [...pids],
    signal(signal) {
      process.kill(pid, signal);
    },
    async waitForExit(timeoutMs = 10_000) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`skein (pid ${pid}) still running after ${timeoutMs} ms; stderr:\n${stderr}`)),
          timeoutMs,
        );
      });
      try {
        return await Promise.race([exited, timeout]);
      } finally {
        clearTimeout(timer);
      }
    },
    async waitForLog(match, timeoutMs = 5_000) {
      try {
        return await waitFor(() => logs.find(match), timeoutMs);
      } catch (err) {
        throw new Error(`expected log line not seen within ${timeoutMs} ms; stderr:\n${stderr}`, { cause: err });
      }
    },
    async kill() {
      // Workers first: with the primary gone they would be re-parented and harder to tell from strangers.
      for (const p of pids) if (p !== pid) killIfOurs(p);
      killIfOurs(pid);
      if (exitStatus === null) await proc.waitForExit(5_000);
      running.delete(proc);
    },
  };
  running.add(proc);
  return proc;
}

/** Runs a command that is expected to exit by itself (--help, --check, bad config); kills it after `timeoutMs`. */
export async function runSkein(
  args: string[],
  timeoutMs = 10_000,
): Promise<ExitStatus & { stdout: string; stderr: string }> {
  const proc = spawnSkein(args);
  try {
    const status = await proc.waitForExit(timeoutMs);
    return { ...status, stdout: proc.stdout, stderr: proc.stderr };
  } finally {
    await proc.kill();
  }
}

export interface RunningSkein extends SkeinProcess {
  readonly adminUrl: string;
  /** Bound port of the named listener (default: the first), as the admin /listeners reports it. */
  port(listener?: string): number;
  url(listener?: string): string;
}

/**
 * Start `skein proxy ...args` whose admin listens on `adminPort` (the caller puts it in the args or the config),
 * wait until /ready answers 200, and learn the listeners' bound ports (configs use port 0) from /listeners.
 */
export async function startSkeinProxy(
  args: string[],
  opts: { adminPort: number; cwd?: string; readyTimeoutMs?: number; env?: Record<string, string> },
): Promise<RunningSkein> {
  const proc = spawnSkein(['proxy', ...args], { cwd: opts.cwd, env: opts.env });
  const adminUrl = `http://127.0.0.1:${opts.adminPort}`;
  const readyTimeoutMs = opts.readyTimeoutMs ?? 10_000;
  let listeners: { name: string; address: string }[];
  try {
    const outcome = await waitForAsync(async () => {
      if (proc.exitStatus !== null) return 'exited';
      return (await httpGet(`${adminUrl}/ready`, { timeoutMs: 1_000 })).status === 200 ? 'ready' : undefined;
    }, readyTimeoutMs);
    if (outcome === 'exited') throw new Error(`exited during startup: ${JSON.stringify(proc.exitStatus)}`);
    listeners = JSON.parse((await httpGet(`${adminUrl}/listeners`)).body);
  } catch (err) {
    await proc.kill();
    throw new Error(`skein proxy did not become ready (${(err as Error).message}); stderr:\n${proc.stderr}`, {
      cause: err,
    });
  }
  const port = (name = listeners[0].name) => {
    const l = listeners.find((x) => x.name === name);
    if (l === undefined) throw new Error(`no listener named ${name} in /listeners`);
    return Number(l.address.slice(l.address.lastIndexOf(':') + 1));
  };
  // Inherit from `proc` rather than copy it: its stdout, stderr and exitStatus are live getters.
  return Object.assign(Object.create(proc) as SkeinProcess, {
    adminUrl,
    port,
    url: (name?: string) => `http://127.0.0.1:${port(name)}`,
  });
}

/** For afterEach: kill every skein process a test started and has not already seen exit. */
export async function killAllSkein(): Promise<void> {
  await Promise.all([...running].map((p) => p.kill()));
}

/** A port that was free a moment ago (listen on 0, close). For addresses a test must know before starting. */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * True while `pid` names a running process: signal 0 reaches it (checks without signalling) and it is not a
 * zombie, which has exited and only waits for a parent to collect its status.
 */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    // /proc/PID/stat: "PID (comm) STATE ..."; comm may hold spaces and parentheses, so split at the last ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

function parseLogLine(text: string): LogLine | undefined {
  if (!text.startsWith('{')) return undefined;
  try {
    const v = JSON.parse(text) as Partial<LogLine>;
    return typeof v.pid === 'number' && typeof v.msg === 'string' ? (v as LogLine) : undefined;
  } catch {
    return undefined;
  }
}

/** SIGKILL `pid` if it is still a skein process (a recycled PID belongs to someone else). */
function killIfOurs(pid: number): void {
  let cmdline: string;
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return; // gone
  }
  if (!cmdline.includes(SKEIN_BIN)) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // exited in between
  }
}

/**
 * Per-test scratch state for process tests: a fresh temp dir and upstreams that are closed, with every
 * spawned skein killed, after each test (even a failed one).
 */
export function processTestFixture(prefix: string): {
  dir(): string;
  upstream(name: string, handler?: http.RequestListener): Promise<Upstream>;
} {
  let dir = '';
  let upstreams: Upstream[] = [];
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), prefix));
    upstreams = [];
  });
  afterEach(async () => {
    await killAllSkein();
    await Promise.all(upstreams.map((u) => u.close()));
    await rm(dir, { recursive: true, force: true });
  });
  return {
    dir: () => dir,
    async upstream(name, handler) {
      const u = await startEchoUpstream(name, handler);
      upstreams.push(u);
      return u;
    },
  };
}
