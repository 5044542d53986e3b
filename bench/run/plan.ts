// What one `skein bench` run will do, decided before anything starts: which targets (local ones that can run
// here, the rest with the reason; remote ones), which scenarios against which origin (phases), and how long it
// should take. Pure apart from looking at what is installed, so it is tested without starting anything.
import type { LoadProtocol } from '../load/types.ts';
import {
  type LocalTargetName,
  type OriginKind,
  targetProtocols,
  unavailableReason as localUnavailableReason,
} from '../lib/targets.ts';
import type { MeshType } from '../report/model.ts';
import type { RemoteTarget, RunOptions } from './options.ts';
import { type PlannedScenario, planScenario, type ScenarioSettings } from './scenarios.ts';

/** What is installed on this machine, as far as the plan cares. */
export interface Installed {
  readonly nginx: boolean;
  readonly haproxy: boolean;
  readonly wrk: boolean;
  readonly taskset: boolean;
}

export interface PlannedTarget {
  readonly name: string;
  readonly mesh: MeshType;
  readonly kind: 'local' | 'remote';
  readonly local?: LocalTargetName;
  readonly remote?: RemoteTarget;
  readonly protocols: readonly LoadProtocol[];
  /** Known before the run: not built yet, package or binary missing. */
  readonly unavailableReason?: string;
}

/** Scenarios sharing an origin run together: their targets are started for them and stopped after. */
export interface Phase {
  /** none: remote targets only, nothing local is started. */
  readonly origin: OriginKind | 'none';
  readonly scenarios: readonly PlannedScenario[];
}

export interface RunPlan {
  readonly targets: readonly PlannedTarget[];
  readonly phases: readonly Phase[];
  /** Said in the report: decisions the plan made that change what the numbers mean. */
  readonly notes: readonly string[];
}

const BINARY_OF: Partial<Record<LocalTargetName, keyof Installed>> = {
  nginx: 'nginx',
  'nginx-tls': 'nginx',
  haproxy: 'haproxy',
};

export function planTargets(
  opts: Pick<RunOptions, 'localTargets' | 'remotes'>,
  installed: Installed,
  projectDir: string,
): PlannedTarget[] {
  const local = opts.localTargets.map((name): PlannedTarget => {
    const binary = BINARY_OF[name];
    const missing =
      binary !== undefined && !installed[binary]
        ? `${binary} is not installed (apt-get install -y ${binary})`
        : undefined;
    return {
      name,
      mesh: name.startsWith('skein') ? 'skein' : 'baseline',
      kind: 'local',
      local: name,
      protocols: targetProtocols(name),
      unavailableReason: localUnavailableReason(name, projectDir) ?? missing,
    };
  });
  const remote = opts.remotes.map((r): PlannedTarget => ({
    name: r.name,
    mesh: r.mesh,
    kind: 'remote',
    remote: r,
    protocols: ['http1', 'http2', 'grpc-unary', 'grpc-server-stream', 'websocket'],
  }));
  return [...local, ...remote];
}

export function scenarioSettings(opts: RunOptions): ScenarioSettings {
  return {
    durationS: opts.durationS,
    warmupS: opts.warmupS,
    connections: opts.connections,
    openConnections: opts.openConnections,
    ratePerS: opts.ratePerS,
    stages: opts.stages,
    payloadBytes: opts.payloadBytes,
    streamMessages: opts.streamMessages,
    engine: opts.engine,
    timeoutMs: opts.timeoutMs,
  };
}

export function planRun(opts: RunOptions, installed: Installed, projectDir: string): RunPlan {
  const notes: string[] = [];
  const targets = planTargets(opts, installed, projectDir);
  const scenarios = opts.scenarios.map((s) => planScenario(s, scenarioSettings(opts), installed.wrk));
  const runsLocally = opts.localTargets.length > 0;
  let phases: Phase[];
  if (!runsLocally) {
    phases = [{ origin: 'none', scenarios }];
  } else {
    const h1 = scenarios.filter((s) => s.spec.protocol === 'http1');
    const rest = scenarios.filter((s) => s.spec.protocol !== 'http1');
    let h1Origin: OriginKind = 'nginx';
    if (h1.length > 0 && !installed.nginx) {
      h1Origin = 'node';
      notes.push('nginx is not installed: the HTTP/1.1 scenarios used the Node origin instead of the nginx one');
    }
    phases = [
      { origin: h1Origin, scenarios: h1 },
      { origin: 'node' as const, scenarios: rest },
    ].filter((p) => p.scenarios.length > 0);
    if (phases.length === 2 && phases[0].origin === phases[1].origin)
      phases = [{ origin: 'node', scenarios: [...h1, ...rest] }];
    if (!installed.taskset)
      notes.push('taskset is not installed (util-linux): nothing was pinned, proxies shared CPUs with the generator');
  }
  for (const s of scenarios) {
    const wrkCould = s.spec.newConnectionPerRequest !== true;
    if (
      wrkCould &&
      s.spec.mode === 'closed' &&
      s.spec.protocol === 'http1' &&
      s.spec.engine !== 'wrk' &&
      opts.engine === 'auto'
    )
      notes.push(
        `${s.spec.id}: the builtin generator drove the closed loop (${installed.wrk ? 'wrk sends GET only' : 'wrk is not available'})`,
      );
  }
  return { targets, phases, notes };
}

/** Starting the generator's process for one load call (Node start-up, loading the generator). */
const CALL_OVERHEAD_S = 0.3;
/** bpftrace compiling and attaching its programs before a probed run. */
const PROBE_ATTACH_S = 1.5;

/** Seconds one measured visit (warm-up, measured window, process start-ups) is expected to take. */
export function visitSeconds(s: PlannedScenario, probe: boolean): number {
  const calls = s.warmupS > 0 && !s.warmupInside ? 2 : 1;
  return s.warmupS + s.spec.durationS + calls * CALL_OVERHEAD_S + (probe ? PROBE_ATTACH_S : 0);
}

/** Rough seconds a run takes (start-up, warm-ups, measured runs, probe attaches), for the progress bar and --help. */
export function plannedSeconds(
  plan: RunPlan,
  opts: Pick<RunOptions, 'rounds' | 'firstWarmupS' | 'probes'>,
  probesUsable: boolean,
): number {
  const measurable = plan.targets.filter((t) => t.unavailableReason === undefined);
  let total = 0;
  for (const phase of plan.phases) {
    const serving = (s: PlannedScenario) => measurable.filter((t) => t.protocols.includes(s.spec.protocol));
    const processes = serving(phase.scenarios[0]).filter((t) => t.kind === 'local' && t.local !== 'direct');
    total += phase.origin === 'none' ? 1 : 1 + processes.length * 0.7; // start-up
    if (opts.firstWarmupS > 0) total += serving(phase.scenarios[0]).length * (opts.firstWarmupS + CALL_OVERHEAD_S);
    for (const s of phase.scenarios) {
      for (const t of serving(s)) {
        const probe =
          opts.probes && probesUsable && s.spec.mode === 'closed' && t.kind === 'local' && t.local !== 'direct';
        total += opts.rounds * visitSeconds(s, probe);
      }
    }
  }
  return total;
}
