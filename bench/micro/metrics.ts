// Micro-benchmark of the per-request metrics update: ns per onRequestEnd for realistic records (4 sources ×
// 6 destinations × 2 versions, 20% gRPC, 3% 503 UH, 3% 404, durations 0.2–200 ms log-uniform), against doing the
// same with prom-client's own inc()/observe() per request, plus what one scrape costs. GCs counted while timing.
// Run: node bench/micro/metrics.ts
import { PerformanceObserver } from 'node:perf_hooks';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { Counter, Histogram, Registry } from 'prom-client';
import { ProxyStats } from '../../proxy/stats.ts';
import { DURATION_BUCKETS_S, type RequestMetricsInput } from '../../src/telemetry/metrics.ts';
import type { OverheadInput } from '../../src/telemetry/metrics-overhead.ts';

const RECORDS = 4096;
const OPS = 2_000_000;
const WARMUP = 1_000_000;
const ROUNDS = 5;

type BenchRecord = RequestMetricsInput & OverheadInput;

function makeRecords(): BenchRecord[] {
  const sources = ['frontend', 'checkout', 'cart', 'search'];
  const destinations = ['api', 'payments', 'inventory', 'users', 'catalog', 'reviews'];
  let seed = 12345;
  const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  return Array.from({ length: RECORDS }, () => {
    const r = rnd();
    const grpc = rnd() < 0.2;
    const fail = r < 0.03;
    const ms = Math.exp(Math.log(0.2) + rnd() * Math.log(1000));
    return {
      direction: 'outbound' as const,
      sourceService: sources[(rnd() * sources.length) | 0],
      destinationService: destinations[(rnd() * destinations.length) | 0],
      destinationVersion: rnd() < 0.9 ? 'v1' : 'v2',
      status: fail ? 503 : r < 0.06 ? 404 : 200,
      grpcStatus: grpc ? (fail ? 14 : 0) : -1,
      isGrpc: grpc,
      flag: fail ? 'UH' : '',
      startMs: 1000,
      endMs: 1000 + ms,
      upstreamStartMs: 1000.02,
      upstreamHeadersMs: 1000 + ms - 0.01,
      requestBytes: (rnd() * 2000) | 0,
      responseBytes: (rnd() * 20000) | 0,
    };
  });
}

/** The same families updated the usual prom-client way: label objects and inc()/observe() per request. */
function promClientPerRequest(): (r: BenchRecord) => void {
  const registers = [new Registry()];
  const svc = ['source_service', 'destination_service', 'destination_version'] as const;
  const req = new Counter({
    name: 'r_total',
    help: 'h',
    labelNames: [...svc, 'response_code', 'grpc_status', 'response_flag'],
    registers,
  });
  const dur = new Histogram({
    name: 'd',
    help: 'h',
    labelNames: [...svc, 'response_flag'],
    buckets: [...DURATION_BUCKETS_S],
    registers,
  });
  const rb = new Counter({ name: 'rb_total', help: 'h', labelNames: svc, registers });
  const sb = new Counter({ name: 'sb_total', help: 'h', labelNames: svc, registers });
  return (r) => {
    const s = {
      source_service: r.sourceService,
      destination_service: r.destinationService,
      destination_version: r.destinationVersion,
    };
    const code = r.flag === 'DC' ? '499' : String(r.status);
    req.inc({ ...s, response_code: code, grpc_status: r.isGrpc ? String(r.grpcStatus) : '', response_flag: r.flag });
    dur.observe({ ...s, response_flag: r.flag }, (r.endMs - r.startMs) / 1000);
    rb.inc(s, r.requestBytes);
    sb.inc(s, r.responseBytes);
  };
}

let gcs = 0;
new PerformanceObserver((list) => void (gcs += list.getEntries().length)).observe({ entryTypes: ['gc'] });

const records = makeRecords();
const enabled = new ProxyStats({ processMetrics: false });
const disabled = new ProxyStats({ processMetrics: false, metricsEnabled: false });
const cases: [string, (r: BenchRecord) => void][] = [
  ['ProxyStats.onRequestEnd (accumulate, read at scrape)', (r) => enabled.onRequestEnd('main', r)],
  ['ProxyStats.onRequestEnd, metrics disabled', (r) => disabled.onRequestEnd('main', r)],
  ['prom-client inc()/observe() per request', promClientPerRequest()],
];

function run(fn: (r: BenchRecord) => void, n: number): void {
  for (let i = 0; i < n; i++) fn(records[i & (RECORDS - 1)]);
}

for (const [label, fn] of cases) {
  run(fn, WARMUP);
  const ns: number[] = [];
  let gcCount = 0;
  for (let round = 0; round < ROUNDS; round++) {
    await nextTurn();
    const g0 = gcs;
    const t0 = process.hrtime.bigint();
    run(fn, OPS);
    ns.push(Number(process.hrtime.bigint() - t0) / OPS);
    await nextTurn();
    gcCount += gcs - g0;
  }
  ns.sort((a, b) => a - b);
  console.log(
    `${label.padEnd(56)} min ${ns[0].toFixed(0).padStart(5)} ns/op  median ${ns[ns.length >> 1].toFixed(0).padStart(5)} ns/op  GCs ${gcCount}`,
  );
}

// Scrape: the enabled ProxyStats now holds 48 groups; render it a few times.
const scrapes: number[] = [];
for (let i = 0; i < 50; i++) {
  const t0 = process.hrtime.bigint();
  const text = await enabled.render();
  scrapes.push(Number(process.hrtime.bigint() - t0) / 1e6);
  if (i === 0) console.log(`scrape: ${text.split('\n').filter((l) => l !== '' && !l.startsWith('#')).length} samples`);
}
scrapes.sort((a, b) => a - b);
console.log(`scrape (render) median ${scrapes[25].toFixed(2)} ms`);
