// Rounds → one ScenarioSummary: what the report tables, the charts and `skein bench compare` read. Medians with the
// min–max across rounds (never means: one noisy round on a shared VM must not move the headline number), and the
// latency added over direct paired within each round, so slow drift of the machine cancels out.
import { pairByRound, spread } from '../lib/stats.ts';
import type { RoundResult, ScenarioSummary, Spread } from './model.ts';

/** Spread of an optional per-round figure; undefined when no round has it (direct and remote targets have no CPU). */
function optionalSpread(values: readonly (number | undefined)[]): Spread | undefined {
  const present = values.filter((v): v is number => v !== undefined && Number.isFinite(v));
  return present.length === 0 ? undefined : spread(present);
}

/** Spread of `target − reference` per round, for rounds both have; undefined when no round pairs. */
function addedSpread(
  rounds: readonly RoundResult[],
  reference: readonly RoundResult[] | undefined,
  pick: (r: RoundResult) => number,
): Spread | undefined {
  if (reference === undefined) return undefined;
  const diffs = pairByRound(rounds, reference, (x, y) => pick(x) - pick(y)).filter(Number.isFinite);
  return diffs.length === 0 ? undefined : spread(diffs);
}

/**
 * Summarizes one target's rounds of one scenario. `directRounds` are the reference's rounds of the same scenario
 * (direct for local proxies, the remote baseline for remote meshes); the added p50/p99 are computed per round
 * number, so round 2 of the proxy is compared with round 2 of direct, never with a median taken elsewhere.
 */
export function summarize(rounds: readonly RoundResult[], directRounds?: readonly RoundResult[]): ScenarioSummary {
  const errors: Record<string, number> = {};
  let errorCount = 0;
  let requests = 0;
  for (const r of rounds) {
    requests += r.requests;
    for (const [kind, count] of Object.entries(r.errors)) {
      errors[kind] = (errors[kind] ?? 0) + count;
      errorCount += count;
    }
  }
  const latency = (pick: (r: RoundResult) => number) => spread(rounds.map(pick));
  const addedP50Us = addedSpread(rounds, directRounds, (r) => r.latencyUs.p50);
  const addedP99Us = addedSpread(rounds, directRounds, (r) => r.latencyUs.p99);
  const cpuSecondsPer1k = optionalSpread(rounds.map((r) => r.cpuSecondsPer1k));
  const peakRssMb = optionalSpread(rounds.map((r) => r.peakRssMb));
  const handshakesPerS = optionalSpread(rounds.map((r) => r.handshakesPerS));
  return {
    throughputPerS: spread(rounds.map((r) => r.throughputPerS)),
    p50Us: latency((r) => r.latencyUs.p50),
    p90Us: latency((r) => r.latencyUs.p90),
    p99Us: latency((r) => r.latencyUs.p99),
    p999Us: latency((r) => r.latencyUs.p999),
    maxUs: latency((r) => r.latencyUs.max),
    ...(addedP50Us !== undefined && { addedP50Us }),
    ...(addedP99Us !== undefined && { addedP99Us }),
    ...(cpuSecondsPer1k !== undefined && { cpuSecondsPer1k }),
    ...(peakRssMb !== undefined && { peakRssMb }),
    ...(handshakesPerS !== undefined && { handshakesPerS }),
    errors,
    // Errors are counted among the requests (LoadResult.requests = successes + errors).
    errorRate: requests > 0 ? errorCount / requests : 0,
  };
}
