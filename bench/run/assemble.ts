// Turns what a run collected into the BenchReport (bench/report/model.ts): one TargetReport per target, measured
// or not (with the reason), summaries against the right reference (local direct for local proxies, a remote
// baseline for remote meshes), and the checks on the run itself as warnings.
import { summarize } from '../report/index.ts';
import { PUBLISHED_FIGURES } from '../report/published.ts';
import {
  type BenchReport,
  REPORT_SCHEMA,
  type RoundResult,
  type ScenarioSpec,
  type TargetReport,
  type TargetScenarioResult,
} from '../report/model.ts';
import type { MeasuredRound } from './measure.ts';
import type { Collected } from './phase.ts';
import type { PlannedTarget, RunPlan } from './plan.ts';

export interface RunMeta {
  readonly createdAt: string;
  readonly command: string;
  readonly machine: BenchReport['machine'];
  readonly versions: Readonly<Record<string, string>>;
  readonly settings: BenchReport['settings'];
  /** Busy % of the load and proxy CPUs sampled before anything started; undefined when not sampled. */
  readonly backgroundBusyPct?: { readonly load: number; readonly proxy: number };
}

/** Probe CPU and /proc CPU of the same window should agree; beyond this they describe different things. */
const PROBE_AGREEMENT = 0.1;
/** Above this share of failed requests a target's latency describes its errors more than its work. */
const ERROR_RATE_WARNING = 0.01;

function referenceFor(t: PlannedTarget, plan: RunPlan, collected: Collected): string | undefined {
  if (t.kind === 'local') return t.local === 'direct' ? undefined : 'direct';
  const baseline = plan.targets.find((x) => x.kind === 'remote' && x.mesh === 'baseline' && x !== t);
  return t.mesh === 'baseline' || !collected.rounds.has(baseline?.name ?? '') ? undefined : baseline?.name;
}

const ms = (us: number) => `${(us / 1000).toFixed(2)} ms`;

/** The checks on one target × scenario's rounds: generator lag, probe agreement, errors. */
function checkRounds(target: string, scenario: string, rounds: readonly MeasuredRound[]): string[] {
  const warnings: string[] = [];
  const lagging = rounds.filter((m) => m.result.lag !== undefined && !m.result.lag.trustworthy);
  if (lagging.length > 0) {
    const worst = Math.max(...lagging.map((m) => m.result.lag!.p99Us));
    warnings.push(
      `${scenario}, ${target}: the generator fell behind its timetable in ${lagging.length} of ${rounds.length} ` +
        `round(s) (lag p99 up to ${ms(worst)}); those latency figures describe the generator, not the target`,
    );
  }
  for (const m of rounds) {
    const probeUs = m.result.probe?.cpuUsPerRequest;
    const procUs = m.procCpuUsPerRequest;
    if (probeUs === undefined || !Number.isFinite(procUs) || procUs <= 0) continue;
    if (Math.abs(probeUs - procUs) / procUs > PROBE_AGREEMENT)
      warnings.push(
        `${scenario}, ${target}, round ${m.result.round}: eBPF on-CPU time (${probeUs.toFixed(1)} µs/request) and ` +
          `/proc (${procUs.toFixed(1)} µs/request) differ by more than ${PROBE_AGREEMENT * 100}%`,
      );
  }
  const requests = rounds.reduce((sum, m) => sum + m.result.requests, 0);
  const errors = rounds.reduce((sum, m) => sum + Object.values(m.result.errors).reduce((a, b) => a + b, 0), 0);
  if (requests > 0 && errors / requests > ERROR_RATE_WARNING)
    warnings.push(
      `${scenario}, ${target}: ${errors} of ${requests} requests failed (${((100 * errors) / requests).toFixed(1)}%)`,
    );
  return warnings;
}

export function assembleReport(
  plan: RunPlan,
  scenarios: readonly ScenarioSpec[],
  collected: Collected,
  meta: RunMeta,
): BenchReport {
  const warnings: string[] = [...plan.notes];
  if (meta.backgroundBusyPct !== undefined) {
    const { load, proxy } = meta.backgroundBusyPct;
    if (load > 15 || proxy > 15)
      warnings.push(
        `the machine was busy before the run started (load CPU ${load.toFixed(0)}%, proxy CPU ${proxy.toFixed(0)}%): ` +
          'other work shared the CPUs, expect noisier figures',
      );
  }
  const roundsOf = (target: string, scenario: string): readonly RoundResult[] =>
    (collected.rounds.get(target)?.get(scenario) ?? []).map((m) => m.result);

  const targets = plan.targets.map((t): TargetReport => {
    const reason = t.unavailableReason ?? collected.unavailable.get(t.name);
    const ref = referenceFor(t, plan, collected);
    const results: TargetScenarioResult[] = [];
    const unsupported = scenarios.filter((s) => !t.protocols.includes(s.protocol)).map((s) => s.id);
    if (reason === undefined && unsupported.length > 0)
      warnings.push(`${t.name} forwards ${t.protocols.join(' and ')} only: no figures for ${unsupported.join(', ')}`);
    for (const s of scenarios) {
      const measured = collected.rounds.get(t.name)?.get(s.id) ?? [];
      if (measured.length === 0) continue;
      warnings.push(...checkRounds(t.name, s.id, measured));
      const rounds = measured.map((m) => m.result);
      const reference = ref === undefined ? undefined : roundsOf(ref, s.id);
      results.push({
        scenario: s.id,
        rounds,
        summary: summarize(rounds, reference !== undefined && reference.length > 0 ? reference : undefined),
      });
    }
    return {
      name: t.name,
      mesh: t.mesh,
      kind: t.kind,
      description:
        collected.descriptions.get(t.name) ??
        (t.kind === 'remote' ? `remote ${t.mesh} target at ${t.remote?.url}` : t.name),
      available: reason === undefined,
      unavailableReason: reason,
      results,
    };
  });
  return {
    schema: REPORT_SCHEMA,
    createdAt: meta.createdAt,
    command: meta.command,
    machine: meta.machine,
    versions: meta.versions,
    settings: meta.settings,
    scenarios,
    targets,
    warnings: [...warnings, ...collected.warnings],
    published: PUBLISHED_FIGURES,
  };
}
