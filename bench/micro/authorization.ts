// Micro-benchmark of the authorization decision (src/identity/authorization.ts), the authorization stage's whole
// per-request work: ns per decide() for a few policy sets, and how many garbage collections ran while timing
// (0 = decide() does not allocate; a path that needs normalizing does). Listeners without policies have no
// stage at all, so they pay nothing.
// Run: node bench/micro/authorization.ts
import { PerformanceObserver } from 'node:perf_hooks';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { Authorization } from '../../src/config/authorization-schema.ts';
import { CompiledAuthorization } from '../../src/identity/authorization.ts';

const WARMUP = 2_000_000;
const RUNS = 5_000_000;

interface Req {
  readonly source: string | null;
  readonly method: string;
  readonly path: string;
}

interface Case {
  readonly label: string;
  readonly authz: CompiledAuthorization;
  readonly requests: readonly Req[];
}

const compile = (config: unknown) => new CompiledAuthorization(Authorization.parse(config));
const shop = (i: number) => `spiffe://cluster.local/ns/shop/sa/svc-${i % 17}`;
const plainRequests: Req[] = Array.from({ length: 256 }, (_, i) => ({
  source: i % 5 === 0 ? 'spiffe://cluster.local/ns/ops/sa/batch' : shop(i),
  method: i % 3 === 0 ? 'POST' : 'GET',
  path: `/api/v1/items/${i}`,
}));

const cases: Case[] = [
  {
    label: 'one allow on sources',
    authz: compile({ policies: [{ name: 'shop', action: 'allow', sources: ['spiffe://cluster.local/ns/shop/sa/*'] }] }),
    requests: plainRequests,
  },
  {
    label: 'allow + path allow + path deny (the e2e set)',
    authz: compile({
      policies: [
        { name: 'shop', action: 'allow', sources: ['spiffe://cluster.local/ns/shop/sa/*'] },
        { name: 'public', action: 'allow', paths: ['/public/*'] },
        { name: 'no-admin', action: 'deny', paths: ['/admin/*'] },
      ],
    }),
    requests: plainRequests,
  },
  {
    label: '100 policies, 5 patterns each',
    authz: compile({
      policies: Array.from({ length: 100 }, (_, i) => ({
        name: `p${i}`,
        action: i % 10 === 0 ? 'deny' : 'allow',
        sources: Array.from({ length: 5 }, (_, j) => `spiffe://cluster.local/ns/team-${i}/sa/app-${j}*`),
        methods: ['GET', 'POST'],
      })),
    }),
    requests: plainRequests,
  },
  {
    label: 'path deny, paths to normalize (%xx, ..)',
    authz: compile({ policies: [{ name: 'no-admin', action: 'deny', paths: ['/admin/*'] }] }),
    requests: plainRequests.map((r, i) => ({ ...r, path: i % 2 === 0 ? `/a/../%61dmin/${i}` : `/x//y/${i}` })),
  },
];

let gcs = 0;
new PerformanceObserver((list) => (gcs += list.getEntries().length)).observe({ entryTypes: ['gc'] });

let sink = 0;
function loop(c: Case, n: number): void {
  const reqs = c.requests;
  for (let i = 0; i < n; i++) {
    const r = reqs[i & 255];
    if (c.authz.decide(r.source, r.method, r.path).allowed) sink++;
  }
}

for (const c of cases) {
  loop(c, WARMUP);
  await nextTurn();
  gcs = 0;
  const t0 = process.hrtime.bigint();
  loop(c, RUNS);
  const ns = Number(process.hrtime.bigint() - t0) / RUNS;
  await nextTurn(); // let the observer report
  console.log(`${c.label.padEnd(48)} ${ns.toFixed(1).padStart(7)} ns/decision   GCs while timing: ${gcs}`);
}
if (sink === -1) console.log(sink);
