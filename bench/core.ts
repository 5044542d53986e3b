// `npm run bench:core`: proxy overhead of skein beside direct, nginx, HAProxy and a naive undici proxy, in one run.
// Starts an nginx origin and every target, pins them (proxy on one core; origin + wrk on the other), runs interleaved
// rounds of wrk, and writes a Markdown table plus JSON with every per-round number. `--help` lists the options.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { type CoreResult, type CoreSettings, renderCoreReport, type TargetInfo, type Visit } from './core-report.ts';
import { waitForHttpOk } from './lib/http-check.ts';
import { type MeasureSetup, measureWrkRun, type ProbeControl } from './lib/measure.ts';
import { originNginxArgv } from './lib/origin.ts';
import { freePorts } from './lib/ports.ts';
import { type ProbeStatus, probeStatus } from './lib/probes.ts';
import { ensureTools, toolVersion } from './lib/prereqs.ts';
import { cleanUpOnExit, type ManagedProcess, ProcessSupervisor } from './lib/processes.ts';
import { clockTicksPerSecond, cpuBusyBetween, peakRssKbOf, processTree, readCpuTimes } from './lib/procfs.ts';
import { isTargetName, planTarget, skeinCommand, TARGET_NAMES, type TargetName } from './lib/targets.ts';
import { runWrk } from './lib/wrk.ts';

const PROJECT_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const TOOLS = { nginx: 'nginx', haproxy: 'haproxy', wrk: 'wrk', taskset: 'util-linux' } as const;

const USAGE = `Usage: npm run bench:core -- [options]     (or: node bench/core.ts [options])

  --targets LIST            comma-separated, in visiting order (default ${TARGET_NAMES.join(',')})
  --rounds N                interleaved rounds (default 3)
  --duration-s S            max-throughput run, wrk -c<connections> (default 8)
  --one-conn-duration-s S   latency run, wrk -c1 (default 5)
  --connections N           connections of the max-throughput run (default 50)
  --warmup-s S              warm-up before each visit (default 1)
  --first-warmup-s S        extra warm-up per target before round 1 (default 2)
  --proxy-cpu N             CPU every proxy is pinned to (default 1)
  --load-cpu N              CPU for the origin and wrk (default 0)
  --skein-cmd CMD           shell command starting skein; $PORT and $ORIGIN_PORT are set
                            (default: ${skeinCommand({})})
  --skein-wait-s S          how long skein may take to answer 200 before it is skipped (default 15)
  --out FILE                write the Markdown report to FILE and the JSON beside it (FILE with .json)
                            (default bench-results/core-<timestamp>.md and .json); always printed to stdout too
  --no-probes               do not attach the eBPF probes (probes/) to the proxy during the @<connections> run;
                            without root, bpftrace or the kernel's tracepoints they are skipped anyway
  --keep-tmp                keep the temp dir with configs and process logs
  -h, --help                this text
`;

interface Options extends CoreSettings {
  readonly skeinCmdOverride: string | undefined;
  readonly skeinWaitS: number;
  readonly out: string | undefined;
  readonly keepTmp: boolean;
  readonly noProbes: boolean;
}

function parseOptions(argv: string[]): Options | undefined {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      targets: { type: 'string', default: TARGET_NAMES.join(',') },
      rounds: { type: 'string', default: '3' },
      'duration-s': { type: 'string', default: '8' },
      'one-conn-duration-s': { type: 'string', default: '5' },
      connections: { type: 'string', default: '50' },
      'warmup-s': { type: 'string', default: '1' },
      'first-warmup-s': { type: 'string', default: '2' },
      'proxy-cpu': { type: 'string', default: '1' },
      'load-cpu': { type: 'string', default: '0' },
      'skein-cmd': { type: 'string' },
      'skein-wait-s': { type: 'string', default: '15' },
      out: { type: 'string' },
      'keep-tmp': { type: 'boolean', default: false },
      'no-probes': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return undefined;
  const int = (name: keyof typeof values, min: number) => {
    const n = Number(values[name]);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}, got ${values[name]}`);
    return n;
  };
  const targets = [
    ...new Set(
      values.targets
        .split(',')
        .map((t) => t.trim())
        .filter(Boolean),
    ),
  ];
  const unknown = targets.filter((t) => !isTargetName(t));
  if (unknown.length > 0) throw new Error(`unknown target(s) ${unknown.join(', ')}; known: ${TARGET_NAMES.join(', ')}`);
  if (targets.length === 0) throw new Error('--targets is empty');
  const opts: Options = {
    targets: targets.filter(isTargetName),
    rounds: int('rounds', 1),
    durationS: int('duration-s', 1),
    oneConnDurationS: int('one-conn-duration-s', 1),
    connections: int('connections', 1),
    warmupS: int('warmup-s', 0),
    firstWarmupS: int('first-warmup-s', 0),
    proxyCpu: int('proxy-cpu', 0),
    loadCpu: int('load-cpu', 0),
    skeinCmd: skeinCommand({ skeinCmd: values['skein-cmd'] }),
    skeinCmdOverride: values['skein-cmd'],
    skeinWaitS: int('skein-wait-s', 1),
    out: values.out,
    keepTmp: values['keep-tmp'],
    noProbes: values['no-probes'],
  };
  if (opts.proxyCpu === opts.loadCpu) throw new Error('--proxy-cpu and --load-cpu must differ');
  return opts;
}

function log(line: string): void {
  process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${line}\n`);
}

/** Quotes an argument for a POSIX shell only when it needs it, so the recorded command can be pasted back. */
function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", "'\\''")}'`;
}

function checkCpus(opts: Options): void {
  const cpus = readFileSync('/proc/stat', 'utf8').match(/^cpu\d+ /gm)?.length ?? 0;
  for (const cpu of [opts.proxyCpu, opts.loadCpu]) {
    if (cpu >= cpus)
      throw new Error(`CPU ${cpu} does not exist (this machine has ${cpus}); set --proxy-cpu/--load-cpu`);
  }
}

function tail(path: string, lines = 5): string {
  try {
    const text = readFileSync(path, 'utf8').trim();
    return text === '' ? '(log empty)' : text.split('\n').slice(-lines).join(' | ');
  } catch {
    return '(no log)';
  }
}

async function sampleBusy(opts: Options): Promise<{ loadCpu: number; proxyCpu: number }> {
  const load = readCpuTimes(opts.loadCpu);
  const proxy = readCpuTimes(opts.proxyCpu);
  await sleep(1000);
  return {
    loadCpu: cpuBusyBetween(load, readCpuTimes(opts.loadCpu)).busyPct,
    proxyCpu: cpuBusyBetween(proxy, readCpuTimes(opts.proxyCpu)).busyPct,
  };
}

function versions(): Record<string, string> {
  const undici = JSON.parse(readFileSync(join(PROJECT_DIR, 'node_modules/undici/package.json'), 'utf8')) as {
    version: string;
  };
  return {
    nginx: toolVersion('nginx', ['-v']).replace(/^.*nginx\//, ''),
    HAProxy: toolVersion('haproxy', ['-v']).split(' ')[2] ?? '?',
    wrk: toolVersion('wrk', ['-v']).split(' ')[1] ?? '?',
    Node: process.version,
    undici: undici.version,
  };
}

function hostLine(): string {
  const cpus = os.cpus();
  return `${os.type()} ${os.release()}, ${cpus.length} CPUs (${cpus[0]?.model ?? '?'}), ${Math.round(os.totalmem() / 2 ** 30)} GiB`;
}

interface RunningTarget {
  readonly name: TargetName;
  readonly port: number;
  readonly description: string;
  /** undefined for direct. */
  readonly proc: ManagedProcess | undefined;
}

interface Skipped {
  readonly target: TargetName;
  readonly reason: string;
}

/** Starts every requested target pinned to the proxy CPU; one that does not answer 200 in time is stopped and skipped. */
async function startTargets(
  opts: Options,
  supervisor: ProcessSupervisor,
  runDir: string,
  originPort: number,
  ports: readonly number[],
): Promise<{ running: RunningTarget[]; skipped: Skipped[] }> {
  const running: RunningTarget[] = [];
  const skipped: Skipped[] = [];
  const skip = (target: TargetName, reason: string) => {
    log(`skipping ${target}: ${reason}`);
    skipped.push({ target, reason });
  };
  for (const [i, name] of opts.targets.entries()) {
    const port = ports[i];
    const plan = planTarget(name, {
      port,
      originPort,
      runDir,
      projectDir: PROJECT_DIR,
      nodePath: process.execPath,
      skeinCmd: opts.skeinCmdOverride,
      skeinReadyTimeoutMs: opts.skeinWaitS * 1000,
    });
    if (plan.kind === 'skip') {
      skip(name, plan.reason);
    } else if (plan.kind === 'origin') {
      running.push({ name, port: originPort, description: 'wrk straight to the origin', proc: undefined });
    } else {
      const proc = supervisor.start(name, plan.argv, { cpu: opts.proxyCpu, env: plan.env, cwd: plan.cwd });
      const err = await waitForHttpOk(port, plan.readyTimeoutMs, proc.hasExited);
      if (err !== undefined || proc.hasExited()) {
        skip(name, `did not answer 200 on 127.0.0.1:${port}: ${err ?? 'process exited'}; log: ${tail(proc.logPath)}`);
        await supervisor.stop(proc);
      } else {
        log(`${name} up on 127.0.0.1:${port} (pids ${processTree(proc.pid).join(' ')}), CPU ${opts.proxyCpu}`);
        running.push({ name, port, description: plan.description, proc });
      }
    }
  }
  return { running, skipped };
}

/** One visit: warm-up (discarded), the max-throughput run, the one-connection run, then the proxy's peak RSS. */
async function measureVisit(opts: Options, setup: MeasureSetup, t: RunningTarget, round: number): Promise<Visit> {
  const url = `http://127.0.0.1:${t.port}/`;
  if (opts.warmupS > 0) {
    await runWrk(setup.supervisor, { url, connections: opts.connections, durationS: opts.warmupS, cpu: opts.loadCpu });
  }
  const max = await measureWrkRun(
    setup,
    { url, connections: opts.connections, durationS: opts.durationS },
    { probe: true },
  );
  const oneConn = await measureWrkRun(setup, { url, connections: 1, durationS: opts.oneConnDurationS });
  const peakRssKb = t.proc === undefined ? Number.NaN : peakRssKbOf(processTree(t.proc.pid));
  log(
    `  ${Math.round(max.wrk.requestsPerSecond)} req/s, ` +
      (t.proc === undefined ? '' : `${max.proxyCpuUsPerRequest.toFixed(1)} CPU µs/req, `) +
      `@1 conn p50 ${oneConn.wrk.p50Us} µs p99 ${oneConn.wrk.p99Us} µs, errors ${max.wrk.errorCount + oneConn.wrk.errorCount}`,
  );
  const p = max.probe;
  if (p !== undefined && max.wrk.requests > 0) {
    const n = max.wrk.requests;
    log(
      `  probe: ${(p.onCpuNs / 1000 / n).toFixed(1)} CPU µs/req, ${((p.sendCalls + p.recvCalls) / n).toFixed(2)} socket calls/req, ` +
        `${p.connects} new upstream conns, ${p.retransmits} retransmits` +
        (p.lostEvents > 0 ? `, ${p.lostEvents} events lost` : ''),
    );
  }
  return { round, target: t.name, max, oneConn, peakRssKb };
}

/** Decides whether the probes run, says why not in one line, and lets a failed probe turn them off for the rest. */
function probeControl(opts: Options): { control: ProbeControl; status: () => ProbeStatus } {
  let status = probeStatus(opts.noProbes);
  if (status.used) {
    log('eBPF probes: attaching to each proxy during its measured run (bpftrace on the load CPU)');
    for (const w of status.warnings) log(`eBPF probes: ${w}`);
  } else {
    log(`eBPF probes not used: ${(status.reason ?? '').replace(/\.?$/, '.')} Reporting /proc figures only.`);
  }
  const control: ProbeControl = {
    get enabled() {
      return status.used;
    },
    fail(message: string) {
      if (!status.used) return;
      status = { ...status, used: false, reason: `turned off after a failure: ${message}` };
      log(`eBPF probes turned off for the rest of the run: ${message}`);
    },
  };
  return { control, status: () => status };
}

async function runBenchmark(opts: Options, supervisor: ProcessSupervisor, runDir: string): Promise<CoreResult> {
  const date = `${new Date().toISOString().replace('T', ' ').slice(0, 16)} UTC`;
  const probes = probeControl(opts);
  const backgroundBusyPct = await sampleBusy(opts);
  const [originPort, statusPort, ...targetPorts] = await freePorts(2 + opts.targets.length);

  const origin = supervisor.start('origin', originNginxArgv({ port: originPort, statusPort }, runDir), {
    cpu: opts.loadCpu,
  });
  const originErr = await waitForHttpOk(originPort, 10_000, origin.hasExited);
  if (originErr !== undefined) throw new Error(`origin nginx did not come up: ${originErr}; ${tail(origin.logPath)}`);
  log(`origin nginx on 127.0.0.1:${originPort} (stub_status :${statusPort}), CPU ${opts.loadCpu}; run dir ${runDir}`);

  const { running, skipped } = await startTargets(opts, supervisor, runDir, originPort, targetPorts);
  if (running.length === 0) throw new Error('no target could be started');

  const clk = clockTicksPerSecond();
  const setupFor = (t: RunningTarget): MeasureSetup => ({
    supervisor,
    proxyPid: t.proc?.pid,
    originStatusPort: statusPort,
    loadCpu: opts.loadCpu,
    proxyCpu: opts.proxyCpu,
    clockTicksPerSecond: clk,
    probes: probes.control,
  });

  const started = Date.now();
  const measured: TargetInfo[] = [];
  for (const t of running) {
    log(`first warm-up: ${t.name} (${opts.firstWarmupS} s)`);
    const url = `http://127.0.0.1:${t.port}/`;
    const firstWarmup =
      opts.firstWarmupS > 0
        ? await measureWrkRun(setupFor(t), { url, connections: opts.connections, durationS: opts.firstWarmupS })
        : undefined;
    measured.push({ name: t.name, description: t.description, firstWarmup });
  }

  const visits: Visit[] = [];
  for (let round = 1; round <= opts.rounds; round++) {
    for (const t of running) {
      if (t.proc?.hasExited()) {
        log(`round ${round}/${opts.rounds}: ${t.name} has exited, no numbers`);
        visits.push({ round, target: t.name, error: `process exited; log: ${tail(t.proc.logPath)}` });
        continue;
      }
      log(`round ${round}/${opts.rounds}: ${t.name}`);
      try {
        visits.push(await measureVisit(opts, setupFor(t), t, round));
      } catch (err) {
        if (supervisor.closing) throw err; // interrupted: the failure is ours, not the target's
        const message = err instanceof Error ? err.message : String(err);
        log(`  failed: ${message}`);
        visits.push({ round, target: t.name, error: message });
      }
    }
  }

  const settings: CoreSettings = {
    targets: opts.targets,
    rounds: opts.rounds,
    connections: opts.connections,
    durationS: opts.durationS,
    oneConnDurationS: opts.oneConnDurationS,
    warmupS: opts.warmupS,
    firstWarmupS: opts.firstWarmupS,
    proxyCpu: opts.proxyCpu,
    loadCpu: opts.loadCpu,
    skeinCmd: opts.skeinCmd,
  };
  const meta = {
    date,
    host: hostLine(),
    versions: versions(),
    clockTicksPerSecond: clk,
    backgroundBusyPct,
    command: ['node bench/core.ts', ...process.argv.slice(2).map(shellQuote)].join(' '),
    measureSeconds: Math.round((Date.now() - started) / 1000),
  };
  const probeUse = probes.status();
  // Used at first and turned off later: the report still shows what was measured, and why the rest is missing.
  const probesUsed = visits.some((v) => v.max?.probe !== undefined);
  return { settings, meta, measured, skipped, visits, probes: { ...probeUse, used: probesUsed } };
}

function outputPaths(opts: Options): { md: string; json: string } {
  if (opts.out !== undefined) {
    const md = resolve(opts.out);
    return { md, json: `${md.replace(/\.md$/, '')}.json` };
  }
  const stamp = new Date().toISOString().slice(0, 19).replaceAll(':', '-');
  const base = join(PROJECT_DIR, 'bench-results', `core-${stamp}`);
  return { md: `${base}.md`, json: `${base}.json` };
}

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  if (opts === undefined) {
    process.stdout.write(USAGE);
    return;
  }
  if (process.platform !== 'linux') throw new Error('bench:core reads /proc and uses taskset: Linux only');
  ensureTools(TOOLS, log);
  checkCpus(opts);

  const runDir = mkdtempSync(join(os.tmpdir(), 'skein-bench-core-'));
  const supervisor = new ProcessSupervisor(runDir);
  let keepRunDir = opts.keepTmp;
  const cleanup = async () => {
    await supervisor.stopAll();
    if (keepRunDir) log(`configs and logs kept in ${runDir}`);
    else rmSync(runDir, { recursive: true, force: true });
  };
  cleanUpOnExit(supervisor, cleanup);

  let result: CoreResult;
  try {
    result = await runBenchmark(opts, supervisor, runDir);
  } catch (err) {
    // Interrupted: the signal handler is already stopping everything and will exit; nothing to report.
    if (supervisor.closing) return;
    keepRunDir = true; // the process logs are what explains the failure
    throw err;
  } finally {
    await cleanup();
  }

  const report = renderCoreReport(result);
  const paths = outputPaths(opts);
  mkdirSync(dirname(paths.md), { recursive: true });
  writeFileSync(paths.md, report);
  // NaN (no proxy, no value) becomes null in JSON.
  writeFileSync(paths.json, `${JSON.stringify(result, null, 2)}\n`);
  process.stdout.write(`${report}\n`);
  log(`wrote ${paths.md} and ${paths.json}`);
}

main().catch((err: unknown) => {
  log(`bench:core failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
});
