// One phase of a `skein bench` run: the scenarios that share an origin. Starts that origin and every target
// before it (each proxy pinned to the proxy CPU), warms each up once, then runs interleaved rounds — per round,
// per scenario, every target in turn (A B C A B C) with a warm-up before each measured run — and stops them all.
// A target's companions (skein-full-global's redis-server) start before it, beside the origin, and stop after it.
// The TLS targets' certificates are made once per run, before the first of them starts.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { join } from 'node:path';
import type { LoadProtocol, RunLoad } from '../load/types.ts';
import { waitForHttpOk } from '../lib/http-check.ts';
import { originNginxArgv } from '../lib/origin.ts';
import { freePorts } from '../lib/ports.ts';
import type { ManagedProcess, ProcessSupervisor } from '../lib/processes.ts';
import type { HandshakeCounter } from '../lib/handshakes.ts';
import type { BenchCerts } from '../lib/mesh-certs.ts';
import { waitForRedis } from '../lib/redis.ts';
import { needsCerts, planTarget } from '../lib/targets.ts';
import type { RoundResult } from '../report/model.ts';
import { type MeasureContext, type MeasuredRound, measureRound } from './measure.ts';
import type { RunOptions } from './options.ts';
import { benchCliPath } from './paths.ts';
import { type Phase, type PlannedTarget, type RunPlan, visitSeconds } from './plan.ts';
import type { Progress } from './progress.ts';
import { type Endpoint, loadSpecFor } from './scenarios.ts';

/** Everything the phases find out, read by the report assembly afterwards. */
export interface Collected {
  /** target → scenario id → measured rounds. */
  readonly rounds: Map<string, Map<string, MeasuredRound[]>>;
  /** What exactly ran for each target that started. */
  readonly descriptions: Map<string, string>;
  /** Targets found unable to run during the run (did not start, unreachable), with the reason. */
  readonly unavailable: Map<string, string>;
  readonly warnings: string[];
  /** Remote targets already checked for reachability (once per run). */
  readonly remoteChecked: Set<string>;
}

export function emptyCollected(): Collected {
  return { rounds: new Map(), descriptions: new Map(), unavailable: new Map(), warnings: [], remoteChecked: new Set() };
}

export interface PhaseDeps {
  readonly opts: RunOptions;
  readonly plan: RunPlan;
  readonly supervisor: ProcessSupervisor;
  readonly runDir: string;
  readonly projectDir: string;
  readonly nodePath: string;
  readonly runLoad: RunLoad;
  readonly measure: MeasureContext;
  readonly progress: Progress;
  readonly collected: Collected;
  /** Set when the proxies are pinned (taskset present). */
  readonly pinned: boolean;
  /** The OTLP endpoint skein-telemetry exports to. */
  readonly otlpEndpoint: string;
  /** The run's CA and certificates (made on the first call). */
  readonly certs: () => Promise<BenchCerts>;
}

interface LiveTarget {
  readonly target: PlannedTarget;
  readonly endpoint: Endpoint;
  readonly proc?: ManagedProcess;
  /** Started for the target before it (redis-server); stopped after it. */
  readonly companions?: readonly ManagedProcess[];
  readonly handshakes?: HandshakeCounter;
}

/** Ports each local target gets: listener, its h2c listener (nginx, HAProxy), admin, a companion (redis), a second
 *  proxy's listener (skein-pair, skein-mtls*). */
const PORTS_PER_TARGET = 5;

const localEndpoint = (port: number, h2Port = port): Endpoint => ({
  host: '127.0.0.1',
  port,
  h2Port,
  path: '/',
  tls: false,
});

function tail(path: string, lines = 5): string {
  try {
    const text = readFileSync(path, 'utf8').trim();
    return text === '' ? '(log empty)' : text.split('\n').slice(-lines).join(' | ');
  } catch {
    return '(no log)';
  }
}

const message = (err: unknown) => (err instanceof Error ? err.message : String(err)).replaceAll('\n', ' ');

function remoteEndpoint(url: string): Endpoint {
  const u = new URL(url);
  const tls = u.protocol === 'https:';
  const port = u.port === '' ? (tls ? 443 : 80) : Number(u.port);
  return { host: u.hostname.replace(/^\[|\]$/g, ''), port, h2Port: port, path: u.pathname || '/', tls };
}

/**
 * A remote target is measured when its URL answers at all (any status below 500) within 5 s. Certificates are not
 * checked, as the generator does not check them either.
 */
function checkRemote(url: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const get = url.startsWith('https:') ? https.get : http.get;
    const req = get(url, { agent: false, timeout: 5000, rejectUnauthorized: false }, (res) => {
      res.resume();
      const status = res.statusCode ?? 0;
      resolve(status > 0 && status < 500 ? undefined : `${url} answered HTTP ${status}`);
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 5 s')));
    req.on('error', (err) => resolve(`${url} did not answer: ${message(err)}`));
  });
}

async function startOrigin(
  d: PhaseDeps,
  phase: Phase,
  port: number,
): Promise<{ endpoint: Endpoint; proc: ManagedProcess }> {
  const cpu = d.pinned ? d.opts.loadCpu : undefined;
  let proc: ManagedProcess;
  if (phase.origin === 'nginx') {
    proc = d.supervisor.start('origin-nginx', originNginxArgv(port, d.runDir), { cpu });
  } else {
    const argv = [d.nodePath, benchCliPath(), 'origin', '--listen', `127.0.0.1:${port}`];
    proc = d.supervisor.start('origin-node', argv, {
      cpu,
      cwd: d.projectDir,
      env: { ...process.env, NODE_OPTIONS: '' },
    });
  }
  const err = await waitForHttpOk(port, 10_000, proc.hasExited);
  if (err !== undefined) {
    await d.supervisor.stop(proc);
    throw new Error(`the ${phase.origin} origin did not come up: ${err}; log: ${tail(proc.logPath)}`);
  }
  d.progress.log(`origin (${phase.origin}) on 127.0.0.1:${port}${cpu === undefined ? '' : `, CPU ${cpu}`}`);
  return { endpoint: localEndpoint(port), proc };
}

async function startTarget(
  d: PhaseDeps,
  phase: Phase,
  t: PlannedTarget,
  origin: Endpoint,
  ports: readonly number[],
): Promise<LiveTarget | undefined> {
  const c = d.collected;
  const fail = (reason: string) => {
    // A target that ran in an earlier phase stays in the report; this phase's scenarios just have no figures.
    if (c.descriptions.has(t.name))
      c.warnings.push(`${t.name} did not start before the ${phase.origin} origin: ${reason}`);
    else c.unavailable.set(t.name, reason);
    d.progress.log(`${t.name}: unavailable: ${reason}`);
    return undefined;
  };
  if (t.kind === 'remote') {
    const url = t.remote!.url;
    if (!c.remoteChecked.has(t.name)) {
      c.remoteChecked.add(t.name);
      const err = await checkRemote(url);
      if (err !== undefined) return fail(err);
    }
    c.descriptions.set(t.name, `remote ${t.mesh} target at ${url}`);
    return { target: t, endpoint: remoteEndpoint(url) };
  }
  const [port, h2Port, adminPort, redisPort, peerPort] = ports;
  let certs: BenchCerts | undefined;
  if (needsCerts(t.local!)) {
    try {
      certs = await d.certs();
    } catch (err) {
      return fail(`the run's certificates could not be made: ${message(err)}`);
    }
  }
  const plan = planTarget(t.local!, {
    port,
    h2Port,
    originPort: origin.port,
    origin: phase.origin === 'node' ? 'node' : 'nginx',
    runDir: d.runDir,
    projectDir: d.projectDir,
    nodePath: d.nodePath,
    skeinCmd: t.local === 'skein' ? d.opts.skeinCmd : undefined,
    baselineCmd: d.opts.baselineCmd,
    skeinReadyTimeoutMs: d.opts.skeinWaitS * 1000,
    adminPort,
    redisPort,
    peerPort,
    certs,
    telemetry: {
      adminPort,
      otlpEndpoint: d.otlpEndpoint,
      accessLogPath: join(d.runDir, `${t.name}-access.log`),
    },
  });
  if (plan.kind === 'skip') return fail(plan.reason);
  if (plan.kind === 'origin') {
    c.descriptions.set(t.name, 'no proxy: the generator talks to the origin itself');
    return { target: t, endpoint: origin };
  }
  const companions: ManagedProcess[] = [];
  const stopCompanions = async () => {
    for (const p of companions.reverse()) await d.supervisor.stop(p);
  };
  for (const comp of plan.companions ?? []) {
    // Beside the origin: a companion stands for a service elsewhere in the mesh, not for the proxy's own work.
    const cproc = d.supervisor.start(`${t.name}-${comp.name}`, comp.argv, {
      cpu: d.pinned ? d.opts.loadCpu : undefined,
      cwd: d.runDir,
    });
    companions.push(cproc);
    const err = await waitForRedis(comp.redisPort, comp.readyTimeoutMs, cproc.hasExited);
    if (err !== undefined) {
      await stopCompanions();
      return fail(`its ${comp.name} did not start: ${err}; log: ${tail(cproc.logPath)}`);
    }
    const where = d.pinned ? `, CPU ${d.opts.loadCpu}` : '';
    d.progress.log(`${t.name}: ${comp.name} up on 127.0.0.1:${comp.redisPort} (pid ${cproc.pid})${where}`);
  }
  const proc = d.supervisor.start(t.name, plan.argv, {
    cpu: d.pinned ? d.opts.proxyCpu : undefined,
    env: plan.env,
    cwd: plan.cwd,
  });
  const err = await waitForHttpOk(port, plan.readyTimeoutMs, proc.hasExited, plan.tls);
  if (err !== undefined || proc.hasExited()) {
    await d.supervisor.stop(proc);
    await stopCompanions();
    return fail(`did not answer 200 on 127.0.0.1:${port}: ${err ?? 'process exited'}; log: ${tail(proc.logPath)}`);
  }
  c.descriptions.set(t.name, plan.description);
  d.progress.log(`${t.name} up on 127.0.0.1:${port} (pid ${proc.pid})${d.pinned ? `, CPU ${d.opts.proxyCpu}` : ''}`);
  const endpoint = localEndpoint(port, plan.h2Port ?? port);
  return {
    target: t,
    endpoint: plan.tls === undefined ? endpoint : { ...endpoint, tls: true, ...plan.tls },
    proc,
    companions,
    handshakes: plan.handshakes,
  };
}

function store(c: Collected, target: string, scenario: string, m: MeasuredRound): void {
  let byScenario = c.rounds.get(target);
  if (byScenario === undefined) c.rounds.set(target, (byScenario = new Map()));
  const list = byScenario.get(scenario);
  if (list === undefined) byScenario.set(scenario, [m]);
  else list.push(m);
}

function describeRound(r: RoundResult): string {
  const ms = (us: number) => (us >= 1000 ? `${(us / 1000).toFixed(2)} ms` : `${Math.round(us)} µs`);
  const errors = Object.values(r.errors).reduce((a, b) => a + b, 0);
  return (
    `${Math.round(r.throughputPerS).toLocaleString('en-US')}/s, p50 ${ms(r.latencyUs.p50)} p99 ${ms(r.latencyUs.p99)}` +
    (r.cpuSecondsPer1k === undefined ? '' : `, CPU ${r.cpuSecondsPer1k.toFixed(3)} s/1k`) +
    (r.peakRssMb === undefined ? '' : `, RSS ${Math.round(r.peakRssMb)} MB`) +
    (r.handshakesPerS === undefined ? '' : `, ${Math.round(r.handshakesPerS).toLocaleString('en-US')} handshakes/s`) +
    (errors > 0 ? `, ${errors} errors` : '') +
    (r.lag !== undefined && !r.lag.trustworthy ? `, generator lag p99 ${ms(r.lag.p99Us)}!` : '')
  );
}

export async function runPhase(d: PhaseDeps, phase: Phase): Promise<void> {
  const c = d.collected;
  const protocols = new Set<LoadProtocol>(phase.scenarios.map((s) => s.spec.protocol));
  const candidates = d.plan.targets.filter(
    (t) => t.unavailableReason === undefined && !c.unavailable.has(t.name) && t.protocols.some((p) => protocols.has(p)),
  );
  const locals = candidates.filter((t) => t.kind === 'local');
  const ports = await freePorts(1 + PORTS_PER_TARGET * locals.length);
  const started: ManagedProcess[] = [];
  try {
    d.progress.step(
      phase.origin === 'none' ? 'checking the remote targets' : `starting the targets (${phase.origin} origin)`,
      1 + locals.length * 0.7,
    );
    let origin: Endpoint | undefined;
    if (phase.origin !== 'none' && locals.length > 0) {
      const o = await startOrigin(d, phase, ports[0]);
      started.push(o.proc);
      origin = o.endpoint;
    }
    const live: LiveTarget[] = [];
    for (const t of candidates) {
      const i = locals.indexOf(t);
      if (t.kind === 'local' && origin === undefined) continue;
      const own =
        i < 0
          ? new Array<number>(PORTS_PER_TARGET).fill(0)
          : ports.slice(1 + PORTS_PER_TARGET * i, 1 + PORTS_PER_TARGET * (i + 1));
      const l = await startTarget(d, phase, t, origin ?? localEndpoint(0), own);
      if (l === undefined) continue;
      live.push(l);
      // Stopped in reverse: the target before its companions, every target before the origin.
      started.push(...(l.companions ?? []));
      if (l.proc !== undefined) started.push(l.proc);
    }
    await measurePhase(d, phase, live);
  } finally {
    // Targets first, the origin last: a proxy stopping must not see its upstream vanish first.
    for (const proc of started.reverse()) await d.supervisor.stop(proc);
  }
}

async function measurePhase(d: PhaseDeps, phase: Phase, live: readonly LiveTarget[]): Promise<void> {
  const c = d.collected;
  const cpu = d.pinned ? d.opts.loadCpu : undefined;
  // One longer warm-up per target before round 1: JIT, connection pools, the generator itself.
  const first = phase.scenarios[0];
  if (d.opts.firstWarmupS > 0 && first !== undefined) {
    for (const l of live.filter((x) => x.target.protocols.includes(first.spec.protocol))) {
      d.progress.step(`first warm-up: ${l.target.name}`, d.opts.firstWarmupS);
      const spec = { ...loadSpecFor(first, l.endpoint, { cpu, warmup: true }), durationS: d.opts.firstWarmupS };
      try {
        await d.runLoad(spec, d.measure.signal);
      } catch (err) {
        if (d.supervisor.closing) throw err;
        c.warnings.push(`first warm-up of ${l.target.name} failed: ${message(err)}`);
      }
    }
  }
  for (let round = 1; round <= d.opts.rounds; round++) {
    for (const s of phase.scenarios) {
      for (const l of live.filter((x) => x.target.protocols.includes(s.spec.protocol))) {
        const where = `round ${round}/${d.opts.rounds} ${s.spec.id}: ${l.target.name}`;
        if (l.proc?.hasExited()) {
          c.warnings.push(`${where}: the process had exited; log: ${tail(l.proc.logPath)}`);
          continue;
        }
        const probe = s.spec.mode === 'closed' && l.proc !== undefined && d.measure.probes?.enabled === true;
        d.progress.step(where, visitSeconds(s, probe));
        try {
          if (s.warmupS > 0 && !s.warmupInside)
            await d.runLoad(loadSpecFor(s, l.endpoint, { cpu, warmup: true }), d.measure.signal);
          const m = await measureRound(d.measure, l.proc?.pid, loadSpecFor(s, l.endpoint, { cpu }), round, {
            probe,
            handshakes: l.handshakes,
          });
          if (m.handshakeError !== undefined) c.warnings.push(`${where}: ${m.handshakeError}`);
          store(c, l.target.name, s.spec.id, m);
          d.progress.log(`  ${where}: ${describeRound(m.result)}`);
        } catch (err) {
          if (d.supervisor.closing) throw err; // interrupted: the failure is ours, not the target's
          c.warnings.push(`${where}: no figures: ${message(err)}`);
          d.progress.log(`  ${where}: failed: ${message(err)}`);
        }
      }
    }
  }
}
