// Micro-benchmark of LoadBalancer.pick(), the only LB call on the request path: ns per pick for every registered
// policy over 10 endpoints, plus how many garbage collections ran while timing (0 = pick() does not allocate).
// Run: node bench/micro/lb-pick.ts [--max-ms-per-policy=N]
import { PerformanceObserver } from 'node:perf_hooks';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { createLoadBalancer, loadBalancerNames } from '../../src/lb/registry.ts';
import type { LbEndpoint, LoadBalancer, PickContext } from '../../src/lb/types.ts';

const ENDPOINT_COUNT = 10;
/** Long enough for pick() to reach its final (TurboFan) tier even on a busy machine; until then it may allocate. */
const WARMUP_PICKS = 3_000_000;
const BATCH_PICKS = 1_000_000;
const MAX_PICKS_PER_ROUND = 5_000_000;
const ROUNDS = 3;
const maxMsPerRound =
  Number(process.argv.find((arg) => arg.startsWith('--max-ms-per-policy='))?.split('=')[1] ?? 3000) / ROUNDS;

interface Case {
  label: string;
  policy: string;
  /** Cycled through, prebuilt so the loop itself allocates nothing. */
  contexts: readonly PickContext[];
}

const noKey: readonly PickContext[] = [{}];
const keyed: readonly PickContext[] = Array.from({ length: 4096 }, (_, i) => ({ hashKey: `user-${i * 7919}` }));

function makeEndpoints(): LbEndpoint[] {
  return Array.from({ length: ENDPOINT_COUNT }, (_, i) => ({
    id: `10.0.0.${i + 1}:8080`,
    host: `10.0.0.${i + 1}`,
    port: 8080,
    weight: i + 1,
    active: (i * 7) % 5,
  }));
}

const cases: Case[] = loadBalancerNames().flatMap((policy): Case[] =>
  policy === 'consistent-hash'
    ? [
        { label: `${policy} (hashKey)`, policy, contexts: keyed },
        { label: `${policy} (no key)`, policy, contexts: noKey },
      ]
    : [{ label: policy, policy, contexts: noKey }],
);

/**
 * Sums ports so the JIT cannot drop the picks as dead code; masked to stay a small integer, because a sum that
 * outgrew one would be boxed on every iteration and the harness's own garbage would show up as the policy's.
 */
function runPicks(balancer: LoadBalancer, contexts: readonly PickContext[], pickCount: number): number {
  const mask = contexts.length - 1; // lengths are powers of two
  let portSum = 0;
  for (let i = 0; i < pickCount; i++) portSum = (portSum + balancer.pick(contexts[i & mask])!.port) & 0xffffff;
  return portSum;
}

const gcStartTimesMs: number[] = [];
const gcObserver = new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) gcStartTimesMs.push(entry.startTime);
});
gcObserver.observe({ entryTypes: ['gc'] });

interface Round {
  nsPerPick: number;
  startMs: number;
  endMs: number;
}

let sink = 0;
const results: { label: string; rounds: Round[] }[] = [];
for (const benchCase of cases) {
  const balancer = createLoadBalancer(benchCase.policy);
  balancer.update(makeEndpoints());
  sink += runPicks(balancer, benchCase.contexts, WARMUP_PICKS);
  const rounds: Round[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    await nextTurn(); // let GC entries from the previous round be delivered outside the timed window
    const startMs = performance.now();
    const start = process.hrtime.bigint();
    let picks = 0;
    while (picks < MAX_PICKS_PER_ROUND && performance.now() - startMs < maxMsPerRound) {
      sink += runPicks(balancer, benchCase.contexts, BATCH_PICKS);
      picks += BATCH_PICKS;
    }
    const elapsedNs = Number(process.hrtime.bigint() - start);
    rounds.push({ nsPerPick: elapsedNs / picks, startMs, endMs: performance.now() });
  }
  results.push({ label: benchCase.label, rounds });
}
await nextTurn();
gcObserver.disconnect();

const median = (values: number[]) => values.toSorted((a, b) => a - b)[Math.floor(values.length / 2)];
console.log(`LoadBalancer.pick(), ${ENDPOINT_COUNT} endpoints, node ${process.version}, median of ${ROUNDS} rounds`);
console.log(
  `${'policy'.padEnd(30)}${'ns/pick'.padStart(10)}${'min'.padStart(8)}${'max'.padStart(8)}${'GCs'.padStart(6)}`,
);
for (const { label, rounds } of results) {
  const nsPerPick = rounds.map((round) => round.nsPerPick);
  const gcCount = gcStartTimesMs.filter((t) => rounds.some((round) => t >= round.startMs && t <= round.endMs)).length;
  console.log(
    `${label.padEnd(30)}${median(nsPerPick).toFixed(1).padStart(10)}${Math.min(...nsPerPick)
      .toFixed(1)
      .padStart(8)}${Math.max(...nsPerPick)
      .toFixed(1)
      .padStart(8)}${String(gcCount).padStart(6)}`,
  );
}
if (sink === 0) console.log('(unreachable: keeps the picks observable)');
