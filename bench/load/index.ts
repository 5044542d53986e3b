// The load generator's public face for the orchestrator: one runLoad for every engine (dispatched on
// spec.engine), engineAvailable to say before a run what is missing, and the bench origin.
import { missingTools } from '../lib/prereqs.ts';
import { runBuiltin } from './builtin.ts';
import { h2loadAvailable, runH2load } from './h2load.ts';
import { specProblem } from './spec-check.ts';
import type { EngineAvailability, LoadEngine, LoadSpec, RunLoad } from './types.ts';
import { runWrkLoad, wrkAvailable } from './wrk.ts';

export { type Origin, type OriginOptions, type OriginTls, startOrigin } from '../origin/index.ts';
export type * from './types.ts';

const engines: Readonly<Record<LoadEngine, { run: RunLoad; available: (spec?: LoadSpec) => EngineAvailability }>> = {
  builtin: { run: runBuiltin, available: () => ({ available: true }) },
  wrk: { run: runWrkLoad, available: wrkAvailable },
  h2load: { run: runH2load, available: h2loadAvailable },
};

export const runLoad: RunLoad = (spec, signal) => {
  const engine = engines[spec.engine];
  if (engine === undefined) return Promise.reject(new Error(`unknown load engine ${String(spec.engine)}`));
  return engine.run(spec, signal);
};

/**
 * Whether `engine` can run here (its tool installed) and, given a spec, whether it can run that spec
 * (e.g. wrk cannot pace or speak HTTP/2). `reason` says what is missing or unsupported.
 */
export function engineAvailable(engine: LoadEngine, spec?: LoadSpec): EngineAvailability {
  const entry = engines[engine];
  if (entry === undefined) return { available: false, reason: `unknown load engine ${String(engine)}` };
  const availability = entry.available(spec);
  if (!availability.available || spec === undefined) return availability;
  if (spec.cpu !== undefined && missingTools({ taskset: 'util-linux' }).length > 0) {
    return { available: false, reason: 'taskset (to pin to spec.cpu) not installed: apt-get install util-linux' };
  }
  const problem = specProblem(spec);
  return problem === undefined ? availability : { available: false, reason: problem };
}
